/**
 * What M3Client does each time a worker starts: load the model (only the blocks a memory budget can
 * afford), read its m3web.json quality table, describe its shape, and calibrate the cost model (or read
 * it from the cache); on a software WebGPU adapter calibrate WebGPU and the CPU backend both and keep
 * the better; plan over the dtypes that backend can load the model in (dtypes.ts), and reload the weights
 * in the plan's dtype when it differs from the loaded one. The client serves the resulting session.
 */
import type { GpuProbe, ModelInfo, SourceOptions } from '../engine/service.ts';
import { InvalidInputError } from '../errors.ts';
import type { LoadProgress, QuantizeProgress } from '../model/load.ts';
import * as Comlink from 'comlink';
import type { CalibrationCache } from './cache.ts';
import { calibrate, deviceKey } from './calibration.ts';
import { chooseDtypePlan, isPinned, loadableDtypes, preferredDtype, preloadChoice, type ClientPlan, type WeightsOption } from './dtypes.ts';
import { BudgetError } from './errors.ts';
import { choosePlan, qualityTable, storageOf, type Budget, type CostModel, type DeviceLimits, type ModelShape, type PlanDType, type QualityTable, type Sidecar } from './planner.ts';
import type { ClientProgress, ClientStats, M3ClientOptions } from './types.ts';
import type { Remote } from './worker-host.ts';

export interface StartupContext {
  options: M3ClientOptions;
  budget: Budget;
  cache: CalibrationCache;
  stats: ClientStats;
  emit(p: ClientProgress): void;
  /** False once the worker this startup runs on was replaced: stop, and return nothing. */
  current(): boolean;
}

/** What the client knew before this start (a restart keeps the calibration when the device is the same). */
export interface PreviousSession {
  adapter: GpuProbe | null;
  info?: ModelInfo;
  cost?: CostModel;
  sidecar: Sidecar | null;
  /** Blocks to upload (undefined: all). */
  maxLayers?: number;
  /** setModel() switched models: calibrate afresh. */
  modelChanged: boolean;
  /** The dtype the last engine was loaded in (a restart loads the same), and the model's own dtype when known. */
  weights?: WeightsOption;
  own?: PlanDType | null;
}

export interface Session {
  adapter: GpuProbe;
  info: ModelInfo;
  sidecar: Sidecar | null;
  shape: ModelShape;
  quality: QualityTable;
  cost: CostModel;
  maxLayers: number | undefined;
  /** The adapter or backend differs from the previous session's. */
  deviceChanged: boolean;
  /** What the serving engine was loaded with ('auto': the model's own dtype), and that own dtype when known. */
  weights: WeightsOption;
  own: PlanDType | null;
  /** The plan for the budget in the loaded dtype, or the BudgetError no plan met it with. */
  plan: ClientPlan | BudgetError;
}

export function sourceOptions(options: M3ClientOptions): SourceOptions {
  const { hubEndpoint, revision, subfolder, token } = options;
  return Object.fromEntries(Object.entries({ hubEndpoint, revision, subfolder, token }).filter(([, v]) => v !== undefined));
}

/** The worker's load options for this client (maxLayers: blocks to upload; undefined = all; weights: the dtype to load). */
export function loadOptions(options: M3ClientOptions, maxLayers: number | undefined, weights: WeightsOption | undefined = options.weights): Parameters<Remote['load']>[1] {
  const { backend = 'auto', threads, ortWasmPaths, checkFinite } = options;
  return {
    ...sourceOptions(options),
    ...(checkFinite !== undefined ? { checkFinite } : {}),
    backend,
    weights,
    ...(threads !== undefined ? { threads } : {}),
    ...(ortWasmPaths ? { wasmPaths: ortWasmPaths } : {}),
    ...(maxLayers ? { maxLayers } : {}),
    ...onnxOption(options),
  };
}

