/**
 * The model cache holds the quantised weights, never both (issue #18): a model quantised at load in a context with
 * Cache Storage (weights 'int8' / 'q4' on an f32 / f16 folder) is stored as a pre-quantised folder in the QUANT.md
 * layout under `<model folder>/.m3web-cache/<dtype>/`, and only once that copy is committed are the source's weight
 * files deleted from the cache; a later load in that dtype reads the copy (no download, no second quantisation).
 * Layout, commit rule and which copy wins: src/model/QUANT.md, "The model cache". The engine side (when to quantise,
 * when to write) is src/engine/service-cache.ts.
 *
 * Atomicity: Cache Storage commits one entry at a time, so the copy is committed by its manifest
 * (`m3web-cache.json`, listing every file and its bytes), written last and checked by reading every file back.
 * A copy without a whole manifest is never read, and is removed before the next write. Every file goes through
 * file-cache.ts' storeValidated (Content-Length, the safetensors header's own size, JSON that parses), so a quota
 * error or a closed tab mid-write leaves at most files no manifest names; the source is deleted only after.
 */
import { InvalidInputError } from '../errors.ts';
import { ModelCacheError, QUANT_CACHE_DIR, storeValidated, whenStored, type CacheLike } from './file-cache.ts';
import type { LoadedModel, QuantizeProgress } from './load.ts';
import { isQuantizedWeight, quantizationConfig, quantizeWeight, quantTensors, type QuantBits, type QuantizedMatrix } from './quant.ts';
import { safetensorsFile, type WritableTensor } from './safetensors-write.ts';
import type { ModelSource } from './source.ts';
import type { RawTensor } from './tensor.ts';

export type QuantDtype = 'int8' | 'q4';
export const QUANT_DTYPES: readonly QuantDtype[] = ['int8', 'q4'];
/** The copy's commit marker, written last. */
export const QUANT_CACHE_MANIFEST = 'm3web-cache.json';
/** Shards of at most this many bytes (one tensor larger than this is a shard of its own): 1 GiB, well inside what a browser's Cache Storage entry holds. */
export const QUANT_CACHE_SHARD_BYTES = 2 ** 30;

const bitsOf = (d: QuantDtype): QuantBits => (d === 'int8' ? 8 : 4);
const ABSENT = 'x-m3web-absent'; // file-cache.ts' remembered-404 marker

/** The manifest: what makes a copy committed. */
export interface QuantCacheManifest {
  m3web_quant_cache: 1;
  /** ModelSource.id of the folder it was made from. */
  source: string;
  dtype: QuantDtype;
  /** Every file of the copy and its bytes (the manifest itself excluded). */
  files: Record<string, number>;
  /** Weight files the copy answers 404 for (a sharded copy: `model.safetensors`, so the loader reads the index). */
  absent: string[];
  created: string;
}

export interface QuantCopyReport {
  dtype: QuantDtype;
  /** The copy's folder URL. */
  base: string;
  files: Record<string, number>;
  bytes: number;
  /** Cache entries deleted once the copy was committed: the source's weight files and other dtypes' copies. */
  deleted: string[];
}

/** The model folder's URL (ends with '/'). */
export function modelFolderUrl(source: ModelSource): string {
  return source.url('config.json').slice(0, -'config.json'.length);
}

/** Where `source`'s `dtype` copy lives in the cache: `<model folder>/.m3web-cache/<dtype>/`. */
export function quantCacheBase(source: ModelSource, dtype: QuantDtype): string {
  return `${modelFolderUrl(source)}${QUANT_CACHE_DIR}/${dtype}/`;
}

const fileUrl = (base: string, file: string) => base + file.split('/').map(encodeURIComponent).join('/');

function isManifest(m: unknown, source: ModelSource, dtype: QuantDtype): m is QuantCacheManifest {
  const o = m as Partial<QuantCacheManifest> | null;
  return (
    !!o &&
    o.m3web_quant_cache === 1 &&
    o.source === source.id &&
    o.dtype === dtype &&
    !!o.files &&
    typeof o.files === 'object' &&
    Object.values(o.files).every((b) => Number.isSafeInteger(b) && b >= 0) &&
    typeof o.files['config.json'] === 'number' &&
    Array.isArray(o.absent)
  );
}

/**
 * The committed `dtype` copy of `source`, as a ModelSource that reads config.json and the weights from the copy and
 * every other file (tokenizer, modules, m3web.json) from the source's own cached files; null when there is none, or
 * when any file its manifest names is missing or of another size (then the source is loaded as usual).
 */
