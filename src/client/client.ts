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
import type { EmbedResult, GpuProbe, ModelInfo } from '../engine/service.ts';
import { EngineReplacedError, InvalidInputError, M3Error } from '../errors.ts';
import { computeScore, type M3Scores } from '../search/score.ts';
import { indexedDbCache, type CalibrationCache } from './cache.ts';
import { chooseDtypePlan, isPinned, type ClientPlan, type WeightsOption } from './dtypes.ts';
import { BudgetError, ClientDisposedError, WorkerCrashedError } from './errors.ts';
import { cancelled, requestOptions } from './validate.ts';
import { RequestQueue, type Chunk, type RequestOptions } from './scheduler.ts';
import { batchErrorAction, observeBatch } from './batch.ts';
import { candidates, paretoFrontier, storageOf, type Budget, type Candidate, type CostModel, type DriftState, type ModelShape, type Plan, type PlanDType, type QualityTable, type Sidecar } from './planner.ts';
import { blocksFor, inLoaded, limitsOf, openSession, planAfterReload, reloadEngine, type StartupContext } from './startup.ts';
import { ReloadChain } from './reloads.ts';
import { WorkerHost } from './worker-host.ts';

export type { ClientEmbedOptions, ClientEmbedResult, ClientProgress, ClientStats, M3ClientOptions } from './types.ts';
import type { ClientEmbedOptions, ClientEmbedResult, ClientProgress, ClientStats, M3ClientOptions } from './types.ts';

export class M3Client extends EventTarget {
  info!: ModelInfo;
  plan!: ClientPlan;
  cost!: CostModel;
  quality!: QualityTable;
  shape!: ModelShape;
  adapter: GpuProbe | null = null;
  readonly stats: ClientStats = { calibration: 'skipped', calibrationRuns: 0, restarts: 0, workerCalls: 0, replans: 0 };

  private readonly host: WorkerHost;
  private gen = 0;
  private starting: Promise<void> | null = null;
  private readonly queue: RequestQueue;
  private inflight: { gen: number; chunks: Chunk[] } | null = null;
  private disposed = false;
  /** Blocks the worker uploads (undefined: all); set from the memory budget, cleared when a plan goes deeper. */
  private maxLayers: number | undefined;
  private readonly reloads = new ReloadChain(() => this.pump());
  /** setModel() to another model: calibrate and plan afresh on the next start. */
  private modelChanged = false;
  private drift: DriftState = { logRatio: 0, n: 0 };
  private readonly cache: CalibrationCache;
  private sidecar: Sidecar | null = null;
  /** What the serving engine was loaded with ('auto': the model's own dtype), and that own dtype once known. */
  private weights: WeightsOption | undefined;
  private own: PlanDType | null = null;

