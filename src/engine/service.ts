/**
 * The embedding worker's API (workers/embed.worker.ts only wires it): transactional model loads, embed calls, and
 * what the main-thread client needs besides (heartbeat, model shape, calibration, memory). The data it takes and
 * returns is in service-types.ts; building the backends a load asks for is in service-load.ts.
 */
import { describeAdapter, requestAdapter } from '../gpu/adapter.ts';
import { createDevice, GpuRuntime } from '../gpu/runtime.ts';
import { trackBuffers, type BufferTally } from '../gpu/track.ts';
import { AbortError, EngineDestroyedError, EngineReplacedError, GpuUnavailableError, InvalidInputError, ModelNotLoadedError } from '../errors.ts';
import { authHeaders, loadModel, sourceOf, type LoadedModel, type LoadProgress, type QuantizeProgress } from '../model/load.ts';
import { parseConfig } from '../model/config.ts';
import { parseQuantizationConfig } from '../model/quant.ts';
import { openModelCache, type CacheLike } from '../model/file-cache.ts';
import { quantizeLoaded } from '../model/quant-cache.ts';
import { fetchModelFile } from '../model/source.ts';
import type { EmbedBackend } from './backend.ts';
import { Engine, type EngineEmbedding, type EngineRequest } from './engine.ts';
import { afterLoad, planCacheStep, type CacheOutcome } from './service-cache.ts';
import { buildBackends, describeModel, LOAD_BACKENDS, type ServedBackend } from './service-load.ts';
import type { Backend, EmbedResult, GpuProbe, LoadOptions, ModelInfo, ModelShapeInfo, SourceOptions } from './service-types.ts';

export type { Backend, EmbedResult, GpuProbe, LoadOptions, ModelInfo, ModelShapeInfo, SourceOptions } from './service-types.ts';

/** The loaded model as the service serves it: one backend, its description, and its generation. */
interface Serving {
  gen: number;
  backend: ServedBackend;
  /** Other backends built for the planner to calibrate (selectBackend keeps one). */
  alternatives: ServedBackend[];
  info: ModelInfo;
  model: LoadedModel;
}

/**
 * What the worker exposes. Kept free of comlink so Node tests drive it directly; the worker file
 * only wires it.
 *
 * Loads are transactional: the new backend is built completely, then swapped in; if anything fails
 * (bad file, abort, stall) everything it allocated is destroyed and the old model keeps serving.
 * Each embed call holds the backend it started on: it either finishes there (and reports that
 * backend's dtype) or rejects with EngineReplacedError / EngineDestroyedError, never mixing models.
 */
export class EmbedService {
  private serving: Serving | null = null;
  private runtime: GpuRuntime | null = null;
  private gen = 0;
  private loadAbort: AbortController | null = null;
  private gpuTally: BufferTally | null = null;
  /** The model-cache work after the last load (service-cache.ts), chained so that two never overlap. */
  private cacheJob: Promise<CacheOutcome | null> = Promise.resolve(null);

  /**
   * `gpu`: the WebGPU entry point (default navigator.gpu; Node passes the `webgpu` package's).
   * `referenceBackend`: what backend 'cpu-ref' builds; tests pass the CPU reference (src/reference/backend.ts),
   * which production code never imports.
   * `modelCache`: the model-file cache (default Cache Storage's, file-cache.ts; none in Node).
   */
  constructor(private readonly opts: { gpu?: GPU; referenceBackend?: (model: LoadedModel) => EmbedBackend; modelCache?: () => Promise<CacheLike | null> } = {}) {}

  async probeGpu(): Promise<GpuProbe> {
    const r = await requestAdapter(this.opts.gpu);
    return r.adapter ? { ok: true, adapter: describeAdapter(r.adapter) } : { ok: false, reason: r.reason };
  }

  private async gpu(): Promise<GpuRuntime> {
    if (this.runtime) return this.runtime;
    const r = await requestAdapter(this.opts.gpu);
    if (!r.adapter) throw new GpuUnavailableError('WebGPU is not available', { expected: 'a WebGPU adapter', received: r.reason });
    const device = await createDevice(r.adapter);
    this.gpuTally = trackBuffers(device);
    const rt = new GpuRuntime(device);
    this.runtime = rt;
    void rt.lost.then(() => {
      if (this.runtime === rt) this.runtime = null;
      // The GPU engine is gone with its device: calls on it reject (EngineDestroyedError), ping() says unloaded.
      if (this.serving?.backend instanceof Engine) {
        this.serving.backend.destroy();
        this.serving = null;
      }
    });
    return rt;
  }

