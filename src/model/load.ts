import { InvalidInputError, ModelFormatError, WeightError } from '../errors.ts';
import { TextTokenizer } from '../tokenize/tokenizer.ts';
import { parseConfig, parsePooling, type EncoderConfig, type PoolingConfig } from './config.ts';
import { checkFinite } from './finite.ts';
import { LoadGuard } from './guard.ts';
import { loadModuleStack, type ModuleStack } from './modules.ts';
import { streamSafetensors } from './safetensors.ts';
import { fetchModelFile, openModelStream, resolveModelSource, type ModelSource, type ModelSourceSpec, type ModelStream } from './source.ts';
import type { RawTensor } from './tensor.ts';
import { fromQuantTensors, parseQuantizationConfig, type QuantFileTensor, type QuantizationConfig, type QuantizedMatrix } from './quant.ts';
import { readTorchStateDict } from './torch.ts';
import { streamTorchStateDict } from './torch-stream.ts';
import { canonicalNames, canonicalPrefix, encoderWeightSpecs } from './weights.ts';

/** Progress of a model load: bytes per file while downloading, then a final 'ready'. */
export type LoadProgress = { phase: 'download'; file: string; loaded: number; total: number | null } | { phase: 'ready'; files: string[]; bytes: number };

/** Quantising at load (EngineOptions.onProgress with weights 'int8' / 'q4', issue #18): one report per quantised weight. */
export interface QuantizeProgress {
  phase: 'quantize';
  /** The weight just quantised, or taken pre-quantised from the folder. */
  name: string;
  done: number;
  total: number;
  prequantized: boolean;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /** Cancels every download; the load rejects with AbortError. */
  signal?: AbortSignal;
  /** A download that sends no byte for this long is cancelled; the load rejects with StallTimeoutError. Default: none. */
  stallTimeoutMs?: number;
  fetchImpl?: typeof fetch;
  /**
   * Called with every weight as soon as its bytes are in (the GPU engine uploads and drops it).
   * When given, weights are not also kept in the returned model unless keepWeights is true.
   */
  onTensor?: (name: string, tensor: RawTensor) => void | Promise<void>;
  keepWeights?: boolean;
  /** Load bge-m3's colbert_linear / sparse_linear heads when the model has them (default: xlm-roberta only). */
  heads?: boolean;
  /**
   * false: fetch no encoder weight file at all (a backend that brings its own weights, e.g. a whole exported
   * ONNX graph); config, tokenizer, modules and the colbert_linear.pt / sparse_linear.pt heads still load.
   */
  encoderWeights?: boolean;
  /** Check every weight for NaN / ±Inf as it arrives (NonFiniteWeightError). Default true; a linear scan of the bytes. */
  checkFinite?: boolean;
  /** For a hub id given as a string: the hub (HF_ENDPOINT-style mirror), branch / tag / commit, and folder in the repo. */
  hubEndpoint?: string;
  revision?: string;
  subfolder?: string;
  /** Hugging Face access token for private or gated repositories: sent as `Authorization: Bearer …` to the model's origin only, never logged. */
  token?: string;
}

export interface LoadedModel {
  source: ModelSource;
  config: EncoderConfig;
  /** config.json as read, every key kept: the quantised cache copy (quant-cache.ts) writes it back with its quantization_config. */
  configJson: Record<string, unknown>;
  pooling: PoolingConfig;
  tokenizer: TextTokenizer;
  /** Encoder weights under canonical (prefix-stripped) Hugging Face names. */
  weights: Map<string, RawTensor>;
  /** `colbert_linear.{weight,bias}`, `sparse_linear.{weight,bias}` when present. */
  heads: Map<string, RawTensor>;
  /** sentence-transformers modules after pooling (Dense layers) and prompts (modules.ts). */
  modules: ModuleStack;
  /** Which weight files were read, in order (model.safetensors, shards, pytorch_model.bin, ...). */
  weightFiles: string[];
  /** A pre-quantised folder's `quantization_config` (src/model/QUANT.md), else absent. */
  quantization?: QuantizationConfig;
  /** A pre-quantised folder's matrices by canonical weight name (`<module>.weight`), else absent. */
  quantized?: Map<string, QuantizedMatrix>;
}

