/**
 * A SemanticIndex behind a message boundary: what workers/search.worker.ts exposes with comlink, so a
 * 1M-document scan runs off the page's main thread (issue #12: "in a worker, without freezing the page").
 *
 * Everything here crosses postMessage by structured clone: documents carry precomputed vectors (no
 * embedder lives in this worker; embed with M3Client, then add), `filter` functions cannot cross and are
 * refused, and results are plain objects. Large inputs and outputs should be transferred by the caller
 * (`Comlink.transfer`, see SearchWorker in search-worker.ts). One index per service: `create`, `open`
 * (IndexedDB + OPFS, which workers have) or `fromBytes` replaces the one held before.
 */
import { InvalidInputError } from '../errors.ts';
import { SemanticIndex } from './semantic-index.ts';
import { openBrowserStore } from './store.ts';
import type { Doc, IndexOptions, IndexStats, QueryVectors, SearchHit, SearchOptions } from './types.ts';

/** Index options that can cross a message boundary (no embedder). */
export type RemoteIndexOptions = Omit<IndexOptions, 'embedder'>;
/** Search options that can cross a message boundary (no filter function, no AbortSignal). */
export type RemoteSearchOptions = Omit<SearchOptions, 'filter' | 'signal'>;

export class SearchService {
  private index: SemanticIndex | null = null;

  private held(): SemanticIndex {
    if (!this.index) throw new InvalidInputError('the search worker holds no index yet', { expected: 'create(), open() or fromBytes() first', received: null });
    return this.index;
  }

  async create(opts: RemoteIndexOptions): Promise<IndexStats> {
    this.index = await SemanticIndex.create(noEmbedder(opts));
    return this.index.stats();
  }

  /** Opens (or starts) the index persisted under `name` in this origin's IndexedDB + OPFS. */
  async open(name: string, opts: RemoteIndexOptions): Promise<IndexStats> {
    this.index = await SemanticIndex.open(await openBrowserStore(name), noEmbedder(opts));
    return this.index.stats();
  }

  async fromBytes(bytes: Uint8Array, opts: Partial<RemoteIndexOptions> = {}): Promise<IndexStats> {
    this.index = await SemanticIndex.fromBytes(bytes, noEmbedder(opts));
    return this.index.stats();
  }

  /** Adds documents with precomputed vectors (`dense` / `sparse` / `colbert` for every stored output). */
  async add(docs: Doc[], opts: { chunkSize?: number } = {}): Promise<{ added: number; skipped: number; count: number }> {
    const r = await this.held().add(docs, opts);
    return { ...r, count: this.held().stats().count };
  }

  async remove(ids: string[]): Promise<number> {
    return this.held().remove(ids);
  }

  /** One query's top-k, with the time the search itself took inside the worker (`ms`), apart from the message round trip. */
  async search(query: QueryVectors, opts: RemoteSearchOptions = {}): Promise<{ hits: SearchHit[]; ms: number }> {
    if (typeof query !== 'object' || query === null) throw new InvalidInputError('the search worker takes query vectors, not text (embed the query first)', { expected: '{ dense?, sparse?, colbert? }', received: query });
    if ((opts as SearchOptions).filter !== undefined) throw new InvalidInputError('a filter function cannot cross to the search worker', { expected: 'no filter (filter on the page, or search in the page)', received: 'function' });
    const t0 = performance.now();
    const hits = await this.held().search(query, opts);
    return { hits, ms: performance.now() - t0 };
  }

  stats(): IndexStats {
    return this.held().stats();
  }

  toBytes(): Uint8Array {
    return this.held().toBytes();
  }
}

function noEmbedder<T extends Partial<IndexOptions>>(opts: T): T {
  if (opts && 'embedder' in opts && opts.embedder !== undefined) throw new InvalidInputError('the search worker has no embedder: add precomputed vectors', { expected: 'options without embedder', received: 'embedder' });
  return opts ?? ({} as T);
}