  /** Whether this service gets a WebGPU runtime (made once; 'auto' decides by it). */
  private hasGpu(): Promise<boolean> {
    return this.gpu().then(
      () => true,
      () => false,
    );
  }

  /** Cancels the load in progress, if any (comlink cannot carry an AbortSignal into the worker). */
  cancelLoad(): boolean {
    if (!this.loadAbort) return false;
    this.loadAbort.abort(new AbortError('load() was cancelled', { expected: 'a load that runs to the end', received: 'cancelLoad()' }));
    return true;
  }

  /**
   * `onProgress` gets the downloads, then (weights 'int8' / 'q4') one 'quantize' report per weight as the
   * engine quantises it at load, unless `opts.onProgress` takes those: comlink carries one callback argument
   * into the worker, not a function inside the options object.
   */
  async load(model: string, opts: LoadOptions = {}, onProgress?: (p: LoadProgress | QuantizeProgress) => void): Promise<ModelInfo> {
    if (opts === null || typeof opts !== 'object') throw new InvalidInputError('load options must be an object', { expected: '{ backend?, weights?, ... }', received: opts });
    const { backend = 'auto', signal, stallTimeoutMs, keepWeights = false, threads, wasmPaths, hubEndpoint, revision, subfolder, token, checkFinite, onnx, ...engineOpts } = opts;
    const sourceOpts = { hubEndpoint, revision, subfolder, token, checkFinite };
    if (!LOAD_BACKENDS.includes(backend)) throw new InvalidInputError('unknown backend', { expected: LOAD_BACKENDS.map((b) => `"${b}"`).join(', '), received: backend });
    if (onnx !== undefined && (backend !== 'ort-wasm' || typeof onnx !== 'string' || !onnx)) {
      throw new InvalidInputError('option "onnx" names the exported graph for backend "ort-wasm"', { expected: 'backend "ort-wasm" and a non-empty path or URL', received: `backend ${JSON.stringify(backend)}, onnx ${JSON.stringify(onnx)}` });
    }
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidInputError('onProgress must be a function', { expected: 'a function or undefined', received: onProgress });
    if (signal?.aborted) throw abortError(signal);
    this.loadAbort?.abort(new AbortError('load() was superseded by a newer load()', { expected: 'one load at a time', received: 'a second load()' }));
    const ctl = new AbortController();
    this.loadAbort = ctl;
    const onAbort = () => ctl.abort(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    const built: ServedBackend[] = [];
    try {
      // The exported graph holds the encoder's weights: fetch none of ours, only the heads BGE-M3 ships beside them.
      const graph = backend === 'ort-wasm' ? { heads: true, encoderWeights: false } : {};
      // The model cache keeps one weights copy per model (QUANT.md, "The model cache"): weights int8 / q4 read a
      // copy quantised by an earlier load when there is one (after the last load's cache work has finished).
      await this.cacheJob;
      const step = await planCacheStep(await (this.opts.modelCache ?? openModelCache)(), sourceOf(model, sourceOpts), { backend, weights: engineOpts.weights, keepWeights, headers: authHeaders(token) });
      // (The copy is a resolved source already: the hub options must not resolve it again.)
      const hub = step?.copy ? { hubEndpoint: undefined, revision: undefined, subfolder: undefined } : {};
      const loaded = await loadModel(step?.copy ?? model, { ...sourceOpts, ...hub, ...graph, onProgress, signal: ctl.signal, stallTimeoutMs });
      // Else, with a cache and WebGPU, the weights are quantised here rather than in the upload, so the copy stored
      // after the load holds the very matrices the engine runs (the upload takes them as a pre-quantised folder's).
      const quantisedHere = !!step?.dtype && !loaded.quantization && (backend === 'webgpu' || (await this.hasGpu()));
      if (quantisedHere) await quantizeLoaded(loaded, step!.dtype!, { onProgress: engineOpts.onProgress ?? onProgress, signal: ctl.signal });
      const buildOpts = quantisedHere ? { ...engineOpts, onProgress: () => undefined } : engineOpts; // progress was reported above
      const why = await buildBackends(loaded, { backend, engineOpts: buildOpts, threads, wasmPaths, onnx, token, signal: ctl.signal, onProgress, gpu: () => this.gpu(), referenceBackend: this.opts.referenceBackend }, built);
      if (ctl.signal.aborted) throw ctl.signal.reason;
      // Described before the JS copies go: hasBgeM3Heads reads loaded.heads.
      const info = describeModel(
        loaded,
        built[0],
        built.map((b) => b.kind),
        why,
      );
      // Taken before the JS copies go; runs once the new model serves.
      const cacheWork = step && afterLoad(step, loaded, built, quantisedHere);
      // Every backend built holds its own copy now (GPU buffers, wasm sessions): drop the JS copies,
      // except for the CPU reference, which computes from them.
      if (!keepWeights && !built.some((b) => b.kind === 'cpu-ref')) {
        loaded.weights.clear();
        loaded.heads.clear();
        loaded.quantized?.clear();
      }
      const old = this.serving;
      this.serving = { gen: ++this.gen, backend: built[0], alternatives: built.slice(1), info, model: loaded };
      built.length = 0;
      old?.backend.destroy();
      for (const b of old?.alternatives ?? []) b.destroy();
      if (cacheWork) this.cacheJob = this.cacheJob.then(cacheWork);
      return info;
    } finally {
      for (const b of built) b.destroy();
      signal?.removeEventListener('abort', onAbort);
      if (this.loadAbort === ctl) this.loadAbort = null;
    }
  }

  /** Resolves when the model-cache work of the last load is done: what it stored or dropped, or why it failed (null: none). */
  cacheSettled(): Promise<CacheOutcome | null> {
    return this.cacheJob;
  }

  /**
   * Keeps one of the backends load() built (on a software WebGPU adapter it builds both WebGPU and the
   * CPU backend so the client can calibrate each) and releases the others. Returns the new ModelInfo.
   */
  selectBackend(kind: Backend, reason: string): ModelInfo {
    const cur = this.serving;
    if (!cur) throw new ModelNotLoadedError('no model loaded', { expected: 'load(model) before selectBackend()', received: 'selectBackend() first' });
    const all = [cur.backend, ...cur.alternatives];
    const pick = all.find((b) => b.kind === kind);
    if (!pick) throw new InvalidInputError('that backend was not built for this model', { expected: all.map((b) => b.kind).join(' or '), received: kind });
    for (const b of all) if (b !== pick) b.destroy();
    // The JS head weights are gone by now (load() dropped them): keep what load() saw.
    const info = { ...describeModel(cur.model, pick, [kind], reason), hasBgeM3Heads: cur.info.hasBgeM3Heads };
    this.serving = { ...cur, gen: ++this.gen, backend: pick, alternatives: [], info };
    return info;
  }

  async embed(texts: string[], opts: EngineRequest = {}): Promise<EmbedResult> {
    const t0 = performance.now();
    const cur = this.serving;
    if (!cur) throw new ModelNotLoadedError('no model loaded', { expected: 'load(model) before embed()', received: 'embed() first' });
    let r: EngineEmbedding;
    try {
      r = await cur.backend.embed(texts, opts);
    } catch (e) {
      if (e instanceof EngineDestroyedError && this.serving !== cur && this.serving !== null) {
        throw new EngineReplacedError('another model was loaded while this call ran', { expected: 'the model the call started on', received: this.serving.info.source, cause: e });
      }
      throw e;
    }
    return { ...r, backend: cur.info.backend, dtype: cur.info.dtype, ms: performance.now() - t0 };
  }
  // ---- Support for the main-thread M3Client (src/client): heartbeat, model shape, calibration, test hook.

  /** Calibration embeds run by this instance (tests assert that a cached calibration runs none). */
  calibrationRuns = 0;

  /** Heartbeat: answers while the worker's event loop is alive; `loaded` turns false after a device loss. */
  ping(): { loaded: boolean; backend: Backend | null } {
    return { loaded: this.serving !== null, backend: this.serving?.info.backend ?? null };
  }

  /** The config sizes the client's memory model needs (ModelInfo leaves them out). */
  modelStats(): { vocab: number; intermediate: number; typeVocab: number; maxPositions: number; colbertWidth: number | null } | null {
    const s = this.serving;
    if (!s) return null;
    const c = s.model.config;
    const colbertWidth = s.backend instanceof Engine ? s.backend.encoder.colbertWidth : s.info.hasBgeM3Heads ? c.hidden_size : null;
    return { vocab: c.vocab_size, intermediate: c.intermediate_size, typeVocab: c.type_vocab_size, maxPositions: c.max_position_embeddings, colbertWidth };
  }

  /** The model's m3web.json (measured quality per exit and prefix), or null when it has none. */
  async readSidecar(model: string, source: SourceOptions = {}): Promise<unknown> {
    return fetchModelFile(sourceOf(model, source), 'm3web.json', { kind: 'json', optional: true, headers: authHeaders(source.token) });
  }

  /**
   * The model's sizes from its config.json alone (no weights fetched): the client plans how many blocks
   * a memory budget allows before it loads, so a small device never uploads blocks it cannot afford.
   */
  async inspect(model: string, source: SourceOptions = {}): Promise<ModelShapeInfo> {
    const json = await fetchModelFile(sourceOf(model, source), 'config.json', { kind: 'json', headers: authHeaders(source.token) });
    const c = parseConfig(json);
    return {
      family: c.family,
      layers: c.num_hidden_layers,
      hidden: c.hidden_size,
      heads: c.num_attention_heads,
      intermediate: c.intermediate_size,
      vocab: c.vocab_size,
      maxPositions: c.max_position_embeddings,
      typeVocab: c.type_vocab_size,
      maxTokens: c.max_tokens,
      mrlLayers: c.mrl_layers,
      mrlDims: c.mrl_dims,
      quantizedBits: parseQuantizationConfig((json as { quantization_config?: unknown } | null)?.quantization_config)?.bits ?? null,
    };
  }

  /**
   * Times one single-text embed per run on the loaded model: exact token counts, wall-clock ms, and
   * GPU ms from timestamp-query (runtime profiling mode) when the device has it.
   */
  async calibrate(runs: { text: string; layers: number }[], kind?: Backend): Promise<{ tokens: number; chars: number; layers: number; ms: number; gpuMs: number | null }[]> {
    const cur = this.serving;
    if (!cur) throw new ModelNotLoadedError('no model loaded', { expected: 'load(model) before calibrate()', received: 'calibrate() first' });
    const model = cur.model;
    const target = kind === undefined ? cur.backend : [cur.backend, ...cur.alternatives].find((b) => b.kind === kind);
    if (!target) throw new InvalidInputError('that backend was not built for this model', { expected: [cur.backend, ...cur.alternatives].map((b) => b.kind).join(' or '), received: kind });
    const rt = target instanceof Engine && target.kind === 'webgpu' ? this.runtime : null;
    const timed = !!rt && rt.device.features.has('timestamp-query');
    const out = [];
    for (const run of runs) {
      const tokens = model.tokenizer.encode([run.text], model.config.max_tokens).ids[0].length;
      const t0 = performance.now();
      await target.embed([run.text], { layers: run.layers });
      const ms = performance.now() - t0;
      this.calibrationRuns++;
      let gpuMs: number | null = null;
      if (timed) {
        // A second, profiled run (one timed pass per dispatch) so the wall-clock figure stays unprofiled.
        await rt!.takeProfile();
        rt!.profiling = true;
        try {
          await target.embed([run.text], { layers: run.layers });
        } finally {
          rt!.profiling = false;
        }
        gpuMs = [...(await rt!.takeProfile()).values()].reduce((s, ns) => s + ns, 0) / 1e6;
        this.calibrationRuns++;
      }
      out.push({ tokens, chars: run.text.length, layers: run.layers, ms, gpuMs });
    }
    return out;
  }

  /** Live GPU buffers and bytes on this worker's device, and the JS heap where the browser reports it (Chrome's performance.memory). */
  debugMemory(): { gpuBytes: number; gpuBuffers: number; jsHeapBytes: number | null } {
    const heap = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? null;
    return { gpuBytes: this.gpuTally?.bytes ?? 0, gpuBuffers: this.gpuTally?.buffers ?? 0, jsHeapBytes: heap };
  }

  /** Test hook: destroys the GPU device as a driver reset would (device.lost fires). */
  loseDeviceForTest(): boolean {
    if (!this.runtime) return false;
    this.runtime.device.destroy();
    return true;
  }
}

function abortError(signal: AbortSignal): AbortError {
  const r = signal.reason;
  return r instanceof AbortError ? r : new AbortError('load() was aborted', { expected: 'a load that is not aborted', received: r instanceof Error ? r.message : String(r ?? 'AbortSignal fired'), cause: r });
}

export { resultTransferables } from './transfer.ts';