/** Backend 'ort-wasm': the exported graph, inside the model folder by default (the worker resolves it with the hub options). */
function onnxOption(options: M3ClientOptions): { onnx?: string } {
  const { backend = 'auto', onnx = 'auto' } = options;
  if (backend !== 'ort-wasm') return {};
  if (typeof onnx !== 'string' || !onnx) throw new InvalidInputError('option "onnx" must be a URL or "auto"', { expected: '"auto" (the model\'s onnx/model.onnx) or a URL', received: onnx });
  return { onnx: onnx === 'auto' ? 'onnx/model.onnx' : new URL(onnx, typeof location !== 'undefined' ? location.href : undefined).href };
}

/** The worker's load progress as client progress: downloads, the upload, and int8 / q4 quantisation per weight. */
export function loadProgress(ctx: Pick<StartupContext, 'emit'>): (p: LoadProgress | QuantizeProgress) => void {
  return Comlink.proxy((p: LoadProgress | QuantizeProgress) => {
    if (p.phase === 'download') ctx.emit({ phase: 'download', file: p.file, loaded: p.loaded, total: p.total });
    else if (p.phase === 'quantize') ctx.emit({ phase: 'quantize', name: p.name, done: p.done, total: p.total, prequantized: p.prequantized });
    else ctx.emit({ phase: 'loaded', bytes: p.bytes });
  });
}

/** Loads, describes and calibrates; null when the worker was replaced meanwhile. */
export async function openSession(remote: Remote, ctx: StartupContext, prev: PreviousSession): Promise<Session | null> {
  const { options } = ctx;
  const pinned = isPinned(options.weights) ? options.weights : undefined;
  // Blocks to upload and their dtype: all, in the model's own dtype, unless a memory budget cannot hold
  // them (planned from config.json and m3web.json, before any weight is fetched), or the last engine
  // was loaded otherwise (a restart loads the same). An exported graph has no exits: all of it is loaded.
  let { maxLayers, weights, sidecar } = prev;
  if (weights === undefined) {
    const pre = options.backend === 'ort-wasm' ? null : await preload(remote, ctx, prev, pinned);
    if (pre) ({ maxLayers, weights, sidecar } = { maxLayers: maxLayers ?? pre.maxLayers, weights: pre.weights, sidecar: pre.sidecar ?? null });
    else weights = options.weights ?? 'auto';
  }
  const onLoad = loadProgress(ctx);
  const [adapter, loadedAs, side] = await Promise.all([remote.probeGpu(), remote.load(options.model, loadOptions(options, maxLayers, weights), onLoad), sidecar ? Promise.resolve(sidecar) : fetchSidecar(remote, options)]);
  let info = loadedAs;
  sidecar = side;
  const own = ownDtype(info, weights, prev.own ?? null);
  const stats = await remote.modelStats();
  if (!ctx.current()) return null;
  const prevDevice = prev.adapter && prev.info ? deviceKey(prev.adapter, prev.info) : null;
  let shape: ModelShape = {
    family: info.family,
    layers: info.layers,
    hidden: info.hidden,
    heads: info.heads,
    maxTokens: info.maxTokens,
    dtype: info.dtype,
    dtypes: loadableDtypes(info.backend, own, pinned, info.dtype),
    mrlLayers: info.mrlLayers,
    mrlDims: info.mrlDims,
    intermediate: stats?.intermediate ?? 4 * info.hidden,
    vocab: stats?.vocab ?? 30522,
    maxPositions: stats?.maxPositions ?? info.maxTokens,
    typeVocab: stats?.typeVocab ?? 0,
    colbertWidth: stats?.colbertWidth ?? null,
  };
  let quality = qualityTable(shape, sidecar);
  if (info.backend === 'ort-wasm') {
    // The ONNX export has no early exits: only full-depth points remain (dims still truncate).
    const full = quality.points.filter((p) => p.layers === info.layers);
    quality = { ...quality, points: full.length ? full : qualityTable({ ...shape, mrlLayers: undefined, mrlDims: undefined }).points.filter((p) => p.layers === info.layers) };
  }
  const deviceChanged = prevDevice !== null && prevDevice !== deviceKey(adapter, info);
  const calib = (i: ModelInfo, sh: ModelShape = shape) => runCalibration(remote, ctx, i, sh, adapter);
  let cost: CostModel;
  if ((info.backends?.length ?? 1) > 1) {
    // A software WebGPU adapter: the worker built WebGPU and the CPU backend; calibrate both, keep the faster plan.
    const picked = await chooseBackend(remote, ctx, { info, shape, quality, adapter, own, pinned }, calib);
    if (!picked) return null;
    info = picked.info;
    shape = { ...shape, dtype: info.dtype, dtypes: loadableDtypes(info.backend, own, pinned, info.dtype) };
    cost = picked.cost;
  } else if (!prev.cost || prevDevice === null || deviceChanged || prev.modelChanged) cost = await calib(info);
  else cost = prev.cost;
  if (!ctx.current()) return null;
  const limits = limitsOf(info, adapter);
  let plan = planOrError(() => chooseDtypePlan(shape, quality, cost, ctx.budget, info.backend, limits, own, pinned));
  if (!(plan instanceof BudgetError) && info.backend === 'webgpu' && storageOf(plan.dtype) !== storageOf(info.dtype)) {
    // The plan runs in another dtype than the one loaded: load that one (the worker swaps engines), calibrate it, plan once more.
    const want = storageOf(plan.dtype);
    const next = await reloadEngine(remote, ctx, { info, shape, adapter, own, pinned }, { weights: want, maxLayers: blocksFor(shape, want, ctx.budget, plan.layers) });
    if (!next) return null;
    ({ info, shape, cost } = next);
    weights = want;
    plan = planAfterReload({ info, shape, quality, cost, budget: ctx.budget, adapter, own, pinned }, plan);
    maxLayers = info.maxLayers < info.layers ? info.maxLayers : undefined;
  }
  if (!ctx.current()) return null;
  return { adapter, info, sidecar, shape, quality, cost, maxLayers, deviceChanged, weights, own, plan };
}

