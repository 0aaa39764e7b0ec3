/**
 * The backend interfaces. Every compute backend (WebGPU in src/gpu, the fast CPU backend in src/cpu)
 * implements `BatchEncoder`: it encodes one padded, length-sorted batch. `Engine` (engine.ts) wraps any
 * BatchEncoder with the one validation, tokenisation, batching, head assembly and reordering path, so
 * every backend accepts and rejects exactly the same requests and returns exactly the same shapes.
 *
 * `EmbedBackend` is what the worker's service (and M3Client through it) talks to: an Engine over a
 * BatchEncoder (WebGPU, the CPU backend, a whole exported ONNX graph), or the CPU reference in tests.
 */
import type { LoadedModel } from '../model/load.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';
import type { ResolvedEmbedOptions } from './options.ts';
import type { EngineEmbedding, EngineRequest } from './engine.ts';

/** Where a backend computes. 'cpu-ref' is the oracle (tests and parity only once the CPU backend lands). */
export type BackendKind = 'webgpu' | 'cpu' | 'cpu-ref' | 'ort-wasm';

export interface BatchOutputs {
  dense?: boolean;
  /** Per-token lexical weights relu(sparse_linear(h)). */
  sparse?: boolean;
  /** Per-token ColBERT vectors normalise(colbert_linear(h)), truncated to colbertDims. */
  colbert?: boolean;
  colbertDims?: number;
}

export interface BatchResult {
  /** (B, dims) */
  dense?: Float32Array;
  /** (B·T) per-token weights, padding included (the engine drops it). */
  tokenWeights?: Float32Array;
  /** (B·T, dim) per-token vectors, CLS and padding included (the engine drops them). */
  colbert?: { data: Float32Array; dim: number };
}

/** One compute backend's forward pass over a padded batch. */
export interface BatchEncoder {
  readonly backend: BackendKind;
  /** Weight dtype as computed ('f32', 'f16', 'f16x2' = f16 pairs packed in u32, ...). */
  readonly dtype: string;
  /** Blocks this encoder holds: a request for more layers is rejected before any work. */
  readonly maxLayers: number;
  /** The only depths it can stop at (a whole exported graph: [L]); undefined: every depth 1..maxLayers. */
  readonly exits?: readonly number[];
  /** ColBERT head width, or null when the model has no BGE-M3 heads. */
  readonly colbertWidth: number | null;
  /** Largest padded-token count (B × T) one batch may hold on this backend (e.g. one GPU storage binding). */
  readonly batchTokenCap: number;
  /** batch: (B, T) ids + mask; lengths: real tokens per row; o and want already validated by the Engine. */
  embedBatch(batch: EncoderBatch, lengths: number[], o: ResolvedEmbedOptions, want: BatchOutputs): Promise<BatchResult>;
  destroy(): void;
}

/** What the worker service holds for the loaded model, whatever computes it. */
export interface EmbedBackend {
  readonly kind: BackendKind;
  readonly dtype: string;
  readonly model: LoadedModel;
  readonly maxLayers: number;
  embed(texts: readonly string[], opts?: EngineRequest): Promise<EngineEmbedding>;
  /** Releases the backend's memory once in-flight calls have settled; later calls reject with EngineDestroyedError. */
  destroy(): void;
}
