import { InvalidInputError } from '../errors.ts';
import type { EncoderConfig, Pooling, PoolingConfig } from '../model/config.ts';
import { validateMcls } from './mcls.ts';

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
  /** BGE-M3's MCLS for long documents: insert a CLS every this many tokens and average the CLS states. */
  mcls?: number;
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
  if (o.pooling !== undefined && o.pooling !== 'cls' && o.pooling !== 'mean') {
    throw new InvalidInputError('option "pooling" is not supported', { expected: '"cls" or "mean"', received: o.pooling });
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
    mcls: validateMcls(o.mcls),
  };
}
