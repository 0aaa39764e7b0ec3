/**
 * Device-budget planner: pure arithmetic (no DOM, no GPU) so Node tests cover it. It chooses (dtype, layers, dims)
 * from three models:
 *  - cost:    latency ms ≈ a + b·T·l + c·T²·l, fitted on a calibration run or estimated from flops; memory =
 *             weights of the blocks run, by storage dtype (f32, f16, int8, q4: the engine's own byte counts),
 *             + activations of one batch + the index (corpusSize vectors of `dims` f32 values) when the budget
 *             names a corpus size. src/client/plan-cost.ts.
 *  - quality: a table over (layers, dims), measured (sidecar m3web.json) or the default curve, per weight
 *             dtype. src/client/plan-quality.ts.
 *  - this file: the candidates, their Pareto frontier, and the plan a budget gets (choosePlan).
 *
 * dtype is the plan's third axis: every (layers, dims) point is offered in each dtype the backend can load
 * the model in (ModelShape.dtypes); without that list only the served dtype is offered.
 */
import { BudgetError } from './errors.ts';
import { activationRowBytes, type MemoryShape } from '../engine/memory-plan.ts';
import { engineMB, indexMB, planDtypes, predictMs, storageOf, type CostModel, type DeviceLimits, type ModelShape, type PlanDType } from './plan-cost.ts';
import { qualityIn, type QualityPoint, type QualityTable } from './plan-quality.ts';

// The planner's callers (client, startup, dtypes, the public index) import all of it from here.
export {
  defaultCostModel,
  engineMB,
  fitCostModel,
  indexMB,
  planDtypes,
  predictBatchMs,
  predictMs,
  PLAN_DTYPES,
  storageOf,
  updateDrift,
  type CostModel,
  type CostSample,
  type DeviceLimits,
  type DriftState,
  type ModelShape,
  type PlanDType,
} from './plan-cost.ts';
export { defaultQuality, dimsLadder, DIMS_BETA, DTYPE_RETENTION, LAYER_ALPHA, qualityIn, qualityTable, type QualityPoint, type QualityTable, type Sidecar } from './plan-quality.ts';

export interface Budget {
  /** Latency of one query of `tokensPerQuery` tokens, in ms. */
  latencyMs?: number;
  /** Memory for weights + one batch of activations (+ the index when corpusSize is set), in MiB. */
  memoryMB?: number;
  /** Least acceptable quality, relative to the full model (0..1]. */
  minQuality?: number;
  /** Typical query length in tokens (default 32). */
  tokensPerQuery?: number;
  /** Vectors the app will keep (makes dims cost memory). */
  corpusSize?: number;
}

export interface Candidate extends QualityPoint {
  /** Weight storage of this point. */
  dtype: PlanDType;
  latencyMs: number;
  memoryMB: number;
  /** A trained exit (m3BERT grid or sidecar measurement) rather than a point on the default curve. */
  trained: boolean;
  /** Its quality was measured in this dtype (sidecar `quality_by_dtype`; f32 rows count for f32), not assumed by DTYPE_RETENTION. */
  dtypeMeasured: boolean;
}

export interface Plan extends Omit<Candidate, 'dtype'> {
  /** The served dtype when the plan keeps it ('f16x2' = f16 packed in u32 on adapters without shader-f16), else the chosen PlanDType. */
  dtype: string;
  backend: string;
  /** Why this backend: the worker's reason, or the comparison of calibrated backends. */
  backendReason?: string;
  maxBatchTokens: number;
  qualitySource: QualityTable['source'];
  costSource: CostModel['source'];
  tokensPerQuery: number;
}

export const DEFAULT_TOKENS_PER_QUERY = 32;
export const MAX_BATCH_TOKENS = 8192;

/**
 * Every (dtype, layers, dims) the plan may choose. One cost model prices every dtype: weight-only
 * quantisation leaves the flops unchanged (activations and accumulation stay f32), and only the loaded
 * dtype has been calibrated; a re-plan after loading another dtype calibrates that one.
 */
export function candidates(shape: ModelShape, quality: QualityTable, cost: Pick<CostModel, 'a' | 'b' | 'c'>, budget: Budget = {}, limits: DeviceLimits = {}): Candidate[] {
  const T = Math.min(budget.tokensPerQuery ?? DEFAULT_TOKENS_PER_QUERY, shape.maxTokens);
  const trained = quality.source !== 'default-curve';
  return planDtypes(shape).flatMap((dtype) =>
    quality.points.map((p) => {
      const q = qualityIn(quality, p, dtype);
      return {
        ...p,
        quality: q.quality,
        dtype,
        dtypeMeasured: q.measured,
        trained,
        latencyMs: predictMs(cost, T, p.layers),
        memoryMB: engineMB(shape, p.layers, T, limits, dtype) + indexMB(budget.corpusSize, p.dims),
      };
    }),
  );
}

