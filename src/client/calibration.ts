/**
 * Calibration: a few lengths × a few exits on the loaded model, timed in the worker (wall clock, plus
 * GPU time from timestamp-query when the device has it), fitted to ms ≈ a + b·T·l + c·T²·l, and cached
 * per (backend, adapter, model, dtype) so a second visit skips it.
 */
import type { GpuProbe, ModelInfo } from '../engine/service-types.ts';
import { calibrationKey, type CalibrationCache, type CalibrationRecord } from './cache.ts';
import { WorkerCrashedError } from './errors.ts';
import { defaultCostModel, fitCostModel, type CostModel, type ModelShape } from './plan-cost.ts';

/** The part of the worker's API calibration needs. */
export interface CalibrationTarget {
  calibrate(runs: { text: string; layers: number }[], backend?: ModelInfo['backend']): Promise<{ tokens: number; chars: number; layers: number; ms: number; gpuMs: number | null }[]>;
}

export interface CalibrationContext {
  /** The model as served by the backend to calibrate (info.backend names it). */
  info: ModelInfo;
  shape: ModelShape;
  adapter: GpuProbe | null;
  cache: CalibrationCache;
  mode: 'auto' | 'skip';
  /** False once the worker this calibration runs on was replaced. */
  current(): boolean;
  onProgress(p: { done: number; total: number; cached: boolean }): void;
}

export interface CalibrationOutcome {
  cost: CostModel;
  source: 'measured' | 'cache' | 'skipped';
  /** Embeds run in the worker (0 on a cache hit). */
  runs: number;
}

/** Identifies the device a calibration holds for: an adapter (WebGPU) or the CPU's core count. */
export function deviceKey(adapter: GpuProbe | null, info: ModelInfo): string {
  if (info.backend !== 'webgpu' || !adapter?.ok) return `cpu|${typeof navigator !== 'undefined' ? navigator.hardwareConcurrency : 0}`;
  const a = adapter.adapter;
  return `${a.vendor}|${a.architecture}|${a.description}|${a.isFallbackAdapter ? 'fallback' : 'hw'}`;
}

const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps'];
const textOf = (t: number) => Array.from({ length: Math.max(1, t - 2) }, (_, i) => WORDS[i % WORDS.length]).join(' ');

export async function calibrate(target: CalibrationTarget, ctx: CalibrationContext): Promise<CalibrationOutcome> {
  const { info, shape } = ctx;
  if (ctx.mode === 'skip') {
    return { cost: defaultCostModel(shape, info.backend, ctx.adapter?.ok === true && ctx.adapter.adapter.isFallbackAdapter), source: 'skipped', runs: 0 };
  }
  const key = calibrationKey({ backend: info.backend, adapter: deviceKey(ctx.adapter, info), model: info.source, dtype: info.dtype });
  const hit = await ctx.cache.get(key).catch(() => undefined);
  if (hit) {
    ctx.onProgress({ done: 0, total: 0, cached: true });
    return { cost: { ...hit.cost, source: 'cache' }, source: 'cache', runs: 0 };
  }
  const top = Math.min(info.layers, info.maxLayers ?? info.layers);
  const exits = info.backend === 'ort-wasm' ? [info.layers] : [...new Set(shape.mrlLayers?.length ? [Math.min(...shape.mrlLayers), Math.min(top, Math.max(...shape.mrlLayers))] : [1, Math.ceil(top / 2), top])];
  const lengths = [...new Set([8, 32, 96].map((t) => Math.min(t, info.maxTokens)))];
  // Warm-up (pipeline compilation, buffer pool) is not timed.
  const kind = info.backend;
  await target.calibrate([{ text: textOf(8), layers: top }], kind);
  let runsDone = 1;
  const runs = lengths.flatMap((t) => exits.map((l) => ({ text: textOf(t), layers: l })));
  const samples: CalibrationRecord['samples'] = [];
  for (let i = 0; i < runs.length; i++) {
    if (!ctx.current()) throw new WorkerCrashedError('worker replaced during calibration');
    // Best of two: the minimum is the least noisy estimate on a busy machine.
    const [r1, r2] = await target.calibrate([runs[i], runs[i]], kind);
    runsDone += 2;
    const best = r1.ms <= r2.ms ? r1 : r2;
    samples.push({ tokens: best.tokens, layers: best.layers, ms: best.ms, gpuMs: best.gpuMs });
    ctx.onProgress({ done: i + 1, total: runs.length, cached: false });
  }
  const fit = fitCostModel(samples);
  const gpu = samples.every((s) => s.gpuMs !== null) ? samples.reduce((s, x) => s + (x.gpuMs ?? 0), 0) / samples.reduce((s, x) => s + x.ms, 0) : undefined;
  const cost: CostModel = { ...fit, source: 'measured', timer: gpu !== undefined ? 'wall+timestamp-query' : 'wall', samples: samples.length, gpuFraction: gpu };
  await ctx.cache.put(key, { version: 1, key, cost, samples, createdAt: Date.now() }).catch(() => undefined);
  return { cost, source: 'measured', runs: runsDone };
}