  private constructor(readonly options: M3ClientOptions) {
    super();
    this.cache = options.cache ?? indexedDbCache();
    this.queue = new RequestQueue(options.chunkTexts ?? 4);
    this.host = new WorkerHost(options.workerFactory, options.heartbeat);
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

  /** The plan for another budget on this device, dtype included (throws BudgetError when none fits). */
  planFor(budget: Budget): ClientPlan {
    return { ...chooseDtypePlan(this.shape, this.quality, this.cost, budget, this.info.backend, this.limits(), this.own, this.pinned), backendReason: this.info.backendReason };
  }

  /** Changes the budget and re-plans; another dtype or deeper blocks are loaded in the background (reload()). */
  setBudget(budget: Budget): Plan {
    const plan = this.planFor(budget);
    this.options.budget = budget;
    this.plan = plan;
    this.emit({ phase: 'replan', reason: 'budget changed', plan });
    const fail = (what: string) => (e: unknown) => this.emit({ phase: 'recover', reason: `could not ${what}: ${String(e)}`, restarts: this.stats.restarts });
    if (this.info.backend === 'webgpu' && storageOf(plan.dtype) !== storageOf(this.info.dtype)) void this.reloadDtype().catch(fail(`load the weights as ${plan.dtype}`));
    else void this.ensureLayers(plan.layers).catch(fail('upload deeper blocks'));
    return plan;
  }

  private get pinned(): PlanDType | undefined {
    return isPinned(this.options.weights) ? this.options.weights : undefined;
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
  // Worker lifecycle (worker-host.ts starts and watches workers; startup.ts loads and calibrates)

  private startupContext(gen: number): StartupContext {
    return { options: this.options, budget: this.budget, cache: this.cache, stats: this.stats, emit: (p) => this.emit(p), current: () => gen === this.gen };
  }

  /** Starts a worker, loads the model (HTTP/browser cache makes a reload cheap), calibrates or reads the cache, plans. */
  private start(): Promise<void> {
    if (this.starting) return this.starting;
    const gen = ++this.gen;
    this.starting = (async () => {
      const remote = this.host.spawn((reason) => void this.recover(gen, reason));
      const prev = { adapter: this.adapter, info: this.info, cost: this.cost, sidecar: this.sidecar, maxLayers: this.maxLayers, modelChanged: this.modelChanged, weights: this.weights, own: this.own };
      const s = await openSession(remote, this.startupContext(gen), prev);
      if (!s || gen !== this.gen) return;
      Object.assign(this, { adapter: s.adapter, info: s.info, sidecar: s.sidecar, shape: s.shape, quality: s.quality, cost: s.cost, maxLayers: s.maxLayers, weights: s.weights, own: s.own });
      this.modelChanged = false;
      let plan: ClientPlan;
      if (s.plan instanceof BudgetError) {
        if (!this.plan) throw s.plan; // first start: the budget error is the caller's to see
        plan = { ...this.plan, backend: this.info.backend, dtype: this.info.dtype }; // after a restart: keep serving the old plan
      } else plan = s.plan;
      plan.backendReason = this.info.backendReason;
      if (this.plan && (s.deviceChanged || plan.backend !== this.plan.backend)) {
        this.stats.replans++;
        this.emit({ phase: 'replan', reason: 'device changed', plan });
      }
      this.plan = plan;
      this.drift = { logRatio: 0, n: 0 };
      this.host.watch((reason) => void this.recover(gen, reason));
      this.emit({ phase: 'ready', plan });
    })().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  /** Makes sure the worker holds at least `layers` blocks (a deeper plan or call), in the loaded dtype. */
  private ensureLayers(layers: number): Promise<void> {
    const enough = () => layers <= (this.info.maxLayers ?? this.info.layers);
    if (!this.info || enough() || !this.host.remote) return Promise.resolve();
    return this.reload(() => (enough() ? null : { weights: this.weights ?? 'auto', maxLayers: undefined }));
  }

  /** Loads the weights in the dtype the budget's plan has when this reload's turn comes (a later setBudget may have changed it). */
  private reloadDtype(): Promise<void> {
    return this.reload(() => {
      let p: ClientPlan;
      try {
        p = this.planFor(this.budget);
      } catch {
        return null;
      }
      const d = storageOf(p.dtype);
      return d === storageOf(this.info.dtype) ? null : { weights: d, maxLayers: blocksFor(this.shape, d, this.budget, p.layers) };
    });
  }

  /** Reloads the model in the worker after the reloads before it (reloads.ts), with load progress; `want` is asked when its turn comes (null: nothing to do). A new dtype is calibrated and re-planned on. */
  private reload(want: () => { weights: WeightsOption; maxLayers: number | undefined } | null): Promise<void> {
    const run = async () => {
      const w = want();
      const remote = this.host.remote;
      if (!w || !remote) return;
      const gen = this.gen;
      const before = this.info.dtype;
      const next = await reloadEngine(remote, this.startupContext(gen), { info: this.info, shape: this.shape, adapter: this.adapter, own: this.own, pinned: this.pinned }, w, this.cost);
      if (!next || gen !== this.gen) return;
      Object.assign(this, { info: next.info, shape: next.shape, cost: next.cost, weights: w.weights, maxLayers: next.info.maxLayers < next.info.layers ? next.info.maxLayers : undefined });
      if (next.info.dtype === before) return;
      this.plan = planAfterReload({ ...next, quality: this.quality, budget: this.budget, adapter: this.adapter, own: this.own, pinned: this.pinned }, this.plan);
      this.stats.replans++;
      this.emit({ phase: 'replan', reason: `weights loaded as ${this.info.dtype}`, plan: this.plan });
    };
    return this.reloads.run(run);
  }

  /** The adapter's buffer limits, when the plan runs on WebGPU. */
  private limits(): { maxStorageBufferBindingSize?: number; maxBufferSize?: number } {
    return this.info ? limitsOf(this.info, this.adapter) : {};
  }

  /**
   * The worker of generation `gen` is dead (terminated, crashed, unresponsive) or its device is lost:
   * put its in-flight chunks back at the front of the queue, start a new worker, and go on.
   */
  private async recover(gen: number, reason: string): Promise<void> {
    if (gen !== this.gen || this.disposed) return;
    this.gen++; // results still arriving from the old worker are ignored from here on
    this.stats.restarts++;
    this.emit({ phase: 'recover', reason, restarts: this.stats.restarts });
    this.host.kill();
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
        this.host.kill();
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
    if (this.disposed || this.inflight || this.starting || this.reloads.busy || !this.host.remote) return;
    const batch = this.queue.next(this.options.maxBatchTexts ?? 32, this.info.maxLayers ?? this.info.layers);
    if (!batch.length) return;
    const gen = this.gen;
    const remote = this.host.remote;
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
    const o = observeBatch(this.cost, this.drift, layers, r, ms);
    this.cost = o.cost;
    this.drift = o.drift;
    if (o.ratio === null) return;
    try {
      // Latency drift prices every dtype alike: the plan stays in the loaded dtype.
      this.plan = { ...inLoaded(this.shape, this.quality, this.cost, this.budget, this.info.backend, this.limits()), dtypeReason: this.plan.dtypeReason, backendReason: this.info.backendReason };
      this.stats.replans++;
      this.emit({ phase: 'replan', reason: `measured latency ${o.ratio.toFixed(2)}× the model`, plan: this.plan });
    } catch {
      // The old plan stays when the adjusted model meets nothing; the next embed still runs.
    }
  }

  private async onBatchError(gen: number, batch: Chunk[], e: unknown): Promise<void> {
    const action = await batchErrorAction(e, batch.length, () => this.host.healthy());
    if (gen !== this.gen) return;
    if (action === 'recover') return this.recover(gen, `worker call failed: ${(e as Error)?.name ?? ''} ${(e as Error)?.message ?? String(e)}`);
    this.inflight = null;
    if (action === 'requeue') this.queue.requeue(batch);
    else if (action === 'isolate') this.queue.isolate(batch);
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
    this.host.kill();
    this.starting = null;
    const back = this.inflight?.chunks ?? [];
    this.inflight = null;
    if (changed) {
      this.queue.failAll(() => new EngineReplacedError('another model was loaded while this call waited', { expected: `the model the call started on (${this.options.model})`, received: model }));
      this.options.model = model;
      this.sidecar = null;
      this.maxLayers = undefined;
      this.weights = undefined;
      this.own = null;
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
    return (await this.host.remote?.debugMemory()) ?? null;
  }

  // ---------------------------------------------------------------------------------------------
  // Test hooks and teardown

  /** Test hook: terminates the worker without telling the client (the heartbeat finds out). */
  debugTerminateWorker(): void {
    this.host.terminateSilently();
  }

  /** Test hook: destroys the worker's GPU device (device.lost fires inside the worker). */
  async debugLoseDevice(): Promise<boolean> {
    return (await this.host.remote?.loseDeviceForTest()) ?? false;
  }

  /** Test hook: calibration embeds the current worker ran (0 after a cache hit). */
  async debugWorkerCalibrationRuns(): Promise<number> {
    return (await this.host.remote?.calibrationRuns) ?? -1;
  }

  get pending(): number {
    return this.queue.size;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.gen++;
    this.queue.failAll(() => new ClientDisposedError('the client was disposed', { expected: 'a live client', received: 'dispose() while pending' }));
    this.queue.clear();
    this.host.kill();
  }
}