function planOrError(f: () => ClientPlan): ClientPlan | BudgetError {
  try {
    return f();
  } catch (e) {
    if (e instanceof BudgetError) return e;
    throw e;
  }
}

/**
 * After the weights were loaded in the plan's dtype: the plan on that dtype's calibration, staying on it
 * (one reload per change: a recalibrated latency that would want yet another dtype does not flip again);
 * the old plan, in the loaded dtype, when nothing meets the budget any more.
 */
export function planAfterReload(s: { info: ModelInfo; shape: ModelShape; quality: QualityTable; cost: CostModel; budget: Budget; adapter: GpuProbe | null; own: PlanDType | null; pinned?: PlanDType }, old: ClientPlan): ClientPlan {
  const limits = limitsOf(s.info, s.adapter);
  let plan: ClientPlan;
  try {
    plan = chooseDtypePlan(s.shape, s.quality, s.cost, s.budget, s.info.backend, limits, s.own, s.pinned);
    if (storageOf(plan.dtype) !== storageOf(s.info.dtype)) plan = { ...inLoaded(s.shape, s.quality, s.cost, s.budget, s.info.backend, limits), dtypeReason: old.dtypeReason };
  } catch (e) {
    if (!(e instanceof BudgetError)) throw e;
    plan = { ...old, dtype: s.info.dtype };
  }
  return { ...plan, backendReason: s.info.backendReason };
}

/** The plan restricted to the dtype the engine holds (drift re-plans, a reload that would flip again). */
export function inLoaded(shape: ModelShape, quality: QualityTable, cost: CostModel, budget: Budget, backend: string, limits: DeviceLimits): ClientPlan {
  return { ...choosePlan({ ...shape, dtypes: [storageOf(shape.dtype)] }, quality, cost, budget, backend, limits), dtypeReason: `${shape.dtype}: the dtype loaded` };
}

