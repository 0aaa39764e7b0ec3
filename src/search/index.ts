// Public surface of in-page search (the package barrel src/index.ts re-exports from here). Node-only: ./fs-store.ts.
export { SemanticIndex, SCHEMA_VERSION } from './semantic-index.ts';
export { SearchWorker } from './search-worker.ts';
export type { RemoteIndexOptions, RemoteSearchOptions } from './service.ts';
export { openBrowserStore, type IndexStore, type Manifest, type ChunkRef } from './store.ts';
export { toParquet } from './parquet.ts';
export { FORMAT_VERSION, type IndexHeader } from './format.ts';
export type { AddOptions, AddProgress, DenseStorage, Doc, EmbedOptions, EmbedResult, Embedder, FunnelOptions, IndexOptions, IndexStats, Output, QueryVectors, SearchHit, SearchMode, SearchOptions } from './types.ts';
export { colbertScore, computeScore, denseScore, lexicalMatchingScore, type ColbertVectors, type M3Representation, type M3Scores, type ModeWeights, type SparseVector } from './score.ts';
