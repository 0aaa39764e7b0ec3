/**
 * Device-budget planner: pure arithmetic (no DOM, no GPU) so Node tests cover it.
 *
 * Three models feed the plan:
 *  - cost:    ms ≈ a + b·T·l + c·T²·l      (T tokens of one query, l layers run)
 *             a = fixed per-call overhead (tokenize, dispatch, readback, the worker round trip),
 *             b = the linear part of a block (QKV/O projections + FFN: ~2·(4H² + kHI) flops per token),
 *             c = attention's quadratic part (QKᵀ and AV: ~4·T·H flops per token).
 *             Fitted by least squares with a, b, c ≥ 0 on a short calibration run (fitCostModel), or
 *             estimated from flops when nothing was measured (defaultCostModel).
 *  - memory:  weights of the blocks run, by storage dtype (f32, f16, int8, q4: the engine's own byte counts),
 *             + activations of one batch + the index (corpusSize vectors of `dims` f32 values) when the
 *             budget names a corpus size.
 *  - quality: a table over (layers, dims), from the model's sidecar m3web.json when it has a measured
 *             one, else the documented default curve (defaultQuality) at the model's trained exits
 *             (m3BERT's mrl_layers × mrl_dims) or on a generic grid; per weight dtype, measured rows
 *             (m3web.json `quality_by_dtype`) or the f32 point times DTYPE_RETENTION.
 *
 * dtype is the plan's third axis: every (layers, dims) point is offered in each dtype the backend can load
 * the model in (ModelShape.dtypes); without that list only the served dtype is offered.
 */
import { BudgetError } from './errors.ts';
import { activationRowBytes, planAllocations, type MemoryShape } from '../engine/memory-plan.ts';
import type { ModelShapeInfo } from '../engine/service.ts';

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

export interface CostModel {
  a: number;
  b: number;
  c: number;
  /** Where a, b, c come from. */
  source: 'measured' | 'cache' | 'default' | 'drift-adjusted';
  /** How the calibration runs were timed. */
  timer: 'wall' | 'wall+timestamp-query' | 'none';
  samples: number;
  /** Share of wall time the GPU was busy (timestamp-query), when measured. */
  gpuFraction?: number;
}

export interface CostSample {
  tokens: number;
  layers: number;
  ms: number;
}

/** Weight storage dtypes a plan can choose: f32, f16, int8 per output channel, 4-bit in blocks of 32 (src/model/QUANT.md). */
export type PlanDType = 'f32' | 'f16' | 'int8' | 'q4';
export const PLAN_DTYPES: readonly PlanDType[] = ['f32', 'f16', 'int8', 'q4'];

/** What the planner needs to know about the model: its config sizes (EmbedService.inspect) plus the served dtype and heads. */
export interface ModelShape extends ModelShapeInfo {
  /** Weight storage inside the shaders: 'f32', 'f16', 'f16x2', 'int8' or 'q4'. */
  dtype: string;
  /**
   * The storage dtypes the backend can load this model in (the plan picks among them). Absent: only the
   * served `dtype`. A backend that cannot run int8 / q4 must not list them: the planner never offers a
   * dtype that is not here.
   */
  dtypes?: readonly PlanDType[];
  /** ColBERT head width when the model has BGE-M3 heads (their weights and activations count too). */
  colbertWidth?: number | null;
}

export interface QualityPoint {
  layers: number;
  dims: number;
  quality: number;
}