/** a dominates b: no worse on latency, memory and quality, and strictly better on one. */
export function dominates(a: Candidate, b: Candidate): boolean {
  const noWorse = a.latencyMs <= b.latencyMs && a.memoryMB <= b.memoryMB && a.quality >= b.quality;
  const better = a.latencyMs < b.latencyMs || a.memoryMB < b.memoryMB || a.quality > b.quality;
  return noWorse && better;
}

/** The Pareto set over (latency ↓, memory ↓, quality ↑), duplicates removed, by latency then quality. */
export function paretoFrontier(cands: readonly Candidate[]): Candidate[] {
  const out: Candidate[] = [];
  for (const c of cands) {
    if (cands.some((o) => dominates(o, c))) continue;
    if (out.some((o) => o.latencyMs === c.latencyMs && o.memoryMB === c.memoryMB && o.quality === c.quality)) continue;
    out.push(c);
  }
  return out.sort((x, y) => x.latencyMs - y.latencyMs || x.quality - y.quality);
}

function violations(c: Candidate, budget: Budget): string[] {
  const v: string[] = [];
  if (budget.latencyMs !== undefined && c.latencyMs > budget.latencyMs) v.push(`latency ${c.latencyMs.toFixed(2)} ms > ${budget.latencyMs} ms`);
  if (budget.memoryMB !== undefined && c.memoryMB > budget.memoryMB) v.push(`memory ${c.memoryMB.toFixed(2)} MB > ${budget.memoryMB} MB`);
  if (budget.minQuality !== undefined && c.quality < budget.minQuality) v.push(`quality ${c.quality.toFixed(3)} < ${budget.minQuality}`);
  return v;
}

/** The least costly candidate: lowest latency, then memory, then the best quality among equals. */
export function cheapest(cands: readonly Candidate[]): Candidate {
  return [...cands].sort((x, y) => x.latencyMs - y.latencyMs || x.memoryMB - y.memoryMB || y.quality - x.quality)[0];
}

/**
 * Largest power of two ≤ MAX_BATCH_TOKENS whose activations fit what the memory budget leaves and whose
 * largest single activation buffer (FFN intermediate or QKV rows, f32) fits one storage binding.
 */
export function chooseMaxBatchTokens(shape: ModelShape, c: Candidate, budget: Budget, limits: DeviceLimits = {}): number {
  const T = Math.min(budget.tokensPerQuery ?? DEFAULT_TOKENS_PER_QUERY, shape.maxTokens);
  const binding = Math.min(limits.maxStorageBufferBindingSize ?? Infinity, limits.maxBufferSize ?? Infinity);
  const rowBytes = activationRowBytes({ family: shape.family as MemoryShape['family'], hidden_size: shape.hidden, intermediate_size: shape.intermediate }, shape.colbertWidth ?? null);
  const left = budget.memoryMB === undefined ? Infinity : budget.memoryMB - indexMB(budget.corpusSize, c.dims);
  let n = MAX_BATCH_TOKENS;
  while (n > T && (engineMB(shape, c.layers, n, limits, c.dtype) > left || n * rowBytes > binding)) n /= 2;
  return Math.max(n, T);
}

/**
 * Picks the best-quality candidate inside the budget (ties: lower latency, then memory). Budgets are
 * nested sets of feasible candidates, so a tighter budget never yields a higher-quality, slower or
 * larger plan. Throws BudgetError naming the cheapest plan when nothing fits.
 */
export function choosePlan(shape: ModelShape, quality: QualityTable, cost: CostModel, budget: Budget = {}, backend = 'webgpu', limits: DeviceLimits = {}): Plan {
  validateBudget(budget);
  const cands = candidates(shape, quality, cost, budget, limits);
  const feasible = cands.filter((c) => violations(c, budget).length === 0);
  if (!feasible.length) {
    const cheap = cheapest(cands);
    throw new BudgetError(cheap, violations(cheap, budget), JSON.stringify(budget));
  }
  // Ties (f16 keeps f32's quality unless measured otherwise): lower latency, then less memory, then the served dtype.
  const served = storageOf(shape.dtype);
  const best = [...feasible].sort((x, y) => y.quality - x.quality || x.latencyMs - y.latencyMs || x.memoryMB - y.memoryMB || Number(y.dtype === served) - Number(x.dtype === served))[0];
  return {
    ...best,
    dtype: best.dtype === served ? shape.dtype : best.dtype,
    backend,
    maxBatchTokens: chooseMaxBatchTokens(shape, best, budget, limits),
    qualitySource: quality.source,
    costSource: cost.source,
    tokensPerQuery: Math.min(budget.tokensPerQuery ?? DEFAULT_TOKENS_PER_QUERY, shape.maxTokens),
  };
}

export function validateBudget(budget: Budget): void {
  for (const k of ['latencyMs', 'memoryMB', 'minQuality', 'tokensPerQuery', 'corpusSize'] as const) {
    const v = budget[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new RangeError(`budget.${k} must be a finite number ≥ 0, received ${String(v)}`);
    }
  }
}
