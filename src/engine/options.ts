import { AbortError, InvalidInputError } from '../errors.ts';
import { POOLING_MODES, type EncoderConfig, type Pooling, type PoolingConfig } from '../model/config.ts';
import { validateMcls } from './mcls.ts';
import { resolveOutputs, type OutputOptions, type ResolvedOutputs } from './outputs.ts';

/** What a caller may ask of one embed call. */
export interface EmbedOptions {
  /** Run exactly the first k blocks (early exit), 1..num_hidden_layers. Default: all. */
  layers?: number;
  /** Keep the first d values of the pooled vector (Matryoshka), 1..hidden_size. Default: all. */
  dims?: number;
  /** Override the model's pooling. */
  pooling?: Pooling;
  /** L2-normalise after truncation. Default: the model's (sentence-transformers Normalize module). */
  normalize?: boolean;
  /** BGE-M3's MCLS for long documents: insert a CLS every this many tokens (1..max tokens) and average the CLS states. */
  mcls?: number;
  /** Rejects the call (AbortError) before it starts, or at the next batch boundary. */
  signal?: AbortSignal;
  /** Called as batches finish (backends that report progress); must be a function. */
  onProgress?: (p: { done: number; total: number }) => void;
}

export interface ResolvedEmbedOptions {
  layers: number;
  dims: number;
  pooling: Pooling;
  normalize: boolean;
  layerNormBeforeTruncate: boolean;
  /** CLS interval for MCLS pooling, when asked. */
  mcls?: number;
}

const KNOWN = new Set(['layers', 'dims', 'pooling', 'normalize', 'mcls', 'outputs', 'colbertDims', 'sparseTokens', 'signal', 'onProgress', 'prompt']);

function intInRange(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new InvalidInputError(`option "${name}" is out of range`, { expected: `an integer in ${lo}..${hi}`, received: v });
  }
  return v;
}

/** Validates options against the model before any work starts. */
export function resolveEmbedOptions(cfg: EncoderConfig, pooling: PoolingConfig, opts: unknown = {}): ResolvedEmbedOptions {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new InvalidInputError('options must be an object', { expected: '{ layers?, dims?, pooling?, normalize? }', received: opts });
  }
  const o = opts as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) throw new InvalidInputError(`unknown option "${k}"`, { expected: [...KNOWN].join(', '), received: k });
  }
  const layers = o.layers === undefined ? cfg.num_hidden_layers : intInRange('layers', o.layers, 1, cfg.num_hidden_layers);
  const dims = o.dims === undefined ? cfg.hidden_size : intInRange('dims', o.dims, 1, cfg.hidden_size);
  if (o.pooling !== undefined && !(POOLING_MODES as readonly unknown[]).includes(o.pooling)) {
    throw new InvalidInputError('option "pooling" is not supported', { expected: `one of ${POOLING_MODES.map((m) => `"${m}"`).join(', ')}`, received: o.pooling });
  }
  if (o.normalize !== undefined && typeof o.normalize !== 'boolean') {
    throw new InvalidInputError('option "normalize" must be a boolean', { expected: 'true or false', received: o.normalize });
  }
  return {
    layers,
    dims,
    pooling: (o.pooling as Pooling | undefined) ?? pooling.pooling,
    normalize: (o.normalize as boolean | undefined) ?? pooling.normalize,
    layerNormBeforeTruncate: pooling.layerNormBeforeTruncate,
    mcls: validateMcls(o.mcls, cfg.max_tokens),
  };
}

/** A request validated against the model and the backend: what Engine.run (every backend) starts from. */
export interface ResolvedRequest {
  o: ResolvedEmbedOptions;
  want: ResolvedOutputs;
  signal?: AbortSignal;
}

/**
 * The one validation of an embed request, for every backend (WebGPU, CPU, CPU reference), run before
 * any tokenising: the request must be an object of known options; outputs need heads; `colbertDims`
 * needs ColBERT; MCLS excludes ColBERT (inserted CLS tokens would become vectors); `layers` must be
 * loaded; `signal` must be an AbortSignal and not aborted yet; `onProgress` must be a function.
 */
export function resolveRequest(cfg: EncoderConfig, pooling: PoolingConfig, request: unknown, backend: { colbertWidth: number | null; maxLayers: number; exits?: readonly number[] }): ResolvedRequest {
  if (request === undefined) request = {};
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    throw new InvalidInputError('options must be an object', { expected: '{ layers?, dims?, outputs?, ... } or undefined', received: request });
  }
  const { outputs, colbertDims, sparseTokens, ...rest } = request as OutputOptions & Record<string, unknown>;
  const want = resolveOutputs({ outputs, colbertDims, sparseTokens }, backend.colbertWidth);
  if (colbertDims !== undefined && !want.colbert) {
    throw new InvalidInputError('option "colbertDims" needs ColBERT output', { expected: 'outputs including "colbert", or no colbertDims', received: colbertDims });
  }
  const o = resolveEmbedOptions(cfg, pooling, rest);
  if (o.mcls && want.colbert) {
    throw new InvalidInputError('option "mcls" cannot be combined with ColBERT output', { expected: 'outputs without "colbert" (inserted CLS tokens would become vectors)', received: 'colbert' });
  }
  if (o.layers > backend.maxLayers) {
    throw new InvalidInputError('option "layers" exceeds the blocks this engine loaded', { expected: `at most ${backend.maxLayers} (created with maxLayers)`, received: o.layers });
  }
  if (backend.exits && !backend.exits.includes(o.layers)) {
    throw new InvalidInputError('this backend cannot exit at that depth (a whole exported graph runs at full depth)', { expected: `layers in [${backend.exits.join(', ')}], or backend "cpu" / "webgpu" for early exit`, received: o.layers });
  }
  const { signal, onProgress } = rest;
  if (signal !== undefined && !isAbortSignal(signal)) throw new InvalidInputError('option "signal" must be an AbortSignal', { expected: 'an AbortSignal (AbortController.signal) or undefined', received: signal });
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidInputError('option "onProgress" must be a function', { expected: 'a function or undefined', received: onProgress });
  throwIfAborted(signal);
  return { o, want, signal };
}

function isAbortSignal(v: unknown): v is AbortSignal {
  return typeof v === 'object' && v !== null && typeof (v as AbortSignal).aborted === 'boolean' && typeof (v as AbortSignal).addEventListener === 'function';
}

/** An aborted signal becomes the typed AbortError (its reason, when an M3Error AbortError, is kept). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  if (signal.reason instanceof AbortError) throw signal.reason;
  throw new AbortError('the call was aborted', { expected: 'a signal that has not fired', received: signal.reason instanceof Error ? signal.reason.message : signal.reason, cause: signal.reason });
}