export async function findQuantCopy(cache: CacheLike, source: ModelSource, dtype: QuantDtype): Promise<ModelSource | null> {
  const base = quantCacheBase(source, dtype);
  const res = await cache.match(base + QUANT_CACHE_MANIFEST);
  if (!res || res.status !== 200 || res.headers.has(ABSENT)) return null;
  let m: unknown;
  try {
    m = await res.json();
  } catch {
    return null;
  }
  if (!isManifest(m, source, dtype)) return null;
  for (const [file, bytes] of Object.entries(m.files)) {
    const hit = await cache.match(fileUrl(base, file));
    await hit?.body?.cancel().catch(() => undefined);
    if (!hit || hit.status !== 200 || Number(hit.headers.get('content-length')) !== bytes) return null;
  }
  for (const file of m.absent) {
    const hit = await cache.match(fileUrl(base, file));
    if (!hit?.headers.has(ABSENT)) return null;
  }
  const local = new Set([...Object.keys(m.files), ...m.absent]);
  // Same id and description as the source: it is the same model (M3Client keys its calibration by ModelInfo.source).
  return { ...source, url: (file: string) => (local.has(file) ? fileUrl(base, file) : source.url(file)) } as ModelSource;
}

/**
 * Quantises `model`'s matmul weights and word table (isQuantizedWeight: encoder weights and colbert_linear) to
 * `dtype` in place: `model.quantized` / `.quantization` as a pre-quantised folder would have them, each float
 * tensor dropped from `weights` / `heads` once its codes exist. One QuantizeProgress per weight; yields to the
 * event loop between weights (progress messages go out, an abort is seen). A weight's own bits are weightBits(name,
 * storage bits), the rule the GPU uploader applies when it quantises itself (src/engine/gpu-encoder-upload.ts).
 */
export async function quantizeLoaded(model: LoadedModel, dtype: QuantDtype, opts: { onProgress?: (p: QuantizeProgress) => void; signal?: AbortSignal } = {}): Promise<void> {
  if (model.quantization) throw new InvalidInputError('quantizeLoaded: the model is already quantised', { expected: 'an f32 / f16 / bf16 model', received: `${model.quantization.bits} bits` });
  const bits = bitsOf(dtype);
  const todo: [string, RawTensor, Map<string, RawTensor>][] = [];
  for (const from of [model.weights, model.heads]) for (const [name, t] of from) if (isQuantizedWeight(name) && t.shape.length === 2) todo.push([name, t, from]);
  const out = new Map<string, QuantizedMatrix>();
  let done = 0;
  for (const [name, t, from] of todo) {
    opts.signal?.throwIfAborted();
    out.set(name, quantizeWeight(name, t, bits));
    from.delete(name);
    opts.onProgress?.({ phase: 'quantize', name, done: ++done, total: todo.length, prequantized: false });
    await new Promise((r) => setTimeout(r, 0));
  }
  opts.signal?.throwIfAborted();
  model.quantized = out;
  model.quantization = quantizationConfig(bits);
}

/** The tensors (canonical names) and `__metadata__` a quantised model's copy stores: floats as they are, matrices by quantTensors. */
export function quantCopyTensors(model: Pick<LoadedModel, 'weights' | 'heads' | 'quantized'>): { tensors: [string, WritableTensor][]; metadata: Record<string, string> } {
  const tensors: [string, WritableTensor][] = [...model.weights, ...model.heads];
  const metadata: Record<string, string> = { format: 'pt' };
  for (const [name, q] of model.quantized ?? []) {
    const f = quantTensors(name.slice(0, -'.weight'.length), q);
    tensors.push(...f.tensors);
    Object.assign(metadata, f.metadata);
  }
  return { tensors, metadata };
}

/** Removes every cache entry under `base`; resolves to the URLs removed. */
export async function removeUnder(cache: CacheLike, base: string): Promise<string[]> {
  const gone: string[] = [];
  for (const req of await cache.keys()) if (req.url.startsWith(base) && (await cache.delete(req.url))) gone.push(req.url);
  return gone;
}

/** Removes `source`'s quantised copies (every dtype but `keep`); resolves to the URLs removed. */
export async function dropQuantCopies(cache: CacheLike, source: ModelSource, keep?: QuantDtype): Promise<string[]> {
  const gone: string[] = [];
  for (const d of QUANT_DTYPES) if (d !== keep) gone.push(...(await removeUnder(cache, quantCacheBase(source, d))));
  return gone;
}

const isStored = async (cache: CacheLike, url: string): Promise<boolean> => {
  const hit = await cache.match(url);
  await hit?.body?.cancel().catch(() => undefined);
  return !!hit && hit.status === 200 && !hit.headers.has(ABSENT);
};

/** The source's weight files as the loader read them, plus bge-m3's .pt heads: the files a committed copy replaces. */
export function sourceWeightUrls(source: ModelSource, weightFiles: readonly string[]): string[] {
  return [...new Set([...weightFiles, 'colbert_linear.pt', 'sparse_linear.pt'])].map((f) => source.url(f));
}

export interface WriteOptions {
  /** The source's weight files to delete once the copy is committed (sourceWeightUrls). */
  sourceWeights: readonly string[];
  maxShardBytes?: number;
  signal?: AbortSignal;
  /** Waits for this context's stores of those files to settle (default file-cache.ts whenStored). */
  settle?: (urls: readonly string[]) => Promise<void>;
}

