/**
 * Typed errors shared by the worker and the main thread. Every error says what was expected
 * and what was received, so a caller can act on it without reading the source.
 * `name` survives structured cloning through comlink, so callers can switch on it.
 */

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return value.length > 60 ? `string(${value.length}) "${value.slice(0, 57)}..."` : `"${value}"`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return `array(${value.length})`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as { length: number }).length})`;
  return typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
}

export class M3Error extends Error {
  readonly expected?: string;
  readonly received?: string;
  constructor(message: string, opts: { expected?: string; received?: unknown; cause?: unknown } = {}) {
    const parts = [message];
    if (opts.expected !== undefined) parts.push(`expected ${opts.expected}`);
    if ('received' in opts) parts.push(`received ${describe(opts.received)}`);
    super(parts.join('; '), opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.expected = opts.expected;
    if ('received' in opts) this.received = describe(opts.received);
  }
}

/** A caller passed an argument of the wrong type, range or shape. */
export class InvalidInputError extends M3Error {}

/** config.json names a model family we cannot run, or lacks a key the family needs. */
export class UnsupportedModelError extends M3Error {}

/** A model file is malformed: bad safetensors header, truncated data, unknown dtype, bad torch zip. */
export class ModelFormatError extends M3Error {}

/** A required weight is missing or has the wrong shape. */
export class WeightError extends M3Error {}

/** A model file could not be fetched (network, HTTP status, or the server sent the wrong kind of file). */
export class ModelFetchError extends M3Error {
  readonly url: string;
  readonly status?: number;
  constructor(message: string, url: string, opts: { expected?: string; received?: unknown; status?: number; cause?: unknown } = {}) {
    super(`${message} (${url})`, opts);
    this.url = url;
    this.status = opts.status;
  }
}

/** WebGPU is missing, no adapter was granted, or the device was lost. */
export class GpuUnavailableError extends M3Error {}

/** The worker was asked to embed, calibrate or pick a backend before any model was loaded into it (or after a failed load). */
export class ModelNotLoadedError extends M3Error {}

/** The engine a call was running on was destroyed before the call finished; nothing was returned from it. */
export class EngineDestroyedError extends M3Error {}

/** A new model was loaded while this call was in flight; the call did not mix results from two models. */
export class EngineReplacedError extends M3Error {}

/** The call's (or load's) AbortSignal fired: its queued work was dropped and the promise rejected with this. */
export class AbortError extends M3Error {}

/** A model download stopped sending bytes for longer than the load's stall timeout. */
export class StallTimeoutError extends M3Error {}

/** A stored or imported index was built with another model, layers, dims, storage or schema than the one opening it. */
export class IndexMismatchError extends M3Error {}

/** An index file or persisted chunk is malformed (bad magic, version, truncated section). */
export class IndexFormatError extends M3Error {}

/** Storage quota would be or was exceeded; nothing of the failed write was kept. */
export class QuotaError extends M3Error {}

/** HTTP 401/403: the model repository is private or gated (or missing): it needs a token with access. Never carries the token. */
export class ModelAccessError extends ModelFetchError {}

/** A weight holds NaN or ±Inf (a corrupt or badly converted checkpoint); found at load, before any GPU work. */
export class NonFiniteWeightError extends WeightError {}

/** A computed output (dense, sparse or ColBERT) holds NaN or Inf: the call rejects and nothing from it is returned. */
export class NumericError extends M3Error {}
