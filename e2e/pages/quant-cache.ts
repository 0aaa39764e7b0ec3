// Drives e2e/quant-cache.spec.ts: the embed worker (workers/embed.worker.ts, the real EmbedService with Cache
// Storage) loads a fixture folder with weights int8 / q4 / f32; the page reads what the model cache holds.
import * as Comlink from 'comlink';
import type { EmbedService, LoadOptions } from '../../src/engine/service.ts';
import type { CacheOutcome } from '../../src/engine/service-cache.ts';
import { listCachedModels, MODEL_CACHE_NAME, type CachedModel } from '../../src/model/file-cache.ts';
import type { LoadProgress, QuantizeProgress } from '../../src/model/load.ts';

const api: Comlink.Remote<EmbedService> = Comlink.wrap<EmbedService>(new Worker(new URL('../../workers/embed.worker.ts', import.meta.url), { type: 'module', name: 'embed' }));

const errorOf = (e: unknown) => ({ name: (e as Error)?.name ?? 'Error', message: String((e as Error)?.message ?? e) });

const page = {
  /** Loads `/models/<fixture>/` on WebGPU, embeds `texts` (dense, sparse, ColBERT), waits for the cache work. */
  async run(fixture: string, weights: NonNullable<LoadOptions['weights']>, texts: string[]) {
    const quantize: QuantizeProgress[] = [];
    try {
      const info = await api.load(
        new URL(`/models/${fixture}/`, location.href).href,
        { backend: 'webgpu', weights },
        Comlink.proxy((p: LoadProgress | QuantizeProgress) => void (p.phase === 'quantize' && quantize.push(p))),
      );
      const r = await api.embed(texts, { outputs: ['dense', 'sparse', 'colbert'] });
      const outcome: CacheOutcome | null = await api.cacheSettled();
      return {
        info: { source: info.source, dtype: info.dtype, backend: info.backend },
        dense: Array.from(r.embeddings),
        sparse: r.sparse!.map((s) => ({ ids: Array.from(s.ids), weights: Array.from(s.weights) })),
        colbert: r.colbert!.map((c) => Array.from(c.data)),
        quantize: { count: quantize.length, prequantized: quantize.filter((p) => p.prequantized).length },
        outcome,
      };
    } catch (e) {
      return { error: errorOf(e) };
    }
  },
  /** Resolves once the worker runs (its modules are in: the spec may go offline after this). */
  async ready(): Promise<boolean> {
    return (await api.ping()).loaded;
  },
  /** Every URL in the model cache, with its status. */
  async keys(): Promise<{ url: string; status: number }[]> {
    const cache = await caches.open(MODEL_CACHE_NAME);
    return Promise.all((await cache.keys()).map(async (r) => ({ url: new URL(r.url).pathname, status: (await cache.match(r))!.status })));
  },
  /** What the storage panel lists (src/app/storage.ts). */
  async models(): Promise<CachedModel[]> {
    return listCachedModels();
  },
  async clear(): Promise<boolean> {
    return caches.delete(MODEL_CACHE_NAME);
  },
};

export type QuantCachePage = typeof page;

declare global {
  interface Window {
    __qc?: QuantCachePage;
  }
}

window.__qc = page;
document.getElementById('status')!.textContent = 'ready';