const EMPTY_TENSOR: RawTensor = { dtype: 'f32', shape: [0], data: new Uint8Array(0) };

interface ShardIndex {
  weight_map: Record<string, string>;
}

/**
 * Where the weights are, in transformers' order (modeling_utils: SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME,
 * WEIGHTS_NAME, WEIGHTS_INDEX_NAME): safetensors first, then `pytorch_model.bin`, each single or sharded.
 */
const WEIGHT_LAYOUTS = [
  { single: 'model.safetensors', index: 'model.safetensors.index.json', format: 'safetensors' },
  { single: 'pytorch_model.bin', index: 'pytorch_model.bin.index.json', format: 'torch' },
] as const;

/** Resolves the spec with the hub options (a hub-id string plus hubEndpoint / revision / subfolder). */
export function sourceOf(spec: ModelSourceSpec, opts: LoadOptions): ModelSource {
  const { hubEndpoint, revision, subfolder } = opts;
  if (hubEndpoint === undefined && revision === undefined && subfolder === undefined) return resolveModelSource(spec);
  const base = resolveModelSource(spec);
  if (base.kind === 'hub') {
    return resolveModelSource({ hubId: base.hubId, revision: revision ?? base.revision, endpoint: hubEndpoint ?? base.endpoint, subfolder: subfolder ?? base.subfolder });
  }
  if (hubEndpoint !== undefined || revision !== undefined) throw new InvalidInputError('options "hubEndpoint" and "revision" apply to hub ids only', { expected: "a model such as 'org/name'", received: base.id });
  return resolveModelSource({ baseUrl: base.baseUrl, subfolder });
}

/** Authorization for the model's own origin only (a redirect to a CDN gets none: fetch drops it cross-origin). */
export function authHeaders(token: string | undefined): Record<string, string> | undefined {
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) throw new InvalidInputError('option "token" must be a non-empty string', { received: typeof token });
  return { Authorization: `Bearer ${token}` };
}

/**
 * Loads a Hugging Face-layout model folder from a base URL or the hub: config.json, tokenizer files,
 * sentence-transformers modules.json (Pooling, Dense, Normalize) and config_sentence_transformers.json
 * (prompts), weights (safetensors or pytorch_model.bin, single or sharded; each file parsed while it
 * streams in), and bge-m3's heads (colbert_linear.pt, sparse_linear.pt).
 */
export async function loadModel(spec: ModelSourceSpec, opts: LoadOptions = {}): Promise<LoadedModel> {
  const source = sourceOf(spec, opts);
  const headers = authHeaders(opts.token);
  const guard = new LoadGuard(opts.signal, opts.stallTimeoutMs);
  try {
    return await load(source, opts, guard, headers);
  } catch (err) {
    throw guard.translate(err);
  } finally {
    guard.dispose();
  }
}

