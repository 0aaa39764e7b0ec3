/**
 * The public shapes of the in-page index (`SemanticIndex`, src/search/semantic-index.ts).
 * The index depends on no client or engine: anything with an `embed` of the `Embedder` shape will do
 * (the engine's `EngineEmbedding`, src/engine/engine.ts, and `M3Client.embed` return exactly it).
 */
import type { ColbertVectors, SparseVector } from './score.ts';

export type { ColbertVectors, SparseVector };

export type Output = 'dense' | 'sparse' | 'colbert';

/** How dense vectors are kept: f32; int8 with one scale per vector; 1-bit signs for a first pass plus int8 for rescoring. */
export type DenseStorage = 'f32' | 'int8' | 'binary+int8';

export type SearchMode = 'dense' | 'sparse' | 'colbert' | 'hybrid';

export interface EmbedOptions {
  outputs?: Output[];
  dims?: number;
  layers?: number;
  prompt?: string;
  signal?: AbortSignal;
}

export interface EmbedResult {
  /** (n, dims) row-major, L2-normalised; empty when 'dense' was not requested. */
  embeddings: Float32Array;
  dims: number;
  sparse?: SparseVector[];
  colbert?: ColbertVectors[];
}

/** What the index needs from a model: the engine, a worker proxy or M3Client. */
export interface Embedder {
  embed(texts: string[], opts: EmbedOptions): Promise<EmbedResult>;
  /** Stored with a persisted index; loading it with another model is an IndexMismatchError. */
  modelId?: string;
}

export interface IndexOptions {
  /** Embeds documents and string queries; without one, give `dims` and add precomputed vectors. */
  embedder?: Embedder;
  /** Dense width. With an embedder: passed as its `dims` (Matryoshka truncation); absent = what the model returns on the first add. */
  dims?: number;
  /** Encoder layers (early exit), passed to the embedder and stored with the index. */
  layers?: number;
  /** Default 'f32'. */
  storage?: DenseStorage;
  /** Representations to keep; default ['dense']. */
  outputs?: Output[];
  /** ColBERT vectors as int8 with one scale per vector (4× smaller) instead of f32. */
  colbertStorage?: 'f32' | 'int8';
  /** Model id stored with the index when there is no embedder (or it has no modelId); default 'precomputed'. */
  modelId?: string;
  /** Prompts prepended by the embedder (instruction models); stored as given. */
  queryPrompt?: string;
  docPrompt?: string;
  /**
   * binary+int8: what sign codes are taken against. Default: the mean of the first committed chunk's dense
   * vectors (anisotropic embeddings make raw signs nearly constant); a Float32Array(dims): this centre (e.g.
   * a whole corpus's mean, computed offline); false: raw signs (v > 0). Fixed once the index holds documents.
   */
  centre?: Float32Array | false;
  /** Documents per embedding call and per persisted chunk; default 256. */
  chunkSize?: number;
}

/** A document; `dense` / `sparse` / `colbert` given here are used as they are (no model needed). */
export interface Doc {
  id: string;
  text?: string;
  meta?: unknown;
  dense?: Float32Array;
  sparse?: SparseVector;
  colbert?: ColbertVectors;
}

export interface AddProgress {
  done: number;
  total: number;
  /** Documents skipped because their id was already in the index (a resumed add). */
  skipped: number;
}

export interface AddOptions {
  onProgress?: (p: AddProgress) => void;
  signal?: AbortSignal;
  /** Documents per embedding call and persisted chunk for this call (default: the index's chunkSize). */
  chunkSize?: number;
}

/** A query given as representations instead of text. */
export interface QueryVectors {
  dense?: Float32Array;
  sparse?: SparseVector;
  colbert?: ColbertVectors;
}

/**
 * First pass over all documents, then a rescoring of `multiplier × k` candidates at the stored precision and dims.
 * `'binary'`: Hamming distance of sign codes (binary+int8 storage); `'prefix'`: the first `prefixDims` values (Matryoshka).
 */
export interface FunnelOptions {
  first: 'binary' | 'prefix';
  prefixDims?: number;
  /** Shortlist size as a multiple of k; default 200 for 'binary', 10 for 'prefix'. */
  multiplier?: number;
}

export interface SearchOptions {
  k?: number;
  mode?: SearchMode;
  /** [dense, sparse, colbert] as in FlagEmbedding's computeScore; default [1, 1, 1] (colbert used only when stored). */
  weights?: readonly [number, number, number];
  /** Keep only documents for which this returns true (applied before top-k, so k results come back when k pass). */
  filter?: (meta: unknown, id: string) => boolean;
  /** Dense first pass; `false` = exact scan. Default: binary (×200, see DEFAULT_MULTIPLIER) for binary+int8, exact otherwise. */
  funnel?: FunnelOptions | false;
  /** Shortlist size per source for 'colbert' and 'hybrid', as a multiple of k; default 10. */
  shortlist?: number;
  signal?: AbortSignal;
}

export interface SearchHit {
  id: string;
  score: number;
  /** Each representation's score, null where this mode did not compute it. */
  scores: { dense: number | null; sparse: number | null; colbert: number | null };
  meta: unknown;
}

export interface IndexStats {
  count: number;
  dims: number;
  layers: number | null;
  storage: DenseStorage;
  outputs: Output[];
  modelId: string;
  /** Bytes of vector data held in memory (dense codes, sparse postings, ColBERT blocks). */
  bytes: { dense: number; sparse: number; colbert: number; total: number };
  bytesPerDoc: number;
  /** Where it is persisted, if anywhere. */
  persisted: { name: string; chunks: number; backend: 'opfs' | 'indexeddb' | 'fs' } | null;
}