export interface QualityTable {
  source: 'sidecar' | 'trained-grid' | 'default-curve';
  /** The (layers, dims) the planner may choose, with their quality (f32 weights) relative to the best point. */
  points: QualityPoint[];
  /** Measured quality per weight dtype (sidecar `quality_by_dtype`), on the same scale as `points`. */
  byDtype?: Partial<Record<PlanDType, QualityPoint[]>>;
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
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Quality

/**
 * Half the layers keeps ≈ 85 % of quality: ../shared/docs/semantics.md, "2D Matryoshka in other
 * families" — adaptive layers (sentence-transformers AdaptiveLayerLoss) "half the layers ≈ 2× speed at
 * ~85 % quality (STS)"; the mxbai-embed-2d card reports 75–85 % for half its 24 layers.
 * Curve: q_layers(f) = f^α with f = l / L, α = ln 0.85 / ln 0.5 ≈ 0.234.
 */
export const LAYER_ALPHA = Math.log(0.85) / Math.log(0.5);
/**
 * Matryoshka truncation: ~8 % of the dims keeps ~98 % of quality (same section of semantics.md).
 * Curve: q_dims(g) = g^β with g = d / D, β = ln 0.98 / ln 0.08 ≈ 0.008.
 */
export const DIMS_BETA = Math.log(0.98) / Math.log(0.08);

/** The default quality curve, relative to the full model; the two effects multiply. */
export function defaultQuality(layers: number, totalLayers: number, dims: number, hidden: number): number {
  return Math.pow(layers / totalLayers, LAYER_ALPHA) * Math.pow(dims / hidden, DIMS_BETA);
}

/** The dims ladder for models without trained prefixes: powers of two from 8 below hidden, then hidden. */
export function dimsLadder(hidden: number): number[] {
  const out: number[] = [];
  for (let d = 8; d < hidden; d *= 2) out.push(d);
  out.push(hidden);
  return out;
}

/**
 * Quality kept by a weight dtype when the model has no measured row for it, relative to f32 at the same
 * (layers, dims). f16 keeps the f32 weights to 11 bits and is taken as equal. int8 and q4 are assumed at
 * the bounds issue #18 sets for a trained model (int8 within 1 %, q4 within 3 % of f32), so an unmeasured
 * quantised point is never credited with more than the project promises; measured rows replace them.
 */
export const DTYPE_RETENTION: Readonly<Record<PlanDType, number>> = { f32: 1, f16: 1, int8: 0.99, q4: 0.97 };

type SidecarTable = { metric?: string; table?: { layers: number; dims: number; score: number }[] };

/**
 * Sidecar `m3web.json`:
 *   { "quality": { "metric": "...", "table": [{ "layers", "dims", "score" }] },        measured with f32 (or f16-upcast) weights
 *     "quality_by_dtype": { "int8": { "metric", "table": [...] }, "q4": { ... } } }    the same metric, same splits, per weight dtype
 * Scores in `quality_by_dtype` share the scale of `quality` (the planner divides all by one best score), so a
 * dtype's rows must come from the same evaluation (tools/eval/run.ts writes both).
 */
export interface Sidecar {
  quality?: SidecarTable;
  quality_by_dtype?: Partial<Record<PlanDType, SidecarTable>>;
}

/** Builds the quality table: sidecar measurements first, else trained exits, else the default grid. */
export function qualityTable(shape: ModelShape, sidecar?: Sidecar | null): QualityTable {
  const valid = (t?: SidecarTable) => t?.table?.filter((r) => Number.isInteger(r.layers) && Number.isInteger(r.dims) && r.layers >= 1 && r.layers <= shape.layers && r.dims >= 1 && r.dims <= shape.hidden && Number.isFinite(r.score) && r.score > 0) ?? [];
  const table = valid(sidecar?.quality);
  if (table.length) {
    const rows = Object.fromEntries(
      PLAN_DTYPES.filter((d) => d !== 'f32')
        .map((d) => [d, valid(sidecar?.quality_by_dtype?.[d])] as const)
        .filter(([, r]) => r.length),
    );
    const best = Math.max(...[table, ...Object.values(rows)].flat().map((r) => r.score));
    const rel = (t: typeof table) => t.map((r) => ({ layers: r.layers, dims: r.dims, quality: r.score / best }));
    const byDtype = Object.fromEntries(Object.entries(rows).map(([d, r]) => [d, rel(r)]));
    return { source: 'sidecar', points: rel(table), ...(Object.keys(byDtype).length ? { byDtype } : {}) };
  }
  const q = (l: number, d: number) => defaultQuality(l, shape.layers, d, shape.hidden);
  if (shape.mrlLayers?.length && shape.mrlDims?.length) {
    // The model was trained at these exits (the planner prefers them): only they are offered.
    const ls = shape.mrlLayers.filter((l) => l >= 1 && l <= shape.layers);
    const ds = shape.mrlDims.filter((d) => d >= 1 && d <= shape.hidden);
    return { source: 'trained-grid', points: ls.flatMap((l) => ds.map((d) => ({ layers: l, dims: d, quality: q(l, d) }))) };
  }
  const points: QualityPoint[] = [];
  for (let l = 1; l <= shape.layers; l++) for (const d of dimsLadder(shape.hidden)) points.push({ layers: l, dims: d, quality: q(l, d) });
  return { source: 'default-curve', points };
}

// ---------------------------------------------------------------------------------------------
// Cost

export function predictMs(cost: Pick<CostModel, 'a' | 'b' | 'c'>, tokens: number, layers: number): number {
  return cost.a + cost.b * tokens * layers + cost.c * tokens * tokens * layers;
}

/** Multiply-adds of one block per token (×2 = flops): QKVO 4H², FFN 2HI (GELU) or 3HI (SwiGLU). */
function blockMacsPerToken(shape: ModelShape): number {
  const ffn = shape.family === 'm3bert' ? 3 : 2;
  return 4 * shape.hidden * shape.hidden + ffn * shape.hidden * shape.intermediate;
}

/**
 * A flops-based guess used before (or without) calibration: ~200 GFLOP/s on a WebGPU hardware adapter,
 * ~2 GFLOP/s on the CPU and on a fallback (software, e.g. SwiftShader) adapter.
 */
export function defaultCostModel(shape: ModelShape, backend: string, isFallbackAdapter = false): CostModel {
  const flopsPerMs = (backend === 'webgpu' && !isFallbackAdapter ? 200e9 : 2e9) / 1000;
  return {
    a: backend === 'webgpu' ? 3 : 0.5,
    b: (2 * blockMacsPerToken(shape)) / flopsPerMs,
    c: (4 * shape.hidden) / flopsPerMs,
    source: 'default',
    timer: 'none',
    samples: 0,
  };
}

/** Solves the small normal equations (Gaussian elimination with partial pivoting); null when singular. */
function solve(A: number[][], y: number[]): number[] | null {
  const n = y.length;
  const M = A.map((row, i) => [...row, y[i]]);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(M[r][col]) > Math.abs(M[piv][col])) piv = r;
    if (Math.abs(M[piv][col]) < 1e-12) return null;
    [M[col], M[piv]] = [M[piv], M[col]];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = M[r][col] / M[col][col];
      for (let k = col; k <= n; k++) M[r][k] -= f * M[col][k];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

/**
 * Least-squares fit of ms ≈ a + b·T·l + c·T²·l with a, b, c ≥ 0: every subset of the three terms is
 * fitted unconstrained and the best non-negative one wins (exact non-negative least squares for 3 terms).
 */
export function fitCostModel(samples: readonly CostSample[]): Pick<CostModel, 'a' | 'b' | 'c'> {
  if (!samples.length) throw new Error('fitCostModel needs at least one sample');
  const feats = samples.map((s) => [1, s.tokens * s.layers, s.tokens * s.tokens * s.layers]);
  // Scale columns so the normal equations stay well conditioned.
  const scale = [0, 1, 2].map((j) => Math.max(...feats.map((f) => Math.abs(f[j]))) || 1);
  let best: { coef: number[]; sse: number } | null = null;
  for (let mask = 1; mask < 8; mask++) {
    const cols = [0, 1, 2].filter((j) => mask & (1 << j));
    const X = feats.map((f) => cols.map((j) => f[j] / scale[j]));
    const XtX = cols.map((_, i) => cols.map((__, k) => X.reduce((s, row) => s + row[i] * row[k], 0)));
    const Xty = cols.map((_, i) => X.reduce((s, row, r) => s + row[i] * samples[r].ms, 0));
    const sol = solve(XtX, Xty);
    if (!sol || sol.some((v) => v < 0 || !Number.isFinite(v))) continue;
    const coef = [0, 0, 0];
    cols.forEach((j, i) => (coef[j] = sol[i] / scale[j]));
    const sse = samples.reduce((s, smp, r) => s + (predictMs({ a: coef[0], b: coef[1], c: coef[2] }, smp.tokens, smp.layers) - samples[r].ms) ** 2, 0);
    if (!best || sse < best.sse) best = { coef, sse };
  }
  // All subsets negative can only happen with degenerate data: fall back to the mean as a constant.
  const coef = best?.coef ?? [samples.reduce((s, x) => s + x.ms, 0) / samples.length, 0, 0];
  return { a: coef[0], b: coef[1], c: coef[2] };
}

// ---------------------------------------------------------------------------------------------
// Memory

/** The engine's storage for a shader dtype: 'f16' and 'f16x2' (f16 pairs packed in u32) both store 2 bytes a weight. */
export function storageOf(dtype: string): PlanDType {
  return dtype === 'f32' || dtype === 'int8' || dtype === 'q4' ? dtype : 'f16';
}

/** The dtypes a plan may use on this shape: the backend's list, else the served one. */
export function planDtypes(shape: ModelShape): readonly PlanDType[] {
  return shape.dtypes?.length ? shape.dtypes : [storageOf(shape.dtype)];
}

/** Quality of (layers, dims) in `dtype`: its measured row, else the f32 point × DTYPE_RETENTION. */
export function qualityIn(table: QualityTable, p: QualityPoint, dtype: PlanDType): { quality: number; measured: boolean } {
  if (dtype === 'f32') return { quality: p.quality, measured: table.source === 'sidecar' };
  const row = table.byDtype?.[dtype]?.find((r) => r.layers === p.layers && r.dims === p.dims);
  return row ? { quality: row.quality, measured: true } : { quality: p.quality * DTYPE_RETENTION[dtype], measured: false };
}

const UNBOUNDED = { maxStorageBufferBindingSize: Number.MAX_SAFE_INTEGER, maxBufferSize: Number.MAX_SAFE_INTEGER };

/**
 * The engine's own allocation plan (src/engine/memory-plan.ts) for a plan that uploads `layers` blocks
 * and runs one batch of `batchTokens` padded tokens: the weights actually uploaded plus the activations
 * actually allocated (pool size classes), in MiB. The one memory model the planner and the engine share.
 */
export function engineMB(shape: ModelShape, layers: number, batchTokens: number, limits: DeviceLimits = {}, dtype: PlanDType = storageOf(shape.dtype)): number {
  const cfg = {
    family: shape.family as MemoryShape['family'],
    hidden_size: shape.hidden,
    intermediate_size: shape.intermediate,
    num_hidden_layers: shape.layers,
    vocab_size: shape.vocab,
    max_position_embeddings: shape.maxPositions,
    type_vocab_size: shape.typeVocab,
  };
  const plan = planAllocations(cfg, {
    tokens: batchTokens,
    batch: 1,
    storage: dtype,
    limits: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ?? UNBOUNDED.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize ?? UNBOUNDED.maxBufferSize },
    colbertWidth: shape.colbertWidth ?? null,
    layers,
  });
  return plan.totalBytes / MiB;
}

