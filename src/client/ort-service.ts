/**
 * CPU fallback for models that ship an ONNX export: onnxruntime-web's wasm execution provider, with the
 * same worker surface as EmbedService (load / embed / ping / calibrate / modelStats) so M3Client drives
 * either. Tokenization, pooling, Matryoshka truncation and normalisation are ours (src/tokenize,
 * src/reference/pooling.ts); tools/parity/browser.ts compares it with our engine. The export gives only last_hidden_state, so
 * this backend runs the full depth: `layers` must be the model's layer count (the planner knows).
 */
import * as ort from 'onnxruntime-web/wasm';
import { InvalidInputError } from '../errors.ts';
import { loadModel, type LoadedModel, type LoadProgress } from '../model/load.ts';
import { pool, truncateAndNormalize } from '../engine/postprocess.ts';
import { padBatch, validateTexts } from '../tokenize/tokenizer.ts';
import type { EmbedResult, GpuProbe, ModelInfo } from '../engine/service.ts';

export interface OrtLoadOptions {
  /** URL of the ONNX file (inputs input_ids, attention_mask[, token_type_ids]; output last_hidden_state). */
  onnx: string;
  /** Where onnxruntime-web's .wasm files are served (default: the dev server's node_modules copy). */
  wasmPaths?: string;
}

const BATCH_TEXTS = 16;

export class OrtEmbedService {
  private model: LoadedModel | null = null;
  private session: ort.InferenceSession | null = null;
  calibrationRuns = 0;

  async probeGpu(): Promise<GpuProbe> {
    return { ok: false, reason: 'onnxruntime-web wasm backend (no WebGPU used)' };
  }

  async load(model: string, opts: OrtLoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    if (!opts?.onnx) throw new InvalidInputError('the ONNX backend needs the ONNX file', { expected: '{ onnx: URL }', received: opts?.onnx });
    // Config, tokenizer and pooling from the model folder; weights are streamed past, not kept.
    this.model = await loadModel(model, { onProgress, onTensor: () => undefined, keepWeights: false, heads: false });
    ort.env.wasm.wasmPaths = opts.wasmPaths ?? new URL('/node_modules/onnxruntime-web/dist/', self.location.href).href;
    ort.env.wasm.numThreads = 1;
    await this.session?.release();
    this.session = await ort.InferenceSession.create(opts.onnx, { executionProviders: ['wasm'] });
    const c = this.model.config;
    return {
      source: `${this.model.source.describe()} + ${opts.onnx}`,
      family: c.family,
      layers: c.num_hidden_layers,
      hidden: c.hidden_size,
      heads: c.num_attention_heads,
      maxTokens: c.max_tokens,
      pooling: this.model.pooling.pooling,
      normalize: this.model.pooling.normalize,
      mrlLayers: c.mrl_layers,
      mrlDims: c.mrl_dims,
      hasBgeM3Heads: false,
      backend: 'ort-wasm',
      dtype: 'f32',
      maxLayers: c.num_hidden_layers,
    };
  }

