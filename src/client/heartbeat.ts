/**
 * Worker liveness: a ping every intervalMs; a ping unanswered for timeoutMs, or one that fails, means
 * the worker is dead (terminated, crashed, or stuck) and `onDead` runs once.
 */
export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | null;
  private pingSince: number | null = null;
  private dead = false;

  constructor(
    opts: { intervalMs: number; timeoutMs: number },
    ping: () => Promise<unknown>,
    private readonly onDead: (reason: string) => void,
  ) {
    this.timer = setInterval(() => {
      if (this.dead) return;
      const now = performance.now();
      if (this.pingSince !== null) {
        if (now - this.pingSince > opts.timeoutMs) this.die(`worker did not answer a ping in ${opts.timeoutMs} ms`);
        return;
      }
      this.pingSince = now;
      ping().then(
        () => {
          this.pingSince = null;
        },
        () => this.die('ping failed'),
      );
    }, opts.intervalMs);
  }

  private die(reason: string): void {
    if (this.dead) return;
    this.stop();
    this.onDead(reason);
  }

  stop(): void {
    this.dead = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