/** Greedy shards of at most `max` bytes, in order. */
function shardsOf(tensors: [string, WritableTensor][], max: number): [string, WritableTensor][][] {
  const out: [string, WritableTensor][][] = [[]];
  let size = 0;
  for (const t of tensors) {
    const n = t[1].data.byteLength;
    if (size > 0 && size + n > max) {
      out.push([]);
      size = 0;
    }
    out[out.length - 1].push(t);
    size += n;
  }
  return out;
}

async function put(cache: CacheLike, url: string, body: ReadableStream<Uint8Array>, bytes: number, type: string): Promise<void> {
  await storeValidated(cache, url, body, new Headers({ 'content-type': type, 'content-length': String(bytes) }));
}

async function putJson(cache: CacheLike, url: string, value: unknown): Promise<number> {
  const bytes = new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n');
  await put(cache, url, new Response(bytes).body!, bytes.byteLength, 'application/json');
  return bytes.byteLength;
}

/**
 * Writes `model` (quantised: quantizeLoaded, or a snapshot of its tensors: quantCopyTensors) as `source`'s `dtype`
 * copy, `config` being the source's config.json; then, only once the copy is committed and reads back whole,
 * deletes the source's weight files and any other dtype's copy. On any failure (QuotaError, AbortError, a
 * ModelCacheError) the files written so far are removed and the source is left as it was.
 */
export async function writeQuantCopy(cache: CacheLike, source: ModelSource, dtype: QuantDtype, copy: { tensors: [string, WritableTensor][]; metadata: Record<string, string> }, config: Record<string, unknown>, opts: WriteOptions): Promise<QuantCopyReport> {
  const base = quantCacheBase(source, dtype);
  await removeUnder(cache, base); // what a failed or interrupted write left
  const files: Record<string, number> = {};
  const absent: string[] = [];
  try {
    const shards = shardsOf(copy.tensors, opts.maxShardBytes ?? QUANT_CACHE_SHARD_BYTES);
    const pad = (i: number) => String(i).padStart(5, '0');
    const names = shards.length === 1 ? ['model.safetensors'] : shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);
    const weightMap: Record<string, string> = {};
    for (let i = 0; i < shards.length; i++) {
      opts.signal?.throwIfAborted();
      const f = safetensorsFile(shards[i], copy.metadata);
      await put(cache, fileUrl(base, names[i]), f.stream(), f.size, 'application/octet-stream');
      files[names[i]] = f.size;
      for (const [name] of shards[i]) weightMap[name] = names[i];
    }
    opts.signal?.throwIfAborted();
    if (shards.length > 1) {
      const total = Object.values(files).reduce((s, b) => s + b, 0);
      files['model.safetensors.index.json'] = await putJson(cache, fileUrl(base, 'model.safetensors.index.json'), { metadata: { total_size: total }, weight_map: weightMap });
      // The loader tries model.safetensors first: the copy answers 404 for it (offline too), as file-cache.ts remembers one.
      await cache.put(fileUrl(base, 'model.safetensors'), new Response(null, { status: 404, statusText: 'Not Found', headers: { [ABSENT]: '1' } }));
      absent.push('model.safetensors');
    }
    files['config.json'] = await putJson(cache, fileUrl(base, 'config.json'), { ...config, quantization_config: quantizationConfig(bitsOf(dtype)) });
    opts.signal?.throwIfAborted();
    const manifest: QuantCacheManifest = { m3web_quant_cache: 1, source: source.id, dtype, files, absent, created: new Date().toISOString() };
    await putJson(cache, base + QUANT_CACHE_MANIFEST, manifest);
    if (!(await findQuantCopy(cache, source, dtype))) throw new ModelCacheError(`the ${dtype} copy of ${source.describe()} did not read back whole`, { expected: `every file its manifest names, at ${base}`, received: 'a missing or resized file' });
  } catch (e) {
    await removeUnder(cache, base).catch(() => undefined);
    throw e;
  }
  // Committed. Only now may the weights it replaces go (after any store of them still streaming in has settled).
  await (opts.settle ?? whenStored)(opts.sourceWeights);
  const deleted: string[] = [];
  for (const url of opts.sourceWeights) if ((await isStored(cache, url)) && (await cache.delete(url))) deleted.push(url);
  deleted.push(...(await dropQuantCopies(cache, source, dtype)));
  return { dtype, base, files, bytes: Object.values(files).reduce((s, b) => s + b, 0), deleted };
}

/**
 * After a float load (weights f32 / f16 / auto): the source's weights are the copy now, so quantised copies go —
 * but only once every source weight file is committed in the cache (a refused store keeps them). Resolves to the
 * URLs removed.
 */
export async function keepSourceWeights(cache: CacheLike, source: ModelSource, sourceWeights: readonly string[], settle: (urls: readonly string[]) => Promise<void> = whenStored): Promise<string[]> {
  await settle(sourceWeights);
  const stored = await Promise.all(sourceWeights.map((u) => isStored(cache, u)));
  // The .pt heads are optional (absent for most models): the main weight files must all be there.
  const main = sourceWeights.filter((u) => !/\/(colbert|sparse)_linear\.pt$/.test(u));
  if (!main.every((u) => stored[sourceWeights.indexOf(u)])) return [];
  return dropQuantCopies(cache, source);
}
