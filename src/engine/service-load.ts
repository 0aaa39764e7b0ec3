/**
 * What EmbedService.load builds once the model's files are in (src/engine/service.ts keeps the transaction around
 * it: abort, swap, cleanup): the backends a `backend` option asks for, the exported ONNX graph for 'ort-wasm', and
 * the ModelInfo that describes what serves.
 */
import type { GpuRuntime } from '../gpu/runtime.ts';
import { GpuUnavailableError, InvalidInputError } from '../errors.ts';
import { authHeaders, type LoadedModel, type LoadProgress, type QuantizeProgress } from '../model/load.ts';
import { fetchModelFile, resolveModelSource } from '../model/source.ts';
import type { EmbedBackend } from './backend.ts';
import { createCpuEngine, createOrtGraphEngine, HostEncoder } from '../cpu/index.ts';
import { GpuEncoder } from './gpu-encoder.ts';
import { Engine, type EngineOptions } from './engine.ts';
import type { Backend, LoadOptions, ModelInfo } from './service-types.ts';

/** A backend as the service serves it: the Engine over an encoder, or a backend of its own (the CPU reference). */
export type ServedBackend = Engine | EmbedBackend;

/** The backends load() accepts. */
export const LOAD_BACKENDS: readonly string[] = ['auto', 'webgpu', 'cpu', 'cpu-ref', 'ort-wasm'];
const DEFAULT_ONNX = 'onnx/model.onnx';

export interface BuildOptions extends Pick<LoadOptions, 'threads' | 'wasmPaths' | 'onnx' | 'token'> {
  backend: NonNullable<LoadOptions['backend']>;
  /** What load() passes on to Engine.create. */
  engineOpts: EngineOptions;
  signal: AbortSignal;
  onProgress?: (p: LoadProgress | QuantizeProgress) => void;
  /** The service's WebGPU runtime, created on first use. */
  gpu: () => Promise<GpuRuntime>;
  /** What backend 'cpu-ref' builds (EmbedService's constructor option). */
  referenceBackend?: (model: LoadedModel) => EmbedBackend;
}

/**
 * Builds the backends `o.backend` asks for on `loaded`, the one to serve first, each pushed onto `built` as soon as
 * it exists (the caller destroys them all when a later step fails). Returns why the first one serves.
 */
export async function buildBackends(loaded: LoadedModel, o: BuildOptions, built: ServedBackend[]): Promise<string> {
  const { backend, engineOpts, threads, wasmPaths, onnx, token, onProgress } = o;
  let why = '';
  if (backend === 'ort-wasm') {
    const bytes = await fetchOnnx(loaded, onnx ?? DEFAULT_ONNX, { signal: o.signal, headers: authHeaders(token), onProgress });
    built.push(await createOrtGraphEngine(loaded, bytes, { threads, wasmPaths, ...(engineOpts.maxBatchTokens ? { maxBatchTokens: engineOpts.maxBatchTokens } : {}) }));
    why = 'asked for the exported ONNX graph on onnxruntime-web (wasm; full depth only)';
  }
  if (backend === 'webgpu' || backend === 'auto') {
    try {
      const gpu = await Engine.create(await o.gpu(), loaded, { ...engineOpts, onProgress: engineOpts.onProgress ?? onProgress });
      built.push(gpu);
      why = gpu.encoder.rt.fallbackAdapter ? 'the WebGPU adapter is a CPU fallback (software Vulkan): the CPU backend was built too, for the planner to compare' : 'a hardware WebGPU adapter';
    } catch (e) {
      if (backend === 'webgpu' || !(e instanceof GpuUnavailableError)) throw e;
      why = `no WebGPU: ${e.message}`;
    }
  }
  // The CPU backend: asked for, or no WebGPU, or WebGPU on a software adapter (where the CPU backend may be faster).
  const gpuBuilt = built[0] instanceof Engine && built[0].encoder instanceof GpuEncoder ? built[0].encoder : null;
  if (backend === 'cpu' || (backend === 'auto' && (!gpuBuilt || gpuBuilt.rt.fallbackAdapter))) {
    built.push(await createCpuEngine(loaded, { maxLayers: engineOpts.maxLayers, threads, wasmPaths }));
    if (backend === 'cpu') why = 'asked for the CPU backend';
  }
  if (backend === 'cpu-ref') {
    if (!o.referenceBackend) throw new InvalidInputError('backend "cpu-ref" is the test oracle and is not built into this service', { expected: 'new EmbedService({ referenceBackend }) (tests), or backend "cpu"', received: 'cpu-ref' });
    built.push(o.referenceBackend(loaded));
    why = 'asked for the CPU reference (the oracle; slow)';
  }
  return why;
}

/** The exported graph's bytes: a path inside the model folder (same source, hub options and cache), or an absolute URL. */
async function fetchOnnx(loaded: LoadedModel, onnx: string, opts: { signal: AbortSignal; headers?: Record<string, string>; onProgress?: (p: LoadProgress) => void }): Promise<Uint8Array> {
  const absolute = /^[a-z][a-z0-9+.-]*:/i.test(onnx) || onnx.startsWith('/');
  const cut = onnx.lastIndexOf('/') + 1;
  const [source, file] = absolute ? [resolveModelSource(onnx.slice(0, cut)), onnx.slice(cut)] : [loaded.source, onnx];
  const onProgress = (loadedBytes: number, total: number | null) => opts.onProgress?.({ phase: 'download', file: onnx, loaded: loadedBytes, total });
  return fetchModelFile(source, file, { kind: 'binary', signal: opts.signal, headers: absolute ? undefined : opts.headers, onProgress });
}

export function describeModel(loaded: LoadedModel, backend: ServedBackend, built: Backend[], why: string): ModelInfo {
  const c = loaded.config;
  return {
    source: loaded.source.describe(),
    family: c.family,
    layers: c.num_hidden_layers,
    hidden: c.hidden_size,
    heads: c.num_attention_heads,
    maxTokens: c.max_tokens,
    pooling: loaded.pooling.pooling,
    normalize: loaded.pooling.normalize,
    mrlLayers: c.mrl_layers,
    mrlDims: c.mrl_dims,
    hasBgeM3Heads: loaded.heads.size > 0,
    backend: backend.kind,
    dtype: backend.dtype,
    maxLayers: backend.maxLayers,
    backends: built,
    backendReason: why,
    prompts: loaded.modules?.prompts ?? {},
    defaultPrompt: loaded.modules?.defaultPromptName ?? null,
    threads: backend instanceof Engine && backend.encoder instanceof HostEncoder ? backend.encoder.threads : undefined,
  };
}