/** The adapter's buffer limits, when the plan runs on WebGPU. */
export function limitsOf(info: ModelInfo, adapter: GpuProbe | null): DeviceLimits {
  return info.backend === 'webgpu' && adapter?.ok ? adapter.adapter.limits : {};
}

/** The model's own dtype: what a load with 'auto' served on WebGPU (elsewhere everything is f32), else what was known. */
function ownDtype(info: ModelInfo, weights: WeightsOption, known: PlanDType | null): PlanDType | null {
  return weights === 'auto' && info.backend === 'webgpu' ? storageOf(info.dtype) : known;
}

/** Blocks to upload in `dtype`: the deepest the memory budget holds, never fewer than the plan runs (undefined: all). */
export function blocksFor(shape: ModelShape, dtype: PlanDType, budget: Budget, atLeast: number): number | undefined {
  const k = preloadChoice({ ...shape, dtype, dtypes: [dtype] }, { source: 'default-curve', points: [] }, budget, dtype).maxLayers;
  return k === undefined ? undefined : Math.max(k, atLeast);
}

/**
 * Loads the model again in the worker (transactional there: the old engine serves until the new one is
 * ready) with `want.weights` and `want.maxLayers`, on the backend serving now; calibrates a new dtype.
 * Null when the worker was replaced meanwhile.
 */
export async function reloadEngine(
  remote: Remote,
  ctx: StartupContext,
  s: { info: ModelInfo; shape: ModelShape; adapter: GpuProbe | null; own: PlanDType | null; pinned?: PlanDType },
  want: { weights: WeightsOption; maxLayers: number | undefined },
  cost?: CostModel,
): Promise<{ info: ModelInfo; shape: ModelShape; cost: CostModel } | null> {
  const options = { ...ctx.options, backend: s.info.backend === 'cpu-ref' ? ctx.options.backend : s.info.backend };
  const info = await remote.load(options.model, loadOptions(options, want.maxLayers ?? s.info.layers, want.weights), loadProgress(ctx));
  if (!ctx.current()) return null;
  const shape: ModelShape = { ...s.shape, dtype: info.dtype, dtypes: loadableDtypes(info.backend, s.own, s.pinned, info.dtype) };
  const same = cost && info.dtype === s.info.dtype && info.backend === s.info.backend;
  const next = same ? cost : await runCalibration(remote, ctx, info, shape, s.adapter ?? { ok: false, reason: 'not probed' });
  return ctx.current() ? { info, shape, cost: next } : null;
}

/**
 * Before the load, with a memory budget: the dtype and blocks it affords (dtypes.ts preloadChoice), from
 * config.json and m3web.json alone. Without a budget: all blocks in the model's own dtype.
 */
async function preload(remote: Remote, ctx: StartupContext, prev: PreviousSession, pinned: PlanDType | undefined): Promise<{ maxLayers: number | undefined; weights: WeightsOption; sidecar: Sidecar | null | undefined }> {
  const auto: WeightsOption = ctx.options.weights ?? 'auto';
  if (ctx.budget.memoryMB === undefined) return { maxLayers: undefined, weights: auto, sidecar: prev.sidecar };
  const [pre, sidecar, gpu] = await Promise.all([remote.inspect(ctx.options.model, sourceOptions(ctx.options)), prev.sidecar ? Promise.resolve(prev.sidecar) : fetchSidecar(remote, ctx.options), remote.probeGpu()]);
  const backend = ctx.options.backend === 'cpu' || !gpu.ok ? 'cpu' : 'webgpu';
  // A pre-quantised folder's dtype is in its config.json; a float checkpoint's is not known before a load:
  // f32 is its upper bound (an f16 checkpoint loads smaller).
  const own = prev.own ?? pinned ?? (pre.quantizedBits === 8 ? 'int8' : pre.quantizedBits === 4 ? 'q4' : null);
  const guess = own ?? 'f32';
  const shape: ModelShape = { ...pre, dtype: guess, dtypes: loadableDtypes(backend, own, pinned, guess), colbertWidth: null };
  const choice = preloadChoice(shape, qualityTable(shape, sidecar), ctx.budget, own, pinned);
  const weights = backend !== 'webgpu' || (!pinned && choice.dtype === preferredDtype(shape.dtypes!, own)) ? auto : choice.dtype;
  return { maxLayers: choice.maxLayers, weights, sidecar };
}

