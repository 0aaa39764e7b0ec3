/**
 * What a plan costs (src/client/planner.ts puts it together): the model's shape and the weight dtypes it may be
 * stored in, the memory model (the engine's own allocation plan, src/engine/memory-plan.ts, + the index), and the
 * latency model ms ≈ a + b·T·l + c·T²·l (T tokens of one query, l layers run):
 *   a = fixed per-call overhead (tokenize, dispatch, readback, the worker round trip),
 *   b = the linear part of a block (QKV/O projections + FFN: ~2·(4H² + kHI) flops per token),
 *   c = attention's quadratic part (QKᵀ and AV: ~4·T·H flops per token),
 * fitted by least squares with a, b, c ≥ 0 on a short calibration run (fitCostModel; src/client/calibration.ts), or
 * estimated from flops when nothing was measured (defaultCostModel); drift tracking says when to refit.
 */
import { planAllocations, type MemoryShape } from '../engine/memory-plan.ts';
import type { ModelShapeInfo } from '../engine/service-types.ts';

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

/** Device limits the planner respects (AdapterReport.limits). */
export interface DeviceLimits {
  maxStorageBufferBindingSize?: number;
  maxBufferSize?: number;
}

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Latency

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
