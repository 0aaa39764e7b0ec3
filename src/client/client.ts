/**
 * M3Client: the only API an app needs. It owns the embedding worker (comlink), probes the device,
 * calibrates the cost model (cached per adapter × model × dtype), plans (layers, dims) for a budget,
 * queues and batches embed calls fairly, forwards progress, honours AbortSignals, and survives a dead
 * worker or a lost GPU device by starting a new worker and re-running every unfinished request.
 *
 *   const m3 = await M3Client.create({ model: '/models/m3bert-tiny/', budget: { latencyMs: 20 } });
 *   const r = await m3.embed(['hello'], { signal });   // layers/dims from m3.plan unless given
 *   m3.frontier();                                     // Pareto set (latency, memory, quality)
 *   m3.dispose();
 *
 * Exactly-once: every request is split into chunks (slices of its texts); a chunk's rows are written
 * into the request's output at most once, a request settles once (a `settled` flag guards resolve and
 * reject), and results from a worker generation that was replaced are ignored. Embedding is pure, so
 * re-running a chunk after a crash is safe.
 */
import * as Comlink from 'comlink';
import type { EmbedResult, EmbedService, GpuProbe, ModelInfo, SourceOptions } from '../engine/service.ts';
import { EngineReplacedError, InvalidInputError, M3Error } from '../errors.ts';
import type { LoadProgress } from '../model/load.ts';
import { computeScore, type M3Scores } from '../search/score.ts';
import { indexedDbCache, type CalibrationCache } from './cache.ts';
import { calibrate, deviceKey } from './calibration.ts';
import { ClientDisposedError, WorkerCrashedError } from './errors.ts';
import { Heartbeat } from './heartbeat.ts';
import { cancelled, requestOptions } from './validate.ts';
import { RequestQueue, type Chunk, type RequestOptions } from './scheduler.ts';
import {
  choosePlan,
  candidates,
  DEFAULT_TOKENS_PER_QUERY,
  engineMB,
  indexMB,
  paretoFrontier,
  predictBatchMs,
  qualityTable,
  updateDrift,
  type Budget,
  type Candidate,
  type CostModel,
  type DriftState,
  type ModelShape,
  type Plan,
  type QualityTable,
  type Sidecar,
} from './planner.ts';

export type { ClientEmbedOptions, ClientEmbedResult, ClientProgress, ClientStats, M3ClientOptions } from './types.ts';
import type { ClientEmbedOptions, ClientEmbedResult, ClientProgress, ClientStats, M3ClientOptions } from './types.ts';

const DEFAULT_HEARTBEAT = { intervalMs: 1000, timeoutMs: 30_000 };

function isInputError(e: unknown): boolean {
  const name = (e as { name?: string })?.name;
  return name === 'InvalidInputError' && !/no model loaded/.test(String((e as Error).message));
}

export class M3Client extends EventTarget {
  info!: ModelInfo;
  plan!: Plan;
  cost!: CostModel;
  quality!: QualityTable;
  shape!: ModelShape;
  adapter: GpuProbe | null = null;
  readonly stats: ClientStats = { calibration: 'skipped', calibrationRuns: 0, restarts: 0, workerCalls: 0, replans: 0 };

  private worker: Worker | null = null;
  private remote: Comlink.Remote<EmbedService> | null = null;
  private gen = 0;
  private starting: Promise<void> | null = null;
  private readonly queue: RequestQueue;
  private inflight: { gen: number; chunks: Chunk[] } | null = null;
  private disposed = false;
  private heartbeat: Heartbeat | null = null;
  /** Blocks the worker uploads (undefined: all); set from the memory budget, cleared when a plan goes deeper. */
  private maxLayers: number | undefined;
  private deepening: Promise<void> | null = null;
  /** setModel() to another model: calibrate and plan afresh on the next start. */
  private modelChanged = false;
  private drift: DriftState = { logRatio: 0, n: 0 };
  private readonly cache: CalibrationCache;
  private sidecar: Sidecar | null = null;

