// Drives SemanticIndex from Playwright (e2e/search.spec.ts): a fixture model in the embed worker, the
// browser store (IndexedDB + OPFS), and plain-JSON results.
import * as Comlink from 'comlink';
import type { EmbedService } from '../../src/engine/service.ts';
import { SearchWorker } from '../../src/search/search-worker.ts';
import { SemanticIndex } from '../../src/search/semantic-index.ts';
import { openBrowserStore } from '../../src/search/store.ts';
import { hashEmbedder, randomSparse, randomUnit, rng } from '../../src/search/testing.ts';
import type { Doc, Embedder, IndexOptions, SearchOptions } from '../../src/search/types.ts';

export interface Hit {
  id: string;
  score: number;
}

let api: Comlink.Remote<EmbedService> | null = null;
let embedder: Embedder | null = null;
let index: SemanticIndex | null = null;
let opts: IndexOptions = {};

const errorOf = (e: unknown) => ({ name: (e as Error)?.name ?? 'Error', message: String((e as Error)?.message ?? e) });

const page = {
  /** Loads a fixture model into the embed worker; the embedder forwards only what crosses comlink (no AbortSignal). */
  async load(model: string, backend: 'auto' | 'webgpu' | 'cpu' = 'auto'): Promise<{ ms: number; backend: string }> {
    const t0 = performance.now();
    const worker = new Worker(new URL('../../workers/embed.worker.ts', import.meta.url), { type: 'module', name: 'embed' });
    api = Comlink.wrap<EmbedService>(worker);
    const info = await api.load(new URL(`/models/${model}/`, location.href).href, { backend });
    embedder = {
      modelId: `fixture/${model}`,
      embed: (texts, o) => api!.embed(texts, { outputs: o.outputs, ...(o.dims ? { dims: o.dims } : {}), ...(o.layers ? { layers: o.layers } : {}) }),
    };
    return { ms: performance.now() - t0, backend: (info as { backend: string }).backend };
  },

  async open(name: string, o: Omit<IndexOptions, 'embedder'>): Promise<{ stats: ReturnType<SemanticIndex['stats']>; ms: number } | { error: ReturnType<typeof errorOf> }> {
    try {
      const t0 = performance.now();
      opts = { ...o, embedder: embedder ?? undefined };
      index = await SemanticIndex.open(await openBrowserStore(name), opts);
      return { stats: index.stats(), ms: performance.now() - t0 };
    } catch (e) {
      return { error: errorOf(e) };
    }
  },

  /** add(); `abortAt` aborts once that many documents are done. */
  async add(docs: Doc[], abortAt?: number): Promise<{ added?: number; skipped?: number; progress: number[]; ms: number; error?: ReturnType<typeof errorOf>; count: number }> {
    const ctl = new AbortController();
    const progress: number[] = [];
    const t0 = performance.now();
    try {
      const r = await index!.add(docs, { signal: ctl.signal, onProgress: (p) => (progress.push(p.done), abortAt !== undefined && p.done >= abortAt && ctl.abort()) });
      return { ...r, progress, ms: performance.now() - t0, count: index!.stats().count };
    } catch (e) {
      return { error: errorOf(e), progress, ms: performance.now() - t0, count: index!.stats().count };
    }
  },

  /** Precomputed random vectors (no model), for the quota test. */
  async addRandom(n: number, seed: number): Promise<{ error?: ReturnType<typeof errorOf>; count: number }> {
    const d = index!.header.dims;
    const v = randomUnit(n, d, seed);
    try {
      await index!.add(Array.from({ length: n }, (_, i) => ({ id: `r${seed}-${i}`, dense: v.subarray(i * d, (i + 1) * d) })));
      return { count: index!.stats().count };
    } catch (e) {
      return { error: errorOf(e), count: index!.stats().count };
    }
  },

  /**
   * Documents whose vectors are a hashed bag of their words at the index's width (testing.ts), given as
   * precomputed vectors: the bulk of a corpus that SwiftShader could not embed in a test's time.
   */
  async addHashed(docs: { id: string; text: string; meta?: unknown }[]): Promise<{ added?: number; skipped?: number; error?: ReturnType<typeof errorOf>; count: number }> {
    const h = index!.header;
    const e = await hashEmbedder().embed(
      docs.map((d) => d.text),
      { dims: h.dims, outputs: h.outputs },
    );
    try {
      const r = await index!.add(
        docs.map((d, i) => ({ id: d.id, meta: d.meta, dense: e.embeddings.subarray(i * h.dims, (i + 1) * h.dims), sparse: e.sparse![i] })),
        { chunkSize: 1024 },
      );
      return { ...r, count: index!.stats().count };
    } catch (err) {
      return { error: errorOf(err), count: index!.stats().count };
    }
  },

  /** Embeds each query once with the model, then searches it in every given mode. */
  async search(queries: string[], modes: Omit<SearchOptions, 'filter' | 'signal'>[]): Promise<Hit[][][]> {
    const out: Hit[][][] = [];
    for (const q of queries) {
      const r = await embedder!.embed([q], { outputs: index!.header.outputs, dims: index!.header.dims });
      const v = { dense: r.embeddings.subarray(0, r.dims), sparse: r.sparse?.[0] };
      out.push(await Promise.all(modes.map(async (o) => (await index!.search(v, o)).map((h) => ({ id: h.id, score: h.score })))));
    }
    return out;
  },

  /** The same n × d documents in the search worker and in the page: both top-10 lists per query, and what a filter does. */
  async workerVsPage(n: number, d: number): Promise<{ worker: Hit[][]; page: Hit[][]; count: number; filterError: string }> {
    const v = randomUnit(n, d, 5);
    const docs = (src: Float32Array) => Array.from({ length: n }, (_, i) => ({ id: `w${i}`, dense: src.slice(i * d, (i + 1) * d) }));
    const local = await SemanticIndex.create({ dims: d, storage: 'binary+int8', chunkSize: 1000 });
    await local.add(docs(v));
    const sw = SearchWorker.start();
    try {
      await sw.create({ dims: d, storage: 'binary+int8', chunkSize: 1000 });
      const { count } = await sw.add(docs(v));
      const qs = randomUnit(5, d, 6);
      const worker: Hit[][] = [];
      const page: Hit[][] = [];
      for (let j = 0; j < 5; j++) {
        const q = qs.slice(j * d, (j + 1) * d);
        worker.push((await sw.search({ dense: q }, { k: 10 })).hits.map((h) => ({ id: h.id, score: h.score })));
        page.push((await local.search({ dense: q }, { k: 10 })).map((h) => ({ id: h.id, score: h.score })));
      }
      const filterError = await sw.search({ dense: qs.slice(0, d) }, { filter: () => true } as never).then(
        () => 'none',
        (e: Error) => e.name,
      );
      return { worker, page, count, filterError };
    } finally {
      sw.terminate();
    }
  },

  has: (ids: string[]) => ids.filter((id) => index!.has(id)).length,

  /** Reports `free` bytes left from navigator.storage.estimate(), as a nearly full profile would. */
  async limitQuota(free: number): Promise<void> {
    const real = navigator.storage.estimate.bind(navigator.storage);
    navigator.storage.estimate = async () => {
      const e = await real();
      return { ...e, quota: (e.usage ?? 0) + free };
    };
  },

  async destroy(name: string): Promise<void> {
    await (await openBrowserStore(name)).destroy();
  },

  /** Keystroke to results: embed one short query (dense + sparse) and run a hybrid top-10 over n synthetic documents of the model's width. */
  async keystroke(n: number, runs: number): Promise<{ ms: number[]; buildMs: number }> {
    const probe = await embedder!.embed(['probe'], { outputs: ['dense', 'sparse'] });
    const d = probe.dims;
    const big = await SemanticIndex.create({ dims: d, storage: 'binary+int8', outputs: ['dense', 'sparse'], chunkSize: 10_000 });
    const r = rng(1);
    const t0 = performance.now();
    for (let a = 0; a < n; a += 10_000) {
      const m = Math.min(10_000, n - a);
      const v = randomUnit(m, d, a);
      await big.add(Array.from({ length: m }, (_, i) => ({ id: `k${a + i}`, dense: v.subarray(i * d, (i + 1) * d), sparse: randomSparse(r, 8000, 30) })));
    }
    const buildMs = performance.now() - t0;
    const words = ['cancer risk', 'gene expression', 'vitamin d', 'blood pressure', 'stem cells'];
    const ms: number[] = [];
    for (let j = 0; j < runs + 2; j++) {
      const t1 = performance.now();
      const e = await embedder!.embed([words[j % words.length]], { outputs: ['dense', 'sparse'] });
      await big.search({ dense: e.embeddings.subarray(0, e.dims), sparse: e.sparse![0] }, { k: 10, mode: 'hybrid' });
      if (j >= 2) ms.push(performance.now() - t1);
    }
    return { ms, buildMs };
  },
};

export type SearchPage = typeof page;
declare global {
  interface Window {
    __search?: SearchPage;
  }
}
window.__search = page;
document.getElementById('status')!.textContent = 'ready';
