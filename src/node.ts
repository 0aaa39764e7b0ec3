/**
 * m3web's Node entry (`import { openEngine } from 'm3web/node'`): the browser worker's engine on Dawn's WebGPU (npm
 * `webgpu`, an optional peer dependency), for bulk indexing and servers.
 *
 *   const m3 = await openEngine('./models/bge-m3');            // a local folder, a base URL, or a hub id ('BAAI/bge-m3')
 *   const r = await m3.embed(texts, { layers: 8, dims: 256, outputs: ['dense', 'sparse', 'colbert'] });
 *   m3.dispose();
 *
 * Local folders: a string that names an existing directory (or starts with '/', './', '../', 'file:') is read from
 * disk. An existing folder wins over a hub id of the same spelling, as in transformers' from_pretrained. The
 * loader itself only fetches, so a folder becomes a `file:` ModelSource plus a fetch that reads such URLs from disk
 * (Node's fetch has no file: scheme); everything else (streamed safetensors, HTML checks, progress) is unchanged.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createCpuEngine, type CpuEncoder } from './cpu/index.ts';
import { Engine, type EngineOptions } from './engine/engine.ts';
import type { GpuEncoder } from './engine/gpu-encoder.ts';
import { InvalidInputError } from './errors.ts';
import { createNodeGpu } from './gpu/node-gpu.ts';
import { GpuRuntime } from './gpu/runtime.ts';
import { loadModel as loadFromSource, type LoadedModel, type LoadOptions } from './model/load.ts';
import type { ModelSource, ModelSourceSpec } from './model/source.ts';

export { Engine } from './engine/engine.ts';
export type { ColbertBlock, EngineEmbedding, EngineOptions, EngineRequest } from './engine/engine.ts';
export { createNodeGpu, type NodeGpu } from './gpu/node-gpu.ts';
export { GpuRuntime } from './gpu/runtime.ts';
export type { LoadedModel, LoadOptions, LoadProgress } from './model/load.ts';
export type { ModelSourceSpec } from './model/source.ts';
export * from './errors.ts';
export { batchDenseScores, colbertScore, computeScore, denseScore, lexicalMatchingScore } from './search/score.ts';
export type { ColbertVectors, M3Representation, M3Scores, ModeWeights, SparseVector } from './search/score.ts';
// The in-page index works in Node too, persisted in a directory.
export { SemanticIndex } from './search/semantic-index.ts';
export { openDirStore } from './search/fs-store.ts';
export type { Doc, Embedder, IndexOptions, SearchHit, SearchOptions } from './search/types.ts';

/** The local folder a model spec names, or null when it is a URL, a hub id or an object spec. */
export function localFolder(spec: unknown): string | null {
  if (typeof spec !== 'string' || spec === '') return null;
  if (spec.startsWith('file:')) return fileURLToPath(spec);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) return null; // http(s)://, …
  if (spec.startsWith('/') || spec.startsWith('./') || spec.startsWith('../') || existsSync(spec)) return resolve(spec);
  return null;
}

/** A ModelSource over a folder on disk: `file:` URLs that `folderFetch` reads. */
export function folderSource(dir: string): ModelSource {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new InvalidInputError('model folder does not exist', { expected: 'a directory with config.json', received: abs });
  const baseUrl = pathToFileURL(abs).href.replace(/\/?$/, '/');
  return {
    kind: 'url',
    baseUrl,
    id: baseUrl,
    describe: () => `model folder ${abs}`,
    url: (file) => {
      if (typeof file !== 'string' || file === '' || file.startsWith('/') || file.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new InvalidInputError('model file name must be a relative path inside the model folder', { received: file });
      return baseUrl + file.split('/').map(encodeURIComponent).join('/');
    },
  };
}

const TYPES: Record<string, string> = { json: 'application/json', txt: 'text/plain', md: 'text/markdown' };

/** fetch, plus `file:` URLs answered from disk the way a static server would (404 for a missing file, Content-Length). */
export function folderFetch(next: typeof fetch = (input, init) => globalThis.fetch(input, init)): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith('file:')) return next(input, init);
    init?.signal?.throwIfAborted();
    const path = fileURLToPath(url);
    if (!existsSync(path) || !statSync(path).isFile()) return new Response('not found', { status: 404, headers: { 'content-type': 'text/plain' } });
    const body = Readable.toWeb(createReadStream(path, init?.signal ? { signal: init.signal } : {})) as ReadableStream<Uint8Array>;
    const ext = path.slice(path.lastIndexOf('.') + 1);
    return new Response(body, { headers: { 'content-type': TYPES[ext] ?? 'application/octet-stream', 'content-length': String(statSync(path).size) } });
  }) as typeof fetch;
}

/** Loads a model from a local folder, a base URL or a hub id. */
export function loadModel(spec: ModelSourceSpec, opts: LoadOptions = {}): Promise<LoadedModel> {
  const dir = localFolder(spec);
  if (dir === null) return loadFromSource(spec, opts);
  return loadFromSource(folderSource(dir), { ...opts, fetchImpl: folderFetch(opts.fetchImpl) });
}

export interface OpenEngineOptions extends EngineOptions {
  /** Passed to loadModel (progress, abort signal, fetch). */
  load?: LoadOptions;
  /** 'auto' (default): WebGPU when a Node adapter is found, else the CPU backend (src/cpu). */
  backend?: 'auto' | 'webgpu' | 'cpu';
}

export interface NodeEngine {
  readonly engine: Engine<GpuEncoder> | Engine<CpuEncoder>;
  readonly model: LoadedModel;
  readonly backend: 'webgpu' | 'cpu';
  /** The Vulkan ICD the WebGPU device runs on (see createNodeGpu); null on the CPU backend. */
  readonly icd: string | null;
  embed: Engine['embed'];
  /** Destroys the engine and its GPU device. */
  dispose(): void;
}

/** Loads a model (folder, URL or hub id, or an already loaded model) and opens the WebGPU engine on it in Node. */
export async function openEngine(model: ModelSourceSpec | LoadedModel, opts: OpenEngineOptions = {}): Promise<NodeEngine> {
  const { load, backend = 'auto', ...engineOpts } = opts;
  const loaded = isLoaded(model) ? model : await loadModel(model, load);
  let gpu: Awaited<ReturnType<typeof createNodeGpu>> | null = null;
  if (backend !== 'cpu') {
    try {
      gpu = await createNodeGpu();
    } catch (e) {
      if (backend === 'webgpu') throw e;
    }
  }
  if (!gpu) {
    // No Node WebGPU adapter (or asked for): the same Engine API on the CPU backend, early exit included.
    const engine = await createCpuEngine(loaded, { maxLayers: engineOpts.maxLayers, ...(engineOpts.maxBatchTokens ? { maxBatchTokens: engineOpts.maxBatchTokens } : {}) });
    return { engine, model: loaded, backend: 'cpu', icd: null, embed: (texts, o) => engine.embed(texts, o), dispose: () => engine.destroy() };
  }
  const { device, icd } = gpu;
  try {
    const engine = await Engine.create(new GpuRuntime(device), loaded, engineOpts);
    return {
      engine,
      model: loaded,
      backend: 'webgpu',
      icd,
      embed: (texts, o) => engine.embed(texts, o),
      dispose: () => {
        engine.destroy();
        device.destroy();
      },
    };
  } catch (e) {
    device.destroy();
    throw e;
  }
}

function isLoaded(m: unknown): m is LoadedModel {
  return typeof m === 'object' && m !== null && 'config' in m && 'tokenizer' in m && 'weights' in m;
}
