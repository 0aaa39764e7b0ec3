/**
 * Errors the main-thread client adds to src/errors.ts. Same contract: `name` identifies the class
 * (it survives structured cloning), the message says what was expected and what was received.
 */
import { M3Error } from '../errors.ts';
import type { Candidate } from './planner.ts';

/** No (layers, dims) the model offers meets the budget; `cheapest` is the least costly plan there is. */
export class BudgetError extends M3Error {
  readonly cheapest: Candidate;
  readonly violated: string[];
  constructor(cheapest: Candidate, violated: string[], budget: string) {
    super(`no plan meets the budget (${violated.join(', ')}); the cheapest plan is ${describeCandidate(cheapest)}`, {
      expected: `a budget the cheapest plan meets`,
      received: budget,
    });
    this.cheapest = cheapest;
    this.violated = violated;
  }
}

// AbortError lives in src/errors.ts (the worker raises it too); re-exported for existing importers.
export { AbortError } from '../errors.ts';

/** The worker died (or its GPU device was lost) more times than the client retries one request. */
export class WorkerCrashedError extends M3Error {}

/** The client was disposed while the call was pending, or used after dispose(). */
export class ClientDisposedError extends M3Error {}

export function describeCandidate(c: Candidate): string {
  return `layers=${c.layers} dims=${c.dims} (~${c.latencyMs.toFixed(2)} ms, ~${c.memoryMB.toFixed(2)} MB, quality ${c.quality.toFixed(3)})`;
}
