/**
 * Calibration cache behind a tiny { get, put } interface (the transformers.js cache pattern):
 * IndexedDB in the browser so a second visit skips calibration, a Map in tests and where IndexedDB is
 * missing. Keyed by (backend, adapter, model, dtype).
 */
import type { CostModel, CostSample } from './plan-cost.ts';

export interface CalibrationRecord {
  version: 1;
  key: string;
  cost: CostModel;
  samples: (CostSample & { gpuMs: number | null })[];
  createdAt: number;
}

export interface CalibrationCache {
  get(key: string): Promise<CalibrationRecord | undefined>;
  put(key: string, rec: CalibrationRecord): Promise<void>;
}

export function memoryCache(): CalibrationCache & { map: Map<string, CalibrationRecord> } {
  const map = new Map<string, CalibrationRecord>();
  return {
    map,
    async get(key) {
      return map.get(key);
    },
    async put(key, rec) {
      map.set(key, rec);
    },
  };
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** IndexedDB store `m3web-calibration` / `calibration`; falls back to memory when IndexedDB is absent. */
export function indexedDbCache(dbName = 'm3web-calibration'): CalibrationCache {
  if (typeof indexedDB === 'undefined') return memoryCache();
  let db: Promise<IDBDatabase> | null = null;
  const open = () =>
    (db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open(dbName, 1);
      r.onupgradeneeded = () => r.result.createObjectStore('calibration');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    }));
  return {
    async get(key) {
      const d = await open();
      const rec = (await req(d.transaction('calibration', 'readonly').objectStore('calibration').get(key))) as CalibrationRecord | undefined;
      // Check what comes back before trusting it (a half-written or older record is a miss).
      return rec && rec.version === 1 && rec.key === key && Number.isFinite(rec.cost?.a) ? rec : undefined;
    },
    async put(key, rec) {
      const d = await open();
      await req(d.transaction('calibration', 'readwrite').objectStore('calibration').put(rec, key));
    },
  };
}

export function calibrationKey(parts: { backend: string; adapter: string; model: string; dtype: string }): string {
  return `v1|${parts.backend}|${parts.adapter}|${parts.model}|${parts.dtype}`;
}
