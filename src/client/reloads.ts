/**
 * Reloads of the model in the running worker (deeper blocks, another weight dtype), one after another:
 * each waits for the ones queued before it, a failed one does not stop the next, and `idle` runs when the
 * last has settled (the client then sends the calls that waited). Transactional in the worker: the old
 * engine serves until the new one is ready; calls caught by the swap are re-run (client.ts onBatchError).
 */
export class ReloadChain {
  private tail: Promise<void> | null = null;

  constructor(private readonly idle: () => void) {}

  /** A reload is queued or running: calls wait. */
  get busy(): boolean {
    return this.tail !== null;
  }

  run(task: () => Promise<void>): Promise<void> {
    const p: Promise<void> = (this.tail ?? Promise.resolve())
      .catch(() => undefined)
      .then(task)
      .finally(() => {
        if (this.tail !== p) return;
        this.tail = null;
        this.idle();
      });
    return (this.tail = p);
  }
}
