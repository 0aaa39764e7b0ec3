/**
 * A transformers.js-shaped entry on M3Client, so that an app written for transformers.js switches by changing one import:
 *
 *   import { pipeline } from 'm3web';                        // was: from '@huggingface/transformers'
 *   const extractor = await pipeline('feature-extraction', 'BAAI/bge-m3', { device: 'webgpu', dtype: 'fp16' });
 *   const t = await extractor(['hello', 'world'], { pooling: 'cls', normalize: true });
 *   t.dims;   // [2, 1024]
 *   t.data;   // Float32Array (2 × 1024), row-major
 *
 * It accepts what transformers.js' FeatureExtractionPipeline accepts for sentence embeddings (a string or strings;
 * `pooling` 'mean' | 'cls', `normalize`) and adds early exit (`layers`) and Matryoshka truncation (`dims`).
 * What it cannot honour is a typed InvalidInputError, never a silently different result: `pooling: 'none'` (token
 * embeddings, transformers.js' default), quantized dtypes and devices other than the ones mapped below.
 * Unlike M3Client's own default (the planned layers × dims), a call here runs the whole model at full width unless
 * `layers` / `dims` say otherwise, as transformers.js does.
 */
import { M3Client, type M3ClientOptions } from './client/client.ts';
import { InvalidInputError } from './errors.ts';

/** transformers.js' `device` values we map onto M3Client backends. */
const DEVICES = { auto: 'auto', webgpu: 'webgpu', wasm: 'ort-wasm', cpu: 'cpu' } as const;
/** transformers.js' `dtype` values we map onto the engine's weight storage ('auto' keeps the checkpoint's). */
const DTYPES = { auto: 'auto', fp32: 'f32', fp16: 'f16' } as const;

export interface PipelineOptions {
  /** 'webgpu', 'wasm' (onnxruntime-web, needs the model's onnx/model.onnx), 'cpu' (the engine's CPU path) or 'auto' (default). */
  device?: keyof typeof DEVICES;
  /** 'fp32', 'fp16' or 'auto' (default: the checkpoint's precision). */
  dtype?: keyof typeof DTYPES;
  /** transformers.js' progress callback; receives M3Client's progress events. */
  progress_callback?: (p: unknown) => void;
  /** Passed to M3Client.create as is (budget, cache, onnx, ortWasmPaths, …). */
  client?: Partial<Omit<M3ClientOptions, 'model' | 'backend' | 'weights'>>;
}

export interface FeatureExtractionOptions {
  /** Required: transformers.js' default 'none' (token embeddings) has no equivalent here. */
  pooling?: 'mean' | 'cls' | 'none';
  /** L2-normalise each row (after truncation to `dims`). Default false, as in transformers.js. */
  normalize?: boolean;
  /** Early exit: run only the first k transformer blocks. Default: all. */
  layers?: number;
  /** Matryoshka truncation: keep the first d values. Default: the hidden size. */
  dims?: number;
  signal?: AbortSignal;
}

/** The part of transformers.js' Tensor a feature-extraction caller reads. */
export class Tensor {
  readonly type = 'float32';
  constructor(
    readonly data: Float32Array,
    readonly dims: number[],
  ) {}

  get size(): number {
    return this.data.length;
  }

  /** Nested arrays, as transformers.js' `tolist()`. */
  tolist(): number[][] {
    const [n, d] = this.dims;
    return Array.from({ length: n }, (_, i) => Array.from(this.data.subarray(i * d, (i + 1) * d)));
  }
}

export interface FeatureExtractionPipeline {
  (texts: string | string[], options?: FeatureExtractionOptions): Promise<Tensor>;
  readonly task: 'feature-extraction';
  /** The client underneath, for everything the transformers.js shape has no room for (sparse, ColBERT, plans). */
  readonly client: M3Client;
  dispose(): Promise<void>;
}

function pick<T extends Record<string, string>>(table: T, what: string, value: unknown): T[keyof T] {
  const key = value ?? 'auto';
  if (typeof key !== 'string' || !Object.hasOwn(table, key))
    throw new InvalidInputError(`pipeline: option "${what}" is not supported`, {
      expected: Object.keys(table)
        .map((k) => `'${k}'`)
        .join(', '),
      received: value,
    });
  return table[key as keyof T];
}

export async function pipeline(task: 'feature-extraction', model: string, options: PipelineOptions = {}): Promise<FeatureExtractionPipeline> {
  if (task !== 'feature-extraction') throw new InvalidInputError('pipeline: unsupported task', { expected: "'feature-extraction'", received: task });
  if (typeof model !== 'string' || model === '') throw new InvalidInputError('pipeline: model must be a hub id or a URL', { expected: 'a non-empty string', received: model });
  const backend = pick(DEVICES, 'device', options.device);
  const weights = pick(DTYPES, 'dtype', options.dtype);
  const onProgress = options.progress_callback;
  const client = await M3Client.create({ ...options.client, model, backend, weights, ...(onProgress ? { onProgress } : {}) });

  const extract = async (texts: string | string[], opts: FeatureExtractionOptions = {}): Promise<Tensor> => {
    const { pooling, normalize = false, layers = client.info.layers, dims = client.info.hidden, signal } = opts;
    if (pooling !== 'mean' && pooling !== 'cls')
      throw new InvalidInputError('pipeline: option "pooling" must be given', {
        expected: "'mean' or 'cls' (token embeddings, transformers.js' 'none', are not returned: use M3Client's 'colbert' output)",
        received: pooling,
      });
    const list = typeof texts === 'string' ? [texts] : texts;
    const r = await client.embed(list, { pooling, normalize, layers, dims, ...(signal ? { signal } : {}) });
    return new Tensor(r.embeddings, [r.n, r.dims]);
  };
  return Object.assign(extract, { task: 'feature-extraction' as const, client, dispose: async () => client.dispose() });
}
