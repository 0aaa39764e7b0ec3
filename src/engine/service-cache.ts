/**
 * EmbedService.load's side of the quantised model cache (src/model/quant-cache.ts; src/model/QUANT.md, "The model
 * cache"): before the load, find a committed copy in the asked dtype and load that instead of the source; after a
 * load that quantised here, store the copy and then drop the source's weights; after a float load, drop the
 * quantised copies once the source's weights are stored. One weights copy per model, the latest load's dtype.
 */
import { QuotaError } from '../errors.ts';
import { broadcast, LOCAL_MODELS_PATH, type CacheLike } from '../model/file-cache.ts';
import type { LoadedModel } from '../model/load.ts';
import { findQuantCopy, keepSourceWeights, modelFolderUrl, quantCopyTensors, sourceWeightUrls, writeQuantCopy, type QuantCopyReport, type QuantDtype } from '../model/quant-cache.ts';
import type { ModelSource } from '../model/source.ts';
import { Engine } from './engine.ts';
import type { LoadOptions } from './service-types.ts';
import type { ServedBackend } from './service-load.ts';

export interface CacheStep {
  cache: CacheLike;
  source: ModelSource;
  headers?: Record<string, string>;
  /** 'int8' / 'q4' asked for on WebGPU; null for a float load. */
  dtype: QuantDtype | null;
  /** The committed copy in that dtype, loaded instead of the source; null when there is none. */
  copy: ModelSource | null;
}

/** What the cache work after a load did (EmbedService.cacheSettled). */
export type CacheOutcome = { kind: 'stored'; report: QuantCopyReport } | { kind: 'dropped'; urls: string[] } | { kind: 'failed'; error: string };

/**
 * The cache step of one load, or null when the cache is not involved: no Cache Storage, keepWeights, a backend that
 * loads no encoder weights of ours (ort-wasm) or the test oracle (cpu-ref), or a folder the cache is the only copy of
 * (a local folder under LOCAL_MODELS_PATH: dropping its weights would lose the other dtypes).
 */
export async function planCacheStep(cache: CacheLike | null, source: ModelSource, o: { backend: NonNullable<LoadOptions['backend']>; weights: LoadOptions['weights']; keepWeights: boolean; headers?: Record<string, string> }): Promise<CacheStep | null> {
  if (!cache || o.keepWeights || !['auto', 'webgpu', 'cpu'].includes(o.backend)) return null;
  if (new URL(modelFolderUrl(source)).pathname.startsWith(LOCAL_MODELS_PATH)) return null;
  // The CPU backend runs a float folder in f32 whatever `weights` says: for it every load is a float load.
  const dtype = o.backend !== 'cpu' && (o.weights === 'int8' || o.weights === 'q4') ? o.weights : null;
  const copy = dtype ? await findQuantCopy(cache, source, dtype) : null;
  return { cache, source, headers: o.headers, dtype, copy };
}

/** Runs `fn` holding the cache lock of one model folder across this origin's tabs and workers (Web Locks, where there are). */
function locked<T>(folder: string, fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  return locks ? (locks.request(`m3web-quant-cache ${folder}`, fn) as Promise<T>) : fn();
}

/**
 * The work after a load, or null when there is none: it reads what it needs from `loaded` now (the service drops the
 * JS weights right after), and runs when called. `quantisedHere`: the load quantised the float weights itself
 * (quantizeLoaded), so the copy holds exactly the matrices the engine runs.
 */
export function afterLoad(step: CacheStep, loaded: LoadedModel, built: readonly ServedBackend[], quantisedHere: boolean): (() => Promise<CacheOutcome>) | null {
  const { cache, source } = step;
  if (step.copy) return null;
  const weights = sourceWeightUrls(source, loaded.weightFiles);
  let work: () => Promise<CacheOutcome>;
  if (step.dtype) {
    const gpu = built.find((b) => b instanceof Engine && b.kind === 'webgpu');
    if (!quantisedHere || !gpu || gpu.dtype !== step.dtype) return null;
    const dtype = step.dtype;
    const tensors = quantCopyTensors(loaded);
    const config = loaded.configJson;
    work = async () => {
      const report = await writeQuantCopy(cache, source, dtype, tensors, config, { sourceWeights: weights });
      broadcast({ type: 'stored', url: report.base, bytes: report.bytes });
      return { kind: 'stored', report };
    };
  } else {
    if (loaded.quantization || loaded.weightFiles.length === 0) return null;
    work = async () => ({ kind: 'dropped', urls: await keepSourceWeights(cache, source, weights) });
  }
  return () =>
    locked(modelFolderUrl(source), work).catch((e: Error) => {
      broadcast({ type: e instanceof QuotaError ? 'quota' : 'rejected', url: modelFolderUrl(source), error: `${e?.name}: ${e?.message}` });
      return { kind: 'failed', error: `${e?.name}: ${e?.message}` } as const;
    });
}
