/** Main-thread validation of an M3Client.embed call (the worker's engine validates again with the same rules). */
import type { ModelInfo } from '../engine/service-types.ts';
import { InvalidInputError } from '../errors.ts';
import { AbortError } from './errors.ts';
import type { Plan } from './planner.ts';
import type { RequestOptions } from './scheduler.ts';
import type { ClientEmbedOptions } from './types.ts';

const EMBED_KEYS = new Set(['layers', 'dims', 'pooling', 'normalize', 'outputs', 'colbertDims', 'sparseTokens', 'mcls', 'prompt', 'signal', 'onProgress']);

export function cancelled(reason: unknown): AbortError {
  return new AbortError('embed() was aborted', { expected: 'a call that is not aborted', received: reason instanceof Error ? reason.message : String(reason ?? 'AbortSignal fired'), cause: reason });
}

/**
 * Validates a call on the main thread, before anything is queued: the worker's engine validates
 * again with the same rules (src/engine/options.ts), so both sides reject the same calls.
 */
export function requestOptions(texts: string[], opts: ClientEmbedOptions, plan: Pick<Plan, 'layers' | 'dims'>, info: Pick<ModelInfo, 'layers' | 'hidden' | 'hasBgeM3Heads'>): RequestOptions {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new InvalidInputError('embed options must be an object', { expected: '{ layers?, dims?, outputs?, ... }', received: opts });
  for (const k of Object.keys(opts)) if (!EMBED_KEYS.has(k)) throw new InvalidInputError(`unknown option "${k}"`, { expected: [...EMBED_KEYS].join(', '), received: k });
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new InvalidInputError('option "signal" must be an AbortSignal', { expected: 'AbortSignal', received: opts.signal });
  if (opts.signal?.aborted) throw cancelled(opts.signal.reason);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new InvalidInputError('option "onProgress" must be a function', { expected: 'a function', received: opts.onProgress });
  if (!Array.isArray(texts) || texts.length === 0) throw new InvalidInputError('texts must be a non-empty array of strings', { expected: 'string[] with at least one string', received: texts });
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== 'string' || texts[i].length === 0) throw new InvalidInputError(`texts[${i}] is not a non-empty string`, { expected: 'a non-empty string', received: texts[i] });
  }
  const layers = opts.layers ?? plan.layers;
  const dims = opts.dims ?? plan.dims;
  for (const [name, v, hi] of [
    ['layers', layers, info.layers],
    ['dims', dims, info.hidden],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > hi) throw new InvalidInputError(`option "${name}" is out of range`, { expected: `an integer in 1..${hi}`, received: v });
  }
  const outputs = opts.outputs ?? ['dense'];
  if (!Array.isArray(outputs) || outputs.length === 0 || !outputs.every((k) => k === 'dense' || k === 'sparse' || k === 'colbert')) {
    throw new InvalidInputError('option "outputs" must be a non-empty list', { expected: 'a subset of dense, sparse, colbert', received: JSON.stringify(outputs) });
  }
  if ((outputs.includes('sparse') || outputs.includes('colbert')) && !info.hasBgeM3Heads) {
    throw new InvalidInputError('sparse and colbert outputs need a model with BGE-M3 heads', { expected: "outputs: ['dense'] for this model", received: JSON.stringify(outputs) });
  }
  if (opts.colbertDims !== undefined && !outputs.includes('colbert')) throw new InvalidInputError('option "colbertDims" needs ColBERT output', { expected: "outputs including 'colbert'", received: JSON.stringify(outputs) });
  const o: RequestOptions = { layers, dims, outputs: [...new Set(outputs)].sort() as RequestOptions['outputs'] };
  if (opts.pooling !== undefined) o.pooling = opts.pooling;
  if (opts.normalize !== undefined) o.normalize = opts.normalize;
  if (opts.colbertDims !== undefined) o.colbertDims = opts.colbertDims;
  if (opts.sparseTokens !== undefined) o.sparseTokens = opts.sparseTokens;
  if (opts.mcls !== undefined) o.mcls = opts.mcls;
  if (opts.prompt !== undefined) {
    if (typeof opts.prompt !== 'string') throw new InvalidInputError('option "prompt" must be a string', { expected: "a prompt name such as 'query', or literal text", received: opts.prompt });
    o.prompt = opts.prompt;
  }
  return o;
}
