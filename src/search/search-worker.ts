/**
 * SearchWorker: the page's handle on a SemanticIndex that lives in a worker (workers/search.worker.ts →
 * service.ts), so scans of a large index never block the main thread. Every method is the service's,
 * asynchronous; `add` and `fromBytes` transfer the vectors' buffers instead of copying them (the caller's
 * arrays are detached afterwards, so pass arrays you no longer need, or copies).
 *
 *   const sw = SearchWorker.start();
 *   await sw.create({ dims: 256, storage: 'binary+int8' });
 *   await sw.add(docs);                                   // precomputed dense / sparse / colbert
 *   const { hits } = await sw.search({ dense: q }, { k: 10 });
 */
import * as Comlink from 'comlink';
import type { RemoteIndexOptions, RemoteSearchOptions, SearchService } from './service.ts';
import type { Doc, IndexStats, QueryVectors, SearchHit } from './types.ts';

function buffersOf(docs: Doc[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const take = (a: ArrayBufferView | undefined) => {
    if (a && a.buffer instanceof ArrayBuffer) out.add(a.buffer);
  };
  for (const d of docs) {
    take(d.dense);
    take(d.sparse?.ids);
    take(d.sparse?.weights);
    take(d.colbert?.data);
  }
  return [...out];
}

export class SearchWorker {
  private constructor(
    private readonly worker: Worker,
    private readonly remote: Comlink.Remote<SearchService>,
  ) {}

  /** Starts workers/search.worker.ts, or the worker `factory` makes (an app that bundles its own copy). */
  static start(factory?: () => Worker): SearchWorker {
    const worker = factory ? factory() : new Worker(new URL('../../workers/search.worker.ts', import.meta.url), { type: 'module', name: 'search' });
    return new SearchWorker(worker, Comlink.wrap<SearchService>(worker));
  }

  create(opts: RemoteIndexOptions): Promise<IndexStats> {
    return this.remote.create(opts);
  }

  open(name: string, opts: RemoteIndexOptions): Promise<IndexStats> {
    return this.remote.open(name, opts);
  }

  /** Imports an index file; its buffer is transferred. */
  fromBytes(bytes: Uint8Array, opts: Partial<RemoteIndexOptions> = {}): Promise<IndexStats> {
    return this.remote.fromBytes(Comlink.transfer(bytes, [bytes.buffer as ArrayBuffer]), opts);
  }

  /** Adds documents with precomputed vectors; their buffers are transferred (detached here afterwards). */
  add(docs: Doc[], opts: { chunkSize?: number } = {}): Promise<{ added: number; skipped: number; count: number }> {
    return this.remote.add(Comlink.transfer(docs, buffersOf(docs)), opts);
  }

  remove(ids: string[]): Promise<number> {
    return this.remote.remove(ids);
  }

  search(query: QueryVectors, opts: RemoteSearchOptions = {}): Promise<{ hits: SearchHit[]; ms: number }> {
    return this.remote.search(query, opts);
  }

  stats(): Promise<IndexStats> {
    return this.remote.stats();
  }

  toBytes(): Promise<Uint8Array> {
    return this.remote.toBytes();
  }

  terminate(): void {
    this.remote[Comlink.releaseProxy]();
    this.worker.terminate();
  }
}