  private constructor(readonly options: M3ClientOptions) {
    super();
    this.cache = options.cache ?? indexedDbCache();
    this.queue = new RequestQueue(options.chunkTexts ?? 4);
  }

  static async create(options: M3ClientOptions): Promise<M3Client> {
    if (!options || typeof options.model !== 'string' || !options.model) {
      throw new M3Error('M3Client.create needs a model', { expected: '{ model: hub id or URL }', received: options?.model });
    }
    const c = new M3Client(options);
    try {
      await c.start();
    } catch (e) {
      c.dispose();
      throw e;
    }
    return c;
  }

  /** The model this client serves (a SemanticIndex stores it, so an index built with another model is refused). */
  get modelId(): string {
    return this.options.model;
  }

  get budget(): Budget {
    return this.options.budget ?? {};
  }

  /** Every candidate (layers, dims) with its predicted latency, memory and quality. */
  candidates(budget: Budget = this.budget): Candidate[] {
    return candidates(this.shape, this.quality, this.cost, budget, this.limits());
  }

  /** The Pareto set over (latency ↓, memory ↓, quality ↑), for a UI to draw. */
  frontier(budget: Budget = this.budget): Candidate[] {
    return paretoFrontier(this.candidates(budget));
  }

  /** The plan for another budget on this device (throws BudgetError when none fits). */
  planFor(budget: Budget): Plan {
    return choosePlan(this.shape, this.quality, this.cost, budget, this.info.backend, this.limits());
  }

  /** Changes the budget and re-plans. */
  setBudget(budget: Budget): Plan {
    const plan = this.planFor(budget);
    this.options.budget = budget;
    this.plan = plan;
    this.emit({ phase: 'replan', reason: 'budget changed', plan });
    // A deeper plan than the uploaded blocks: upload the rest in the background (calls wait for it).
    void this.ensureLayers(plan.layers).catch((e) => this.emit({ phase: 'recover', reason: `could not upload deeper blocks: ${String(e)}`, restarts: this.stats.restarts }));
    return plan;
  }

  private emit(p: ClientProgress): void {
    try {
      this.options.onProgress?.(p);
    } catch {
      // A throwing progress callback must not break the client.
    }
    this.dispatchEvent(new CustomEvent('progress', { detail: p }));
  }

  // ---------------------------------------------------------------------------------------------
  // Worker lifecycle

  private spawn(ortUrl: string | null): Worker {
    if (this.options.workerFactory) return this.options.workerFactory();
    if (ortUrl) return new Worker(new URL('../../workers/ort.worker.ts', import.meta.url), { type: 'module' });
    return new Worker(new URL('../../workers/embed.worker.ts', import.meta.url), { type: 'module' });
  }

  private modelBase(): URL {
    const m = this.options.model;
    return /^(https?:|\/|\.)/.test(m) ? new URL(m.endsWith('/') ? m : `${m}/`, typeof location !== 'undefined' ? location.href : undefined) : new URL(`https://huggingface.co/${m}/resolve/main/`);
  }

  /** The ONNX file to run on onnxruntime-web's wasm EP, or null for the engine's own backends. */
  private async chooseOrt(): Promise<string | null> {
    const { backend = 'auto', onnx = 'auto' } = this.options;
    if (backend !== 'ort-wasm' || onnx === false || this.options.workerFactory) return null;
    const url = onnx === 'auto' ? new URL('onnx/model.onnx', this.modelBase()).href : new URL(onnx, typeof location !== 'undefined' ? location.href : undefined).href;
    // 'auto' never picks ORT: the CPU backend runs the same onnxruntime-web wasm kernels per block, so it
    // keeps early exit and every output, which a whole exported graph cannot.
    return url;
  }