async function load(source: ModelSource, opts: LoadOptions, guard: LoadGuard, headers: Record<string, string> | undefined): Promise<LoadedModel> {
  const { signal } = guard;
  const { fetchImpl } = opts;
  const files: string[] = [];
  let bytes = 0;
  // Bytes each streamed file delivered: the load's size when a server compresses (Content-Encoding: no usable total).
  const received = new Map<string, number>();
  const progress = (file: string) => (loaded: number, total: number | null) => {
    received.set(file, loaded);
    guard.kick();
    opts.onProgress?.({ phase: 'download', file, loaded, total });
  };
  const json = async (file: string, optional: boolean) => {
    const v = await fetchModelFile(source, file, { kind: 'json', optional, signal, fetchImpl, headers, onProgress: () => guard.kick() });
    if (v !== null) files.push(file);
    return v;
  };
  const open = (file: string): Promise<ModelStream | null> => openModelStream(source, file, { optional: true, signal, fetchImpl, headers, onProgress: progress(file) });

  const [configJson, tokenizerJson, tokenizerConfig] = await Promise.all([json('config.json', false), json('tokenizer.json', false), json('tokenizer_config.json', true)]);
  const config = parseConfig(configJson);
  const quantization = parseQuantizationConfig((configJson as { quantization_config?: unknown } | null)?.quantization_config);
  const modules = await loadModuleStack(
    config.hidden_size,
    (file) => json(file, true),
    (file) => fetchModelFile(source, file, { kind: 'binary', optional: true, signal, fetchImpl, headers }),
  );
  const tokenizer = new TextTokenizer(tokenizerJson, tokenizerConfig);

  // Weights: the first layout present, one file or shards; each file is parsed while it streams in.
  const keep = opts.keepWeights ?? !opts.onTensor;
  const check = opts.checkFinite ?? true;
  const all = new Map<string, RawTensor>();
  const seen = new Set<string>();
  const skipped = new Map<string, string>();
  const weightFiles: string[] = [];
  const take = async (name: string, tensor: RawTensor): Promise<void> => {
    if (check) checkFinite(name, tensor);
    seen.add(name);
    if (keep) all.set(name, tensor);
    if (opts.onTensor) await guard.whilePaused(() => opts.onTensor!(name, tensor));
  };
  const onSkipped = (name: string, dtype: string) => skipped.set(name, dtype);
  // A pre-quantised folder (src/model/QUANT.md): U32 codes / zero points and the header's shapes are collected.
  const u32 = new Map<string, QuantFileTensor>();
  const metadata: Record<string, string> = {};
  const quantOpts = quantization ? { onU32: (name: string, shape: number[], data: Uint8Array) => void u32.set(name, { dtype: 'u32', shape, data }), onMetadata: (m: Record<string, string>) => void Object.assign(metadata, m) } : {};
  const scales = new Map<string, RawTensor>();
  const readStream = async (file: string, opened: ModelStream, format: 'safetensors' | 'torch') => {
    files.push(file);
    weightFiles.push(file);
    const tensors = format === 'safetensors' ? streamSafetensors(opened.stream, opened.total, { onSkipped, ...quantOpts }) : streamTorchStateDict(opened.stream, { onSkipped });
    // Not for-await: an async function keeps the previous iteration's tensor in its frame while awaiting the next.
    const it = tensors[Symbol.asyncIterator]();
    for (let r = await it.next(); !r.done; r = await it.next()) {
      if (quantization && r.value.name.endsWith('.scales')) scales.set(r.value.name, r.value.tensor);
      else await take(r.value.name, r.value.tensor);
      // Drop this iteration's tensor before awaiting the next, so a consumer that released it lets it be collected.
      // eslint-disable-next-line no-useless-assignment
      r = { done: false, value: { name: '', tensor: EMPTY_TENSOR } };
    }
    bytes += opened.total ?? received.get(file) ?? 0;
  };
  let found = opts.encoderWeights === false;
  for (const layout of found ? [] : WEIGHT_LAYOUTS) {
    const single = await open(layout.single);
    if (single) {
      await readStream(layout.single, single, layout.format);
      found = true;
      break;
    }
    const index = (await json(layout.index, true)) as ShardIndex | null;
    if (!index) continue;
    const shards = [...new Set(Object.values(index.weight_map ?? {}))].sort();
    if (shards.length === 0) throw new ModelFormatError(`${layout.index} lists no files`, { expected: 'a non-empty weight_map', received: index });
    for (const shard of shards) {
      const opened = await open(shard);
      if (!opened) throw new ModelFormatError(`weights shard ${shard} named by ${layout.index} is missing`, { expected: `${shard} in ${source.describe()}`, received: 'HTTP 404' });
      await readStream(shard, opened, layout.format);
    }
    found = true;
    break;
  }
  if (!found) {
    throw new ModelFormatError('the model has no weights file', {
      expected: WEIGHT_LAYOUTS.flatMap((l) => [l.single, l.index]).join(', '),
      received: `HTTP 404 for each, in ${source.describe()}`,
    });
  }
  checkUnsupportedDtypes(config, [...seen, ...skipped.keys()], skipped);
  const canonical = canonicalNames(all);
  const quantized = quantization ? readQuantized(quantization, u32, scales, metadata, [...seen, ...u32.keys()]) : undefined;

  const heads = new Map<string, RawTensor>();
  for (const [name, t] of canonical) if (/^(colbert_linear|sparse_linear)\./.test(name)) heads.set(name, t);
  const wantHeads = opts.heads ?? config.family === 'xlm-roberta';
  if (wantHeads && heads.size === 0) {
    for (const head of ['colbert_linear', 'sparse_linear']) {
      const raw = await fetchModelFile(source, `${head}.pt`, { kind: 'binary', optional: true, signal, fetchImpl, headers, onProgress: progress(`${head}.pt`) });
      if (!raw) continue;
      files.push(`${head}.pt`);
      bytes += raw.byteLength;
      for (const [k, t] of readTorchStateDict(raw)) {
        if (check) checkFinite(`${head}.${k}`, t);
        heads.set(`${head}.${k}`, t);
      }
    }
  }
  for (const h of heads.keys()) canonical.delete(h);
  opts.onProgress?.({ phase: 'ready', files, bytes });
  // A BGE-M3 folder (heads present) without modules.json pools by CLS, as FlagEmbedding's M3 embedder always does.
  const pooling = !modules.declared && heads.size > 0 ? parsePooling(null, null, { bgeM3Heads: true }) : modules.pooling;
  return { source, config, configJson: configJson as Record<string, unknown>, pooling, tokenizer, weights: canonical, heads, modules: { ...modules, pooling }, weightFiles, ...(quantization ? { quantization, quantized } : {}) };
}