  async embed(texts: string[], opts: { layers?: number; dims?: number; pooling?: 'cls' | 'mean'; normalize?: boolean; outputs?: string[] } = {}): Promise<EmbedResult> {
    const t0 = performance.now();
    const model = this.model;
    const session = this.session;
    if (!model || !session) throw new InvalidInputError('no model loaded', { expected: 'load(model) before embed()', received: 'embed() first' });
    // The exported graph gives last_hidden_state only: what it cannot compute is an error, never silently dropped.
    const unsupported = Object.keys(opts).filter((k) => !['layers', 'dims', 'pooling', 'normalize', 'outputs'].includes(k) && (opts as Record<string, unknown>)[k] !== undefined);
    if (unsupported.length)
      throw new InvalidInputError(`backend "ort-wasm" does not support option "${unsupported[0]}"`, {
        expected: 'layers (full depth), dims, pooling, normalize, outputs: ["dense"]; use backend "cpu" or "webgpu" for the rest',
        received: unsupported.join(', '),
      });
    if (opts.outputs && (opts.outputs.length !== 1 || opts.outputs[0] !== 'dense')) {
      throw new InvalidInputError('backend "ort-wasm" returns dense vectors only', { expected: 'outputs: ["dense"] (backend "cpu" or "webgpu" run BGE-M3\'s sparse and ColBERT heads)', received: JSON.stringify(opts.outputs) });
    }
    const c = model.config;
    const H = c.hidden_size;
    if (opts.layers !== undefined && opts.layers !== c.num_hidden_layers) {
      throw new InvalidInputError('onnxruntime-web runs the exported model at full depth', { expected: `layers = ${c.num_hidden_layers}`, received: opts.layers });
    }
    const dims = opts.dims ?? H;
    if (!Number.isInteger(dims) || dims < 1 || dims > H) throw new InvalidInputError('option "dims" is out of range', { expected: `an integer in 1..${H}`, received: dims });
    const valid = validateTexts(texts);
    const enc = model.tokenizer.encode(valid, c.max_tokens);
    const out = new Float32Array(valid.length * dims);
    for (let s = 0; s < valid.length; s += BATCH_TEXTS) {
      const ids = enc.ids.slice(s, s + BATCH_TEXTS);
      const batch = padBatch(ids, model.tokenizer.padId);
      const shape = [batch.B, batch.T];
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(batch.inputIds, BigInt), shape),
        attention_mask: new ort.Tensor('int64', BigInt64Array.from(batch.attentionMask, BigInt), shape),
      };
      if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(batch.B * batch.T), shape);
      const res = await session.run(feeds);
      const hidden = res.last_hidden_state.data as Float32Array; // (B, T, H)
      const pooled = pool(hidden, batch.attentionMask, batch.B, batch.T, H, opts.pooling ?? model.pooling.pooling);
      const rows = truncateAndNormalize(pooled, batch.B, H, { dims, normalize: opts.normalize ?? model.pooling.normalize, layerNormBeforeTruncate: model.pooling.layerNormBeforeTruncate });
      out.set(rows, s * dims);
    }
    const truncatedRows = enc.truncated.flatMap((t, i) => (t ? [i] : []));
    return { embeddings: out, n: valid.length, dims, layers: c.num_hidden_layers, truncated: truncatedRows.length, truncatedRows, tokens: Uint32Array.from(enc.ids, (s) => s.length), backend: 'ort-wasm', dtype: 'f32', ms: performance.now() - t0 };
  }

  ping(): { loaded: boolean; backend: string | null } {
    return { loaded: this.session !== null, backend: this.session ? 'ort-wasm' : null };
  }

  modelStats(): { vocab: number; intermediate: number; typeVocab: number; maxPositions: number } | null {
    const c = this.model?.config;
    return c ? { vocab: c.vocab_size, intermediate: c.intermediate_size, typeVocab: c.type_vocab_size, maxPositions: c.max_position_embeddings } : null;
  }

  async calibrate(runs: { text: string; layers: number }[]): Promise<{ tokens: number; chars: number; layers: number; ms: number; gpuMs: number | null }[]> {
    const model = this.model;
    if (!model) throw new InvalidInputError('no model loaded', { expected: 'load(model) before calibrate()', received: 'calibrate() first' });
    const out = [];
    for (const r of runs) {
      const tokens = model.tokenizer.encode([r.text], model.config.max_tokens).ids[0].length;
      const t0 = performance.now();
      await this.embed([r.text], {}); // full depth whatever the run asks: the export has no exits
      out.push({ tokens, chars: r.text.length, layers: model.config.num_hidden_layers, ms: performance.now() - t0, gpuMs: null });
      this.calibrationRuns++;
    }
    return out;
  }

  loseDeviceForTest(): boolean {
    return false;
  }
}
