import { ModelFormatError } from '../errors.ts';
import { TextTokenizer } from '../tokenize/tokenizer.ts';
import { parseConfig, parsePooling, type EncoderConfig, type PoolingConfig } from './config.ts';
import { streamSafetensors } from './safetensors.ts';
import { fetchModelFile, openModelStream, resolveModelSource, type ModelSource, type ModelSourceSpec } from './source.ts';
import type { RawTensor } from './tensor.ts';
import { readTorchStateDict } from './torch.ts';
import { canonicalNames } from './weights.ts';

/** Progress of a model load: bytes per file while downloading, then a final 'ready'. */
export type LoadProgress =
  | { phase: 'download'; file: string; loaded: number; total: number | null }
  | { phase: 'ready'; files: string[]; bytes: number };

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  fetchImpl?: typeof fetch;
  /**
   * Called with every weight as soon as its bytes are in (the GPU engine uploads and drops it).
   * When given, weights are not also kept in the returned model unless keepWeights is true.
   */
  onTensor?: (name: string, tensor: RawTensor) => void | Promise<void>;
  keepWeights?: boolean;
  /** Load bge-m3's colbert_linear / sparse_linear heads when the model has them (default: xlm-roberta only). */
  heads?: boolean;
}

export interface LoadedModel {
  source: ModelSource;
  config: EncoderConfig;
  pooling: PoolingConfig;
  tokenizer: TextTokenizer;
  /** Encoder weights under canonical (prefix-stripped) Hugging Face names. */
  weights: Map<string, RawTensor>;
  /** `colbert_linear.{weight,bias}`, `sparse_linear.{weight,bias}` when present. */
  heads: Map<string, RawTensor>;
}

interface ShardIndex {
  weight_map: Record<string, string>;
}

/**
 * Loads a Hugging Face-layout model folder from a base URL or the hub: config.json, tokenizer files,
 * sentence-transformers modules.json + 1_Pooling, weights (model.safetensors or sharded with
 * model.safetensors.index.json), and bge-m3's heads (colbert_linear.pt, sparse_linear.pt).
 */
export async function loadModel(spec: ModelSourceSpec, opts: LoadOptions = {}): Promise<LoadedModel> {
  const source = resolveModelSource(spec);
  const { signal, fetchImpl } = opts;
  const files: string[] = [];
  let bytes = 0;
  const progress = (file: string) => (loaded: number, total: number | null) => opts.onProgress?.({ phase: 'download', file, loaded, total });
  const json = async (file: string, optional: boolean) => {
    const v = await fetchModelFile(source, file, { kind: 'json', optional, signal, fetchImpl });
    if (v !== null) files.push(file);
    return v;
  };

  const [configJson, tokenizerJson, tokenizerConfig, modules] = await Promise.all([
    json('config.json', false),
    json('tokenizer.json', false),
    json('tokenizer_config.json', true),
    json('modules.json', true),
  ]);
  const config = parseConfig(configJson);
  const poolingPath = Array.isArray(modules)
    ? (modules as { type?: string; path?: string }[]).find((m) => String(m.type ?? '').endsWith('Pooling'))?.path
    : undefined;
  const poolingJson = poolingPath ? await json(`${poolingPath}/config.json`, true) : null;
  parsePooling(modules, poolingJson); // validated before any weight is downloaded; read again once the heads are known
  const tokenizer = new TextTokenizer(tokenizerJson, tokenizerConfig);

  // Weights: one file or shards. Each file is parsed while it streams in.
  const index = (await json('model.safetensors.index.json', true)) as ShardIndex | null;
  const weightFiles = index ? [...new Set(Object.values(index.weight_map ?? {}))].sort() : ['model.safetensors'];
  if (index && weightFiles.length === 0) throw new ModelFormatError('model.safetensors.index.json lists no files', { expected: 'a non-empty weight_map', received: index });
  const all = new Map<string, RawTensor>();
  const keep = opts.keepWeights ?? !opts.onTensor;
  for (const file of weightFiles) {
    const opened = await openModelStream(source, file, { signal, fetchImpl, onProgress: progress(file) });
    if (!opened) throw new ModelFormatError(`weights file ${file} is missing`, { expected: 'model.safetensors or a sharded index', received: 'HTTP 404' });
    files.push(file);
    bytes += opened.total ?? 0;
    for await (const { name, tensor } of streamSafetensors(opened.stream, opened.total)) {
      if (keep) all.set(name, tensor);
      if (opts.onTensor) await opts.onTensor(name, tensor);
    }
  }
  const canonical = canonicalNames(all);

  const heads = new Map<string, RawTensor>();
  for (const [name, t] of canonical) if (/^(colbert_linear|sparse_linear)\./.test(name)) heads.set(name, t);
  const wantHeads = opts.heads ?? config.family === 'xlm-roberta';
  if (wantHeads && heads.size === 0) {
    for (const head of ['colbert_linear', 'sparse_linear']) {
      const raw = await fetchModelFile(source, `${head}.pt`, { kind: 'binary', optional: true, signal, fetchImpl, onProgress: progress(`${head}.pt`) });
      if (!raw) continue;
      files.push(`${head}.pt`);
      bytes += raw.byteLength;
      for (const [k, t] of readTorchStateDict(raw)) heads.set(`${head}.${k}`, t);
    }
  }
  for (const h of heads.keys()) canonical.delete(h);
  opts.onProgress?.({ phase: 'ready', files, bytes });
  // A BGE-M3 layout without modules.json pools by CLS (parsePooling).
  const pooling = parsePooling(modules, poolingJson, { bgeM3Heads: heads.size > 0 });
  return { source, config, pooling, tokenizer, weights: canonical, heads };
}