/**
 * Calibrates every backend the worker built, plans on each for the budget, and keeps the one whose plan
 * is best (higher quality, then lower latency); the worker releases the other. The reason names both.
 */
async function chooseBackend(
  remote: Remote,
  ctx: StartupContext,
  s: { info: ModelInfo; shape: ModelShape; quality: QualityTable; adapter: GpuProbe; own: PlanDType | null; pinned?: PlanDType },
  calib: (info: ModelInfo, shape: ModelShape) => Promise<CostModel>,
): Promise<{ info: ModelInfo; cost: CostModel } | null> {
  const tried: { kind: ModelInfo['backend']; cost: CostModel; plan: ClientPlan | null }[] = [];
  for (const kind of s.info.backends!) {
    const info: ModelInfo = { ...s.info, backend: kind, dtype: kind === 'webgpu' ? s.info.dtype : 'f32' };
    const shape = { ...s.shape, dtype: info.dtype, dtypes: loadableDtypes(kind, s.own, s.pinned, info.dtype) };
    const cost = await calib(info, shape);
    if (!ctx.current()) return null;
    let plan: ClientPlan | null;
    try {
      plan = chooseDtypePlan(shape, s.quality, cost, ctx.budget, kind, limitsOf(info, s.adapter), s.own, s.pinned);
    } catch {
      plan = null;
    }
    tried.push({ kind, cost, plan });
  }
  const ok = tried.filter((t) => t.plan);
  const pick = ok.sort((x, y) => y.plan!.quality - x.plan!.quality || x.plan!.latencyMs - y.plan!.latencyMs)[0] ?? tried.sort((x, y) => x.cost.a + x.cost.b - (y.cost.a + y.cost.b))[0];
  const fmt = (t: (typeof tried)[number]) => (t.plan ? `${t.kind} ${t.plan.layers}×${t.plan.dims} ${t.plan.dtype} ~${t.plan.latencyMs.toFixed(1)} ms` : `${t.kind}: no plan meets the budget`);
  const reason = `software WebGPU adapter: calibrated ${tried.map(fmt).join(' vs ')}; kept ${pick.kind}`;
  ctx.stats.backendTrials = tried.map((t) => ({ backend: t.kind, plan: t.plan && { layers: t.plan.layers, dims: t.plan.dims, dtype: t.plan.dtype, latencyMs: t.plan.latencyMs, quality: t.plan.quality } }));
  return { info: await remote.selectBackend(pick.kind, reason), cost: pick.cost };
}

/** The model's m3web.json quality table, read by the worker's loader (same source, same offline cache). */
async function fetchSidecar(remote: Remote, options: M3ClientOptions): Promise<Sidecar | null> {
  try {
    return ((await remote.readSidecar(options.model, sourceOptions(options))) as Sidecar | null) ?? null;
  } catch {
    return null;
  }
}

async function runCalibration(remote: Remote, ctx: StartupContext, info: ModelInfo, shape: ModelShape, adapter: GpuProbe): Promise<CostModel> {
  const out = await calibrate(remote, {
    info,
    shape,
    adapter,
    cache: ctx.cache,
    mode: ctx.options.calibration ?? 'auto',
    current: ctx.current,
    onProgress: (p) => ctx.emit({ phase: 'calibrate', ...p }),
  });
  ctx.stats.calibration = out.source;
  ctx.stats.calibrationRuns += out.runs;
  return out.cost;
}
