/**
 * m3web's public surface (the package's "." entry): `import { M3Client } from 'm3web'`.
 * Browser code: M3Client owns its worker (bundled next to this file as embed.worker.js and
 * referenced with `new URL('./x.worker.js', import.meta.url)`, so the app's bundler picks them up).
 * The Node engine and the bulk helpers live in 'm3web/node' (src/node.ts).
 */
export { M3Client } from './client/client.ts';
export type { ClientEmbedOptions, ClientEmbedResult, ClientProgress, ClientStats, M3ClientOptions } from './client/client.ts';
export type { Budget, Candidate, CostModel, Plan, QualityTable } from './client/planner.ts';
export type { CalibrationCache, CalibrationRecord } from './client/cache.ts';
export type { Backend, EmbedResult, GpuProbe, ModelInfo } from './engine/service-types.ts';
export type { ModelSourceSpec } from './model/source.ts';

export { batchDenseScores, colbertScore, computeScore, denseScore, lexicalMatchingScore } from './search/score.ts';
export type { ColbertVectors, M3Representation, M3Scores, ModeWeights, SparseVector } from './search/score.ts';

// In-page search over the client's outputs (dense, sparse, ColBERT), persisted in IndexedDB / OPFS.
export { SemanticIndex } from './search/semantic-index.ts';
// The same index hosted in its own worker (workers/search.worker.ts), for corpora too large to scan on the main thread.
export { SearchWorker } from './search/search-worker.ts';
export type { RemoteIndexOptions, RemoteSearchOptions } from './search/service.ts';
export { openBrowserStore, type IndexStore } from './search/store.ts';
export { toParquet } from './search/parquet.ts';
export type { AddOptions, AddProgress, DenseStorage, Doc, Embedder, IndexOptions, IndexStats, QueryVectors, SearchHit, SearchMode, SearchOptions } from './search/types.ts';

// Every typed error (subclasses of M3Error; `name` survives structured cloning, so `e.name === 'BudgetError'` works too).
export * from './errors.ts';
export { BudgetError, ClientDisposedError, WorkerCrashedError } from './client/errors.ts';

// transformers.js-shaped entry: pipeline('feature-extraction', model, { device, dtype }).
export { pipeline, Tensor } from './pipeline.ts';
export type { FeatureExtractionOptions, FeatureExtractionPipeline, PipelineOptions } from './pipeline.ts';
