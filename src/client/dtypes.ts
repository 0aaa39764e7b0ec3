/**
 * The plan's weight dtype (issue #18) as M3Client chooses it: which dtypes a backend can load this model
 * in, and which one a budget gets. Pure (no worker, no GPU), so Node tests cover it.
 *
 * Rule: the model's own dtype (what `weights: 'auto'` loads: the checkpoint's f32 / f16, or a pre-quantised
 * folder's bits) is kept whenever it can run the best plan's (layers, dims) within the budget; another
 * dtype is chosen only when it lets the plan reach a point the own dtype cannot (in practice: a memory
 * budget that holds more blocks in int8 / q4). Why not simply the planner's best: at one (layers, dims),
 * the measured per-dtype qualities differ by noise (m3-tiny's SciFact rows: q4 +2.5 %, int8 −1.0 % on
 * 300 queries, README #18), and f16 ties f32 by assumption, so "best" would reload and requantise a model
 * for no real gain and change every default client's vectors.
 */
import { BudgetError } from './errors.ts';
import { candidates, choosePlan, DEFAULT_TOKENS_PER_QUERY, engineMB, indexMB, PLAN_DTYPES, storageOf, type Budget, type CostModel, type DeviceLimits, type ModelShape, type Plan, type PlanDType, type QualityTable } from './planner.ts';

/** A plan with the reason for its weight dtype (M3Client.plan). */
export type ClientPlan = Plan & { dtypeReason?: string };

/** What an app may ask for: 'auto' lets the planner choose; anything else pins the dtype. */
export type WeightsOption = 'auto' | PlanDType;

export function isPinned(weights: WeightsOption | undefined): weights is PlanDType {
  return weights !== undefined && weights !== 'auto';
}

/**
 * The dtypes `backend` can load this model in. WebGPU: f32 (from any float checkpoint), f16 (native with
 * shader-f16, else the packed 'f16x2' path), int8 and q4 (quantised at load: EngineOptions.weights);
 * never f32 from an f16 checkpoint (the same values in twice the memory); a pre-quantised folder only in
 * its own bits (its floats are gone). The CPU backend and 'ort-wasm' compute in f32 (src/cpu dequantises
 * and upcasts at load; the exported graph is what it is): only the dtype they serve. `own` is the model's
 * own dtype when known (null: not loaded with 'auto' yet); `pinned` is the app's `weights`.
 */
export function loadableDtypes(backend: string, own: PlanDType | null, pinned?: PlanDType, served = 'f32'): PlanDType[] {
  if (backend !== 'webgpu') return [storageOf(served)];
  if (pinned) return [pinned];
  if (own === 'int8' || own === 'q4') return [own];
  return own === 'f16' ? ['f16', 'int8', 'q4'] : [...PLAN_DTYPES];
}

/** The dtype kept when it can run the plan's point: the model's own, else the most precise one offered. */
export function preferredDtype(dtypes: readonly PlanDType[], own: PlanDType | null): PlanDType {
  return own && dtypes.includes(own) ? own : PLAN_DTYPES.find((d) => dtypes.includes(d))!;
}

const fmt = (mb: number) => `${mb.toFixed(1)} MB`;

/**
 * The plan for `budget` over `shape.dtypes` by the rule above, with the reason for its dtype. Throws
 * BudgetError (choosePlan's) when no dtype meets the budget.
 */
export function chooseDtypePlan(shape: ModelShape, quality: QualityTable, cost: CostModel, budget: Budget, backend: string, limits: DeviceLimits, own: PlanDType | null, pinned?: PlanDType): ClientPlan {
  const dtypes = shape.dtypes?.length ? shape.dtypes : [storageOf(shape.dtype)];
  const best = choosePlan(shape, quality, cost, budget, backend, limits);
  if (dtypes.length === 1) {
    const why = pinned && backend === 'webgpu' ? `asked for with weights: '${pinned}'` : backend !== 'webgpu' ? `the ${backend} backend computes in f32` : `the model folder is pre-quantised (${dtypes[0]})`;
    return { ...best, dtypeReason: `${best.dtype}: ${why}` };
  }
  const keep = preferredDtype(dtypes, own);
  const point = `${best.layers}×${best.dims}`;
  const ownWord = own === keep ? `the model's own ${keep}` : keep;
  if (storageOf(best.dtype) === keep) return { ...best, dtypeReason: `${ownWord}: it runs the best plan (${point}) within the budget` };
  const inKeep = { ...shape, dtypes: [keep] };
  const at = quality.points.filter((p) => p.layers === best.layers && p.dims === best.dims);
  try {
    // Can the own dtype run the same (layers, dims) within the budget? Then keep it, at its own best point.
    choosePlan(inKeep, { ...quality, points: at }, cost, budget, backend, limits);
    const plan = choosePlan(inKeep, quality, cost, budget, backend, limits);
    return { ...plan, dtypeReason: `${ownWord}: it runs ${point} within the budget (${best.dtype} would change the weights for a quality difference of ${(best.quality - plan.quality).toFixed(3)})` };
  } catch (e) {
    if (!(e instanceof BudgetError)) throw e;
  }
  const ownMB = candidates(inKeep, { ...quality, points: at }, cost, budget, limits)[0]?.memoryMB;
  const mem = budget.memoryMB !== undefined ? `the memory budget (${fmt(budget.memoryMB)}) holds ${point} in ${best.dtype} (${fmt(best.memoryMB)})` : `${best.dtype} meets the budget at ${point}`;
  return { ...best, dtypeReason: `${best.dtype}: ${mem}${ownMB !== undefined ? `, not in ${keep} (${fmt(ownMB)})` : ''}` };
}

/**
 * Before anything is loaded (config.json, m3web.json only): the dtype and the blocks to upload for a
 * memory budget. The dtype by the rule above with latency left out (no cost model yet; it prices every
 * dtype alike), the blocks: the deepest exit whose upload in that dtype fits. Undefined layers: all.
 */
export function preloadChoice(shape: ModelShape, quality: QualityTable, budget: Budget, own: PlanDType | null, pinned?: PlanDType): { dtype: PlanDType; maxLayers: number | undefined } {
  const mem = budget.memoryMB;
  const T = Math.min(budget.tokensPerQuery ?? DEFAULT_TOKENS_PER_QUERY, shape.maxTokens);
  const dtypes = shape.dtypes?.length ? shape.dtypes : [storageOf(shape.dtype)];
  let dtype = preferredDtype(dtypes, own);
  if (mem !== undefined && dtypes.length > 1) {
    const noCost: CostModel = { a: 0, b: 0, c: 0, source: 'default', timer: 'none', samples: 0 };
    try {
      dtype = storageOf(chooseDtypePlan(shape, quality, noCost, { ...budget, latencyMs: undefined }, 'webgpu', {}, own, pinned).dtype);
    } catch (e) {
      if (!(e instanceof BudgetError)) throw e; // nothing fits: the own dtype, one block (the plan then names the cheapest)
    }
  }
  if (mem === undefined) return { dtype, maxLayers: undefined };
  let k = shape.layers;
  while (k > 1 && engineMB(shape, k, T, {}, dtype) + indexMB(budget.corpusSize, 1) > mem) k--;
  return { dtype, maxLayers: k < shape.layers ? k : undefined };
}