  /** Starts a worker, loads the model (HTTP/browser cache makes a reload cheap), calibrates or reads the cache, plans. */
  private start(): Promise<void> {
    if (this.starting) return this.starting;
    const gen = ++this.gen;
    this.starting = (async () => {
      const ortUrl = await this.chooseOrt();
      const worker = this.spawn(ortUrl);
      this.worker = worker;
      const remote = Comlink.wrap<EmbedService>(worker);
      this.remote = remote;
      worker.addEventListener('error', (ev) => {
        ev.preventDefault?.();
        void this.recover(gen, `worker error: ${(ev as ErrorEvent).message ?? 'unknown'}`);
      });
      worker.addEventListener('messageerror', () => void this.recover(gen, 'worker messageerror'));
      const onLoad = Comlink.proxy((p: LoadProgress) => {
        if (p.phase === 'download') this.emit({ phase: 'download', file: p.file, loaded: p.loaded, total: p.total });
        else this.emit({ phase: 'loaded', bytes: p.bytes });
      });
      // Blocks to upload: all, unless a memory budget cannot hold them (planned from config.json alone,
      // before any weight is fetched), or a plan already chose fewer (after a restart).
      this.maxLayers ??= ortUrl ? undefined : await this.affordableLayers(remote);
      const [adapter, info, sidecar] = await Promise.all([
        remote.probeGpu(),
        ortUrl ? remote.load(this.options.model, { onnx: ortUrl, wasmPaths: this.options.ortWasmPaths } as never, onLoad) : remote.load(this.options.model, this.loadOptions(), onLoad),
        this.sidecar ? Promise.resolve(this.sidecar) : ortUrl ? Promise.resolve(null) : this.fetchSidecar(remote),
      ]);
      const stats = await remote.modelStats();
      if (gen !== this.gen) return;
      const prevDevice = this.adapter ? deviceKey(this.adapter, this.info) : null;
      this.adapter = adapter;
      this.info = info;
      this.sidecar = sidecar;
      this.shape = {
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
      this.quality = qualityTable(this.shape, sidecar);
      if ((info.backend as string) === 'ort-wasm') {
        // The ONNX export has no early exits: only full-depth points remain (dims still truncate).
        const full = this.quality.points.filter((p) => p.layers === info.layers);
        this.quality = { ...this.quality, points: full.length ? full : qualityTable({ ...this.shape, mrlLayers: undefined, mrlDims: undefined }).points.filter((p) => p.layers === info.layers) };
      }
      const deviceChanged = prevDevice !== null && prevDevice !== deviceKey(adapter, info);
      if ((info.backends?.length ?? 1) > 1) {
        // A software WebGPU adapter: the worker built WebGPU and the CPU backend; calibrate both, keep the faster plan.
        await this.chooseBackend(remote, gen);
        if (gen !== this.gen) return;
      } else if (!this.cost || prevDevice === null || deviceChanged || this.modelChanged) this.cost = await this.calibrate(remote, gen);
      this.modelChanged = false;
      if (gen !== this.gen) return;
      let plan: Plan;
      try {
        plan = choosePlan(this.shape, this.quality, this.cost, this.budget, this.info.backend, this.limits());
      } catch (e) {
        if (!this.plan) throw e; // first start: the budget error is the caller's to see
        plan = { ...this.plan, backend: this.info.backend, dtype: this.info.dtype }; // after a restart: keep serving the old plan
      }
      plan.backendReason = this.info.backendReason;
      if (this.plan && (deviceChanged || plan.backend !== this.plan.backend)) {
        this.stats.replans++;
        this.emit({ phase: 'replan', reason: 'device changed', plan });
      }
      this.plan = plan;
      this.drift = { logRatio: 0, n: 0 };
      this.startHeartbeat(gen);
      this.emit({ phase: 'ready', plan });
    })().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  private loadOptions(maxLayers = this.maxLayers): Parameters<EmbedService['load']>[1] {
    const { backend = 'auto', weights, threads, ortWasmPaths, checkFinite } = this.options;
    return {
      ...this.sourceOptions(),
      ...(checkFinite !== undefined ? { checkFinite } : {}),
      backend: backend as Exclude<typeof backend, 'ort-wasm'>,
      weights,
      ...(threads !== undefined ? { threads } : {}),
      ...(ortWasmPaths ? { wasmPaths: ortWasmPaths } : {}),
      ...(maxLayers ? { maxLayers } : {}),
    };
  }

  private sourceOptions(): SourceOptions {
    const { hubEndpoint, revision, subfolder, token } = this.options;
    return Object.fromEntries(Object.entries({ hubEndpoint, revision, subfolder, token }).filter(([, v]) => v !== undefined));
  }

  /**
   * The deepest exit whose uploaded blocks fit the budget's memoryMB (one memory model: planAllocations),
   * or undefined for all of them. Weight dtype before load: f16 when asked for, else the f32 upper bound.
   */
  private async affordableLayers(remote: Comlink.Remote<EmbedService>): Promise<number | undefined> {
    const mem = this.budget.memoryMB;
    if (mem === undefined) return undefined;
    const pre = await remote.inspect(this.options.model, this.sourceOptions());
    const shape: ModelShape = { ...pre, dtype: this.options.weights === 'f16' ? 'f16' : 'f32', colbertWidth: null };
    const T = Math.min(this.budget.tokensPerQuery ?? DEFAULT_TOKENS_PER_QUERY, pre.maxTokens);
    let k = pre.layers;
    while (k > 1 && engineMB(shape, k, T) + indexMB(this.budget.corpusSize, 1) > mem) k--;
    return k < pre.layers ? k : undefined;
  }

  /**
   * Makes sure the worker holds at least `layers` blocks: a plan or a call that goes deeper than what was
   * uploaded reloads the model with more blocks (transactional in the worker: the old engine serves
   * until the new one is ready; calls caught by the swap are re-run, see onBatchError).
   */
  private ensureLayers(layers: number): Promise<void> {
    if (!this.info || layers <= (this.info.maxLayers ?? this.info.layers) || !this.remote) return Promise.resolve();
    this.deepening ??= (async () => {
      const remote = this.remote!;
      const gen = this.gen;
      const info = await remote.load(this.options.model, this.loadOptions(this.info.layers));
      if (gen !== this.gen) return;
      this.maxLayers = undefined;
      this.info = info;
    })().finally(() => {
      this.deepening = null;
      this.pump();
    });
    return this.deepening;
  }

  /**
   * Calibrates every backend the worker built, plans on each for the budget, and keeps the one whose plan
   * is best (higher quality, then lower latency); the worker releases the other. The reason names both.
   */
  private async chooseBackend(remote: Comlink.Remote<EmbedService>, gen: number): Promise<void> {
    const kinds = this.info.backends!;
    const tried: { kind: ModelInfo['backend']; cost: CostModel; plan: Plan | null; info: ModelInfo }[] = [];
    for (const kind of kinds) {
      const info: ModelInfo = { ...this.info, backend: kind, dtype: kind === 'webgpu' ? this.info.dtype : 'f32' };
      const cost = await this.calibrate(remote, gen, info);
      if (gen !== this.gen) return;
      let plan: Plan | null;
      try {
        plan = choosePlan({ ...this.shape, dtype: info.dtype }, this.quality, cost, this.budget, kind, kind === 'webgpu' && this.adapter?.ok ? this.adapter.adapter.limits : {});
      } catch {
        plan = null;
      }
      tried.push({ kind, cost, plan, info });
    }
    const ok = tried.filter((t) => t.plan);
    const pick = ok.sort((x, y) => y.plan!.quality - x.plan!.quality || x.plan!.latencyMs - y.plan!.latencyMs)[0] ?? tried.sort((x, y) => x.cost.a + x.cost.b - (y.cost.a + y.cost.b))[0];
    const fmt = (t: (typeof tried)[number]) => (t.plan ? `${t.kind} ${t.plan.layers}×${t.plan.dims} ~${t.plan.latencyMs.toFixed(1)} ms` : `${t.kind}: no plan meets the budget`);
    const reason = `software WebGPU adapter: calibrated ${tried.map(fmt).join(' vs ')}; kept ${pick.kind}`;
    this.stats.backendTrials = tried.map((t) => ({ backend: t.kind, plan: t.plan && { layers: t.plan.layers, dims: t.plan.dims, latencyMs: t.plan.latencyMs, quality: t.plan.quality } }));
    this.info = await remote.selectBackend(pick.kind, reason);
    this.shape = { ...this.shape, dtype: this.info.dtype };
    this.cost = pick.cost;
  }

  /** The adapter's buffer limits, when the plan runs on WebGPU. */
  private limits(): { maxStorageBufferBindingSize?: number; maxBufferSize?: number } {
    return this.info?.backend === 'webgpu' && this.adapter?.ok ? this.adapter.adapter.limits : {};
  }

  /** The model's m3web.json quality table, read by the worker's loader (same source, same offline cache). */
  private async fetchSidecar(remote: Comlink.Remote<EmbedService>): Promise<Sidecar | null> {
    try {
      return ((await remote.readSidecar(this.options.model, this.sourceOptions())) as Sidecar | null) ?? null;
    } catch {
      return null;
    }
  }

  private async calibrate(remote: Comlink.Remote<EmbedService>, gen: number, info: ModelInfo = this.info): Promise<CostModel> {
    const out = await calibrate(remote, {
      info,
      shape: this.shape,
      adapter: this.adapter,
      cache: this.cache,
      mode: this.options.calibration ?? 'auto',
      current: () => gen === this.gen,
      onProgress: (p) => this.emit({ phase: 'calibrate', ...p }),
    });
    this.stats.calibration = out.source;
    this.stats.calibrationRuns += out.runs;
    return out.cost;
  }

  private startHeartbeat(gen: number): void {
    this.heartbeat?.stop();
    const remote = this.remote!;
    this.heartbeat = new Heartbeat(
      this.options.heartbeat ?? DEFAULT_HEARTBEAT,
      () => remote.ping(),
      (reason) => void this.recover(gen, reason),
    );
  }

  /**
   * The worker of generation `gen` is dead (terminated, crashed, unresponsive) or its device is lost:
   * put its in-flight chunks back at the front of the queue, start a new worker, and go on.
   */
  private async recover(gen: number, reason: string): Promise<void> {
    if (gen !== this.gen || this.disposed) return;
    this.gen++; // results still arriving from the old worker are ignored from here on
    this.heartbeat?.stop();
    this.stats.restarts++;
    this.emit({ phase: 'recover', reason, restarts: this.stats.restarts });
    this.worker?.terminate();
    this.worker = null;
    this.remote = null;
    this.starting = null;
    const back = this.inflight?.chunks ?? [];
    this.inflight = null;
    const maxRestarts = this.options.maxRestarts ?? 3;
    const touched = this.queue.requeue(back);
    for (const r of touched) r.restarts++;
    for (const r of touched) {
      if (r.restarts > maxRestarts) this.queue.fail(r, new WorkerCrashedError(`the worker died ${r.restarts} times while this request ran`, { expected: `at most ${maxRestarts} restarts`, received: reason }));
    }
    let lastError: unknown;
    for (let attempt = 0; attempt < 3 && !this.disposed; attempt++) {
      try {
        await this.start();
        this.pump();
        return;
      } catch (e) {
        lastError = e;
        this.gen++;
        (this.worker as Worker | null)?.terminate();
        this.worker = null;
        this.remote = null;
      }
    }
    this.queue.failAll(() => new WorkerCrashedError('could not restart the worker', { expected: 'a worker that loads the model', received: String(lastError), cause: lastError }));
  }

  // ---------------------------------------------------------------------------------------------
  // Requests

  embed(texts: string[], opts: ClientEmbedOptions = {}): Promise<ClientEmbedResult> {
    return new Promise<ClientEmbedResult>((resolve, reject) => {
      if (this.disposed) return reject(new ClientDisposedError('the client was disposed', { expected: 'a live client', received: 'embed() after dispose()' }));
      let o: RequestOptions;
      try {
        o = requestOptions(texts, opts, this.plan, this.info);
      } catch (e) {
        return reject(e);
      }
      const req = this.queue.add(texts, o, { resolve, reject, onProgress: opts.onProgress });
      if (o.layers > (this.info.maxLayers ?? this.info.layers)) void this.ensureLayers(o.layers).catch((e) => this.queue.fail(req, e));
      if (opts.signal) {
        const signal = opts.signal;
        const onAbort = () => this.queue.fail(req, cancelled(signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
        req.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.pump();
    });
  }

  /**
   * FlagEmbedding's compute_score for one query against one or more passages: dense, sparse, colbert,
   * sparse+dense and colbert+sparse+dense (each a weighted sum over the weights used, divided by their
   * sum). Needs BGE-M3 heads; weights default to [1, 1, 1] for [dense, sparse, colbert].
   */
  async score(query: string, passages: string | string[], weights: [number, number, number] = [1, 1, 1], opts: { layers?: number; dims?: number; signal?: AbortSignal } = {}): Promise<M3Scores[]> {
    const list = typeof passages === 'string' ? [passages] : passages;
    const r = await this.embed([query, ...list], { ...opts, outputs: ['dense', 'sparse', 'colbert'] });
    const part = (i: number) => ({ dense: r.embeddings.subarray(i * r.dims, (i + 1) * r.dims), sparse: r.sparse![i], colbert: r.colbert![i] });
    return list.map((_, j) => computeScore(part(0), part(j + 1), weights));
  }

  private pump(): void {
    if (this.disposed || this.inflight || this.starting || this.deepening || !this.remote) return;
    const batch = this.queue.next(this.options.maxBatchTexts ?? 32, this.info.maxLayers ?? this.info.layers);
    if (!batch.length) return;
    const gen = this.gen;
    const remote = this.remote;
    this.inflight = { gen, chunks: batch };
    const texts = batch.flatMap((c) => c.req.texts.slice(c.start, c.end));
    const { layers, dims, ...rest } = batch[0].req.opts;
    this.stats.workerCalls++;
    const t0 = performance.now();
    remote.embed(texts, { layers, dims, ...rest }).then(
      (r) => {
        if (gen !== this.gen) return; // a replaced worker's late answer
        this.inflight = null;
        this.queue.deliver(batch, r);
        this.observe(batch[0].req.opts.layers, r, performance.now() - t0);
        this.pump();
      },
      (e) => {
        if (gen !== this.gen) return;
        void this.onBatchError(gen, batch, e);
      },
    );
  }

  /** Drift check: the measured batch time against the cost model; far off for long → scale and re-plan. */
  private observe(layers: number, r: EmbedResult, ms: number): void {
    if (!r.tokens?.length) return;
    const predicted = predictBatchMs(this.cost, [...r.tokens], layers);
    const d = updateDrift(this.drift, ms, predicted);
    this.drift = d.state;
    if (!d.replan) return;
    this.cost = { ...this.cost, a: this.cost.a * d.ratio, b: this.cost.b * d.ratio, c: this.cost.c * d.ratio, source: 'drift-adjusted' };
    this.drift = { logRatio: 0, n: 0 };
    try {
      this.plan = choosePlan(this.shape, this.quality, this.cost, this.budget, this.info.backend, this.limits());
      this.stats.replans++;
      this.emit({ phase: 'replan', reason: `measured latency ${d.ratio.toFixed(2)}× the model`, plan: this.plan });
    } catch {
      // The old plan stays when the adjusted model meets nothing; the next embed still runs.
    }
  }

  private async onBatchError(gen: number, batch: Chunk[], e: unknown): Promise<void> {
    if ((e as { name?: string })?.name === 'EngineReplacedError') {
      // The worker swapped engines under this call (a deeper reload): nothing was returned; run it again.
      this.inflight = null;
      this.queue.requeue(batch);
      this.pump();
      return;
    }
    // Is the worker still healthy (an input error) or did its device go (lost → engine gone)?
    let healthy = false;
    if (isInputError(e)) {
      try {
        const p = await Promise.race([this.remote!.ping(), new Promise<null>((res) => setTimeout(() => res(null), 5000))]);
        healthy = !!p && p.loaded;
      } catch {
        healthy = false;
      }
    }
    if (gen !== this.gen) return;
    if (!healthy) return this.recover(gen, `worker call failed: ${(e as Error)?.name ?? ''} ${(e as Error)?.message ?? String(e)}`);
    this.inflight = null;
    // One request's input broke a shared batch: re-run each slice alone so only that request fails.
    if (batch.length > 1) this.queue.isolate(batch);
    else this.queue.fail(batch[0].req, e);
    this.pump();
  }

  /**
   * Loads another model (or reloads this one) in a fresh worker. Reloading the same model re-runs the
   * calls in flight on it, so nothing is lost; switching to another model rejects them with
   * EngineReplacedError (their vectors would belong to a different model), then calibrates and plans anew.
   */
  async setModel(model: string = this.options.model): Promise<Plan> {
    if (this.disposed) throw new ClientDisposedError('the client was disposed', { expected: 'a live client', received: 'setModel() after dispose()' });
    if (typeof model !== 'string' || !model) throw new InvalidInputError('setModel needs a model', { expected: 'a hub id or URL', received: model });
    const changed = model !== this.options.model;
    this.gen++; // answers still coming from the old worker are ignored from here on
    this.heartbeat?.stop();
    this.worker?.terminate();
    this.worker = null;
    this.remote = null;
    this.starting = null;
    const back = this.inflight?.chunks ?? [];
    this.inflight = null;
    if (changed) {
      this.queue.failAll(() => new EngineReplacedError('another model was loaded while this call waited', { expected: `the model the call started on (${this.options.model})`, received: model }));
      this.options.model = model;
      this.sidecar = null;
      this.maxLayers = undefined;
      this.modelChanged = true;
      this.plan = undefined as unknown as Plan;
    } else {
      this.queue.requeue(back);
    }
    await this.start();
    this.pump();
    return this.plan;
  }

  /** Worker-side memory figures: live GPU buffer bytes and the worker's JS heap (where the browser reports it). */
  async memory(): Promise<{ gpuBytes: number; gpuBuffers: number; jsHeapBytes: number | null } | null> {
    return (await this.remote?.debugMemory()) ?? null;
  }

  // ---------------------------------------------------------------------------------------------
  // Test hooks and teardown

  /** Test hook: terminates the worker without telling the client (the heartbeat finds out). */
  debugTerminateWorker(): void {
    this.worker?.terminate();
  }

  /** Test hook: destroys the worker's GPU device (device.lost fires inside the worker). */
  async debugLoseDevice(): Promise<boolean> {
    return (await this.remote?.loseDeviceForTest()) ?? false;
  }

  /** Test hook: calibration embeds the current worker ran (0 after a cache hit). */
  async debugWorkerCalibrationRuns(): Promise<number> {
    return (await this.remote?.calibrationRuns) ?? -1;
  }

  get pending(): number {
    return this.queue.size;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.gen++;
    this.heartbeat?.stop();
    this.queue.failAll(() => new ClientDisposedError('the client was disposed', { expected: 'a live client', received: 'dispose() while pending' }));
    this.queue.clear();
    this.worker?.terminate();
    this.worker = null;
    this.remote = null;
  }
}
