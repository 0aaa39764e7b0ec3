import { AbortError, InvalidInputError, M3Error, StallTimeoutError } from '../errors.ts';

/**
 * Cancellation for one model load: the caller's AbortSignal plus a stall timeout on the downloads.
 *
 * The watchdog measures time spent *waiting for the network*: it is kicked by every byte of progress and
 * paused while the loader hands a tensor to its consumer (a GPU upload is not a stalled server). When it
 * fires, the combined signal aborts every fetch with a StallTimeoutError. Whatever a fetch or parser threw
 * because of an abort, `translate` turns it into the typed error: AbortError (the caller's signal) or
 * StallTimeoutError (ours).
 */
export class LoadGuard {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private paused = 0;
  private readonly onCallerAbort = () => this.controller.abort(this.callerAbortError());
  readonly signal: AbortSignal;

  constructor(
    private readonly caller: AbortSignal | undefined,
    private readonly stallTimeoutMs: number | undefined,
  ) {
    if (caller !== undefined && !(caller instanceof AbortSignal)) throw new InvalidInputError('option "signal" must be an AbortSignal', { received: caller });
    if (stallTimeoutMs !== undefined && !(typeof stallTimeoutMs === 'number' && stallTimeoutMs > 0 && Number.isFinite(stallTimeoutMs))) {
      throw new InvalidInputError('option "stallTimeoutMs" must be a positive number of milliseconds', { expected: 'a finite number > 0', received: stallTimeoutMs });
    }
    this.signal = this.controller.signal;
    if (caller?.aborted) this.controller.abort(this.callerAbortError());
    else caller?.addEventListener('abort', this.onCallerAbort, { once: true });
    this.kick();
  }

  private callerAbortError(): AbortError {
    const reason = this.caller?.reason;
    return new AbortError('the model load was aborted', { expected: 'a load that is not cancelled', received: reason instanceof Error ? reason.message : reason, cause: reason });
  }

  /** Bytes arrived: restart the stall clock. */
  kick(): void {
    if (this.stallTimeoutMs === undefined || this.paused > 0 || this.controller.signal.aborted) return;
    clearTimeout(this.timer);
    const ms = this.stallTimeoutMs;
    this.timer = setTimeout(() => {
      this.controller.abort(new StallTimeoutError(`a model download sent no bytes for ${ms} ms`, { expected: `a byte at least every ${ms} ms (stallTimeoutMs)`, received: 'nothing' }));
    }, ms);
  }

  /** Runs the consumer's work (an upload) with the stall clock stopped. */
  async whilePaused<T>(fn: () => Promise<T> | T): Promise<T> {
    this.paused++;
    clearTimeout(this.timer);
    try {
      return await fn();
    } finally {
      this.paused--;
      this.kick();
    }
  }

  /** The typed error for `err` when the load was cancelled; `err` itself otherwise. */
  translate(err: unknown): unknown {
    if (this.controller.signal.aborted) {
      const reason = this.controller.signal.reason;
      if (reason instanceof M3Error) return reason;
    }
    return err;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.caller?.removeEventListener('abort', this.onCallerAbort);
  }
}