export function indexMB(corpusSize: number | undefined, dims: number): number {
  return corpusSize ? (corpusSize * dims * 4) / MiB : 0;
}

// ---------------------------------------------------------------------------------------------
// Candidates, frontier, plan

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

/** Device limits the planner respects (AdapterReport.limits). */
export interface DeviceLimits {
  maxStorageBufferBindingSize?: number;
  maxBufferSize?: number;
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

// ---------------------------------------------------------------------------------------------
// Drift

export interface DriftState {
  /** EWMA of ln(measured / predicted). */
  logRatio: number;
  n: number;
}

/** Folds one measurement in; `replan` once ≥ 5 batches agree the model is off by more than 2×. */
export function updateDrift(s: DriftState, measuredMs: number, predictedMs: number): { state: DriftState; replan: boolean; ratio: number } {
  const r = Math.log(Math.max(measuredMs, 1e-3) / Math.max(predictedMs, 1e-3));
  const n = s.n + 1;
  const logRatio = s.n === 0 ? r : 0.7 * s.logRatio + 0.3 * r;
  return { state: { logRatio, n }, replan: n >= 5 && Math.abs(logRatio) > Math.log(2), ratio: Math.exp(logRatio) };
}

/** Predicted ms of one engine call: a batch of texts padded to the longest, in batches of maxBatchTokens. */
export function predictBatchMs(cost: Pick<CostModel, 'a' | 'b' | 'c'>, tokenCounts: readonly number[], layers: number): number {
  const T = Math.max(...tokenCounts);
  const total = T * tokenCounts.length;
  return cost.a + cost.b * total * layers + cost.c * total * T * layers;
}
