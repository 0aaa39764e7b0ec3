/**
 * What M3Client does each time a worker starts: load the model (only the blocks a memory budget can
 * afford), read its m3web.json quality table, describe its shape, and calibrate the cost model (or read
 * it from the cache); on a software WebGPU adapter calibrate WebGPU and the CPU backend both and keep
 * the better. The client turns the resulting session into a plan (client.ts).
 */
import type { GpuProbe, ModelInfo, SourceOptions } from '../engine/service.ts';
import { InvalidInputError } from '../errors.ts';
import type { LoadProgress } from '../model/load.ts';
import * as Comlink from 'comlink';
import type { CalibrationCache } from './cache.ts';
import { calibrate, deviceKey } from './calibration.ts';
import { choosePlan, DEFAULT_TOKENS_PER_QUERY, engineMB, indexMB, qualityTable, type Budget, type CostModel, type ModelShape, type Plan, type QualityTable, type Sidecar } from './planner.ts';
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
}

export function sourceOptions(options: M3ClientOptions): SourceOptions {
  const { hubEndpoint, revision, subfolder, token } = options;
  return Object.fromEntries(Object.entries({ hubEndpoint, revision, subfolder, token }).filter(([, v]) => v !== undefined));
}

/** The worker's load options for this client (maxLayers: blocks to upload; undefined = all). */
export function loadOptions(options: M3ClientOptions, maxLayers: number | undefined): Parameters<Remote['load']>[1] {
  const { backend = 'auto', weights, threads, ortWasmPaths, checkFinite } = options;
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

/** Loads, describes and calibrates; null when the worker was replaced meanwhile. */
export async function openSession(remote: Remote, ctx: StartupContext, prev: PreviousSession): Promise<Session | null> {
  const { options } = ctx;
  const onLoad = Comlink.proxy((p: LoadProgress) => {
    if (p.phase === 'download') ctx.emit({ phase: 'download', file: p.file, loaded: p.loaded, total: p.total });
    else ctx.emit({ phase: 'loaded', bytes: p.bytes });
  });
  // Blocks to upload: all, unless a memory budget cannot hold them (planned from config.json alone,
  // before any weight is fetched), or a plan already chose fewer (after a restart). An exported graph
  // has no exits: all of it is loaded.
  const maxLayers = prev.maxLayers ?? (options.backend === 'ort-wasm' ? undefined : await affordableLayers(remote, ctx));
  const [adapter, loaded, sidecar] = await Promise.all([remote.probeGpu(), remote.load(options.model, loadOptions(options, maxLayers), onLoad), prev.sidecar ? Promise.resolve(prev.sidecar) : fetchSidecar(remote, options)]);
  let info = loaded;
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
  const calib = (i: ModelInfo) => runCalibration(remote, ctx, i, shape, adapter);
  let cost: CostModel;
  if ((info.backends?.length ?? 1) > 1) {
    // A software WebGPU adapter: the worker built WebGPU and the CPU backend; calibrate both, keep the faster plan.
    const picked = await chooseBackend(remote, ctx, { info, shape, quality, adapter }, calib);
    if (!picked) return null;
    info = picked.info;
    shape = { ...shape, dtype: info.dtype };
    cost = picked.cost;
  } else if (!prev.cost || prevDevice === null || deviceChanged || prev.modelChanged) cost = await calib(info);
  else cost = prev.cost;
  if (!ctx.current()) return null;
  return { adapter, info, sidecar, shape, quality, cost, maxLayers, deviceChanged };
}

/**
 * The deepest exit whose uploaded blocks fit the budget's memoryMB (one memory model: planAllocations),
 * or undefined for all of them. Weight dtype before load: f16 when asked for, else the f32 upper bound.
 */
async function affordableLayers(remote: Remote, ctx: StartupContext): Promise<number | undefined> {
  const mem = ctx.budget.memoryMB;
  if (mem === undefined) return undefined;
  const pre = await remote.inspect(ctx.options.model, sourceOptions(ctx.options));
  const shape: ModelShape = { ...pre, dtype: ctx.options.weights === 'f16' ? 'f16' : 'f32', colbertWidth: null };
  const T = Math.min(ctx.budget.tokensPerQuery ?? DEFAULT_TOKENS_PER_QUERY, pre.maxTokens);
  let k = pre.layers;
  while (k > 1 && engineMB(shape, k, T) + indexMB(ctx.budget.corpusSize, 1) > mem) k--;
  return k < pre.layers ? k : undefined;
}

/**
 * Calibrates every backend the worker built, plans on each for the budget, and keeps the one whose plan
 * is best (higher quality, then lower latency); the worker releases the other. The reason names both.
 */
async function chooseBackend(remote: Remote, ctx: StartupContext, s: { info: ModelInfo; shape: ModelShape; quality: QualityTable; adapter: GpuProbe }, calib: (info: ModelInfo) => Promise<CostModel>): Promise<{ info: ModelInfo; cost: CostModel } | null> {
  const tried: { kind: ModelInfo['backend']; cost: CostModel; plan: Plan | null }[] = [];
  for (const kind of s.info.backends!) {
    const info: ModelInfo = { ...s.info, backend: kind, dtype: kind === 'webgpu' ? s.info.dtype : 'f32' };
    const cost = await calib(info);
    if (!ctx.current()) return null;
    let plan: Plan | null;
    try {
      plan = choosePlan({ ...s.shape, dtype: info.dtype }, s.quality, cost, ctx.budget, kind, kind === 'webgpu' && s.adapter.ok ? s.adapter.adapter.limits : {});
    } catch {
      plan = null;
    }
    tried.push({ kind, cost, plan });
  }
  const ok = tried.filter((t) => t.plan);
  const pick = ok.sort((x, y) => y.plan!.quality - x.plan!.quality || x.plan!.latencyMs - y.plan!.latencyMs)[0] ?? tried.sort((x, y) => x.cost.a + x.cost.b - (y.cost.a + y.cost.b))[0];
  const fmt = (t: (typeof tried)[number]) => (t.plan ? `${t.kind} ${t.plan.layers}×${t.plan.dims} ~${t.plan.latencyMs.toFixed(1)} ms` : `${t.kind}: no plan meets the budget`);
  const reason = `software WebGPU adapter: calibrated ${tried.map(fmt).join(' vs ')}; kept ${pick.kind}`;
  ctx.stats.backendTrials = tried.map((t) => ({ backend: t.kind, plan: t.plan && { layers: t.plan.layers, dims: t.plan.dims, latencyMs: t.plan.latencyMs, quality: t.plan.quality } }));
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