/** The quantised matrices of a pre-quantised folder, by canonical weight name `<module>.weight` (QUANT.md). */
function readQuantized(qc: QuantizationConfig, u32: Map<string, QuantFileTensor>, scales: Map<string, RawTensor>, metadata: Record<string, string>, names: string[]): Map<string, QuantizedMatrix> {
  const prefix = canonicalPrefix(names);
  const get = (name: string): QuantFileTensor | undefined => {
    const s = scales.get(name);
    return u32.get(name) ?? (s && s.dtype !== 'bf16' ? { dtype: s.dtype, shape: s.shape, data: s.data } : undefined);
  };
  const out = new Map<string, QuantizedMatrix>();
  for (const name of u32.keys()) {
    if (!name.endsWith('.qweight')) continue;
    const module = name.slice(0, -'.qweight'.length);
    const canonical = module.startsWith(prefix) ? module.slice(prefix.length) : module;
    out.set(`${canonical}.weight`, fromQuantTensors(module, qc.bits, get, metadata));
  }
  if (out.size === 0) throw new ModelFormatError('config.json declares quantization_config but the weights hold no quantised tensor', { expected: '<module>.qweight U32 tensors (src/model/QUANT.md)', received: 'none' });
  return out;
}

/** An encoder weight stored in a dtype we do not read (F64, I8, ...) is named as such, not reported missing later. */
function checkUnsupportedDtypes(config: EncoderConfig, names: string[], skipped: Map<string, string>): void {
  if (skipped.size === 0) return;
  const prefix = canonicalPrefix(names);
  for (const spec of encoderWeightSpecs(config)) {
    for (const name of [spec.name, ...(spec.aliases ?? [])]) {
      const dtype = skipped.get(prefix + name) ?? skipped.get(name);
      if (dtype !== undefined) {
        throw new WeightError(`weight "${name}" is stored as ${dtype}, a dtype m3web does not read`, { expected: 'F32, F16 or BF16 (torch.float32, float16, bfloat16)', received: dtype });
      }
    }
  }
}
