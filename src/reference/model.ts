import { resolveEmbedOptions, type EmbedOptions } from '../engine/options.ts';
import { WeightError } from '../errors.ts';
import type { LoadedModel } from '../model/load.ts';
import { toFloat32 } from '../model/tensor.ts';
import { encoderWeightSpecs, float32Weights, headWeightSpecs, pickWeight } from '../model/weights.ts';
import { padBatch, validateTexts } from '../tokenize/tokenizer.ts';
import { forward, type EncoderBatch, type ForwardResult, type WeightMap } from './encoder.ts';
import { colbertVectors, sparseWeights, type LinearWeights, type SparseVector } from './heads.ts';
import { denseStack, pool, poolMcls, truncateAndNormalize } from './pooling.ts';
import { moduleConfig, resolvePrompt } from '../engine/modules.ts';
import { insertMcls } from '../engine/mcls.ts';

export interface ReferenceEmbedding {
  /** (n, dims) row-major. */
  embeddings: Float32Array;
  dims: number;
  /** How many texts were cut to the model's maximum length. */
  truncated: number;
}

export interface ReferenceBgeM3 {
  dense: Float32Array;
  sparse: SparseVector[];
  /** Per text: (n_i − 1, colbertDims). */
  colbert: Float32Array[];
}

/** The CPU reference engine over a loaded model: tokenize → forward → exit → pool → truncate → normalise. */
export class ReferenceEncoder {
  readonly weights: WeightMap;
  readonly colbert: LinearWeights | null;
  readonly sparse: LinearWeights | null;

  constructor(readonly model: LoadedModel) {
    this.weights = float32Weights(model.weights, encoderWeightSpecs(model.config));
    const H = model.config.hidden_size;
    if (model.heads.size) {
      const specs = headWeightSpecs(H, model.heads.get('colbert_linear.weight')?.shape[0] ?? H);
      const get = (i: number) => toFloat32(pickWeight(model.heads, specs[i]));
      this.colbert = { weight: get(0), bias: get(1), out: specs[0].shape[0], in: H };
      this.sparse = { weight: get(2), bias: get(3), out: 1, in: H };
    } else {
      this.colbert = this.sparse = null;
    }
  }

  tokenize(texts: readonly string[], mcls?: number): { batch: EncoderBatch; truncated: number } {
    const max = this.model.config.max_tokens;
    const enc = this.model.tokenizer.encode(validateTexts(texts), max);
    if (mcls) {
      enc.ids = enc.ids.map((seq, i) => {
        const r = insertMcls(seq, mcls, max);
        enc.truncated[i] ||= r.cut;
        return r.ids;
      });
    }
    return { batch: padBatch(enc.ids, this.model.tokenizer.padId), truncated: enc.truncated.filter(Boolean).length };
  }

  forward(batch: EncoderBatch, layers?: number, keepHiddenStates = false): ForwardResult {
    return forward(this.model.config, this.weights, batch, { layers, keepHiddenStates });
  }

  embed(texts: readonly string[], options: EmbedOptions & { prompt?: string } = {}): ReferenceEmbedding {
    // sentence-transformers modules: a prompt prefixes the texts; Dense layers follow pooling (dims count their output).
    const { prompt, ...rest } = options;
    const promptText = resolvePrompt(this.model, prompt);
    const o = resolveEmbedOptions(moduleConfig(this.model), this.model.pooling, rest);
    const { batch, truncated } = this.tokenize(promptText ? validateTexts(texts).map((t) => promptText + t) : texts, o.mcls);
    const { lastHidden } = this.forward(batch, o.layers);
    const H = this.model.config.hidden_size;
    const lengths = Array.from({ length: batch.B }, (_, b) => batch.attentionMask.subarray(b * batch.T, (b + 1) * batch.T).reduce((a, v) => a + v, 0));
    const pooled = o.mcls
      ? poolMcls(lastHidden, batch.inputIds, lengths, batch.B, batch.T, H, batch.inputIds[0])
      : pool(lastHidden, batch.attentionMask, batch.B, batch.T, H, o.pooling);
    const dense = this.model.modules?.dense ?? [];
    const [x, W] = dense.length ? [denseStack(pooled, batch.B, dense), dense[dense.length - 1].out_features] : [pooled, H];
    const embeddings = truncateAndNormalize(x, batch.B, W, { dims: o.dims, normalize: o.normalize, layerNormBeforeTruncate: o.layerNormBeforeTruncate });
    return { embeddings, dims: o.dims, truncated };
  }

  /** BGE-M3's three outputs from one pass (dense = CLS pooled, truncated, normalised). */
  bgeM3(texts: readonly string[], options: EmbedOptions & { colbertDims?: number } = {}): ReferenceBgeM3 {
    if (!this.colbert || !this.sparse) throw new WeightError('this model has no BGE-M3 heads', { expected: 'colbert_linear.pt and sparse_linear.pt', received: 'none' });
    const { colbertDims, ...rest } = options;
    const o = resolveEmbedOptions(this.model.config, this.model.pooling, { pooling: 'cls', ...rest });
    const { batch } = this.tokenize(texts);
    const { lastHidden } = this.forward(batch, o.layers);
    const { B, T, inputIds, attentionMask } = batch;
    const H = this.model.config.hidden_size;
    const dense = truncateAndNormalize(pool(lastHidden, attentionMask, B, T, H, o.pooling), B, H, { dims: o.dims, normalize: true });
    const sparse: SparseVector[] = [];
    const colbert: Float32Array[] = [];
    for (let b = 0; b < B; b++) {
      const h = lastHidden.subarray(b * T * H, (b + 1) * T * H);
      const ids = inputIds.subarray(b * T, (b + 1) * T);
      const mask = attentionMask.subarray(b * T, (b + 1) * T);
      sparse.push(sparseWeights(h, ids, mask, T, this.sparse, this.model.tokenizer.specialIds));
      const n = mask.reduce((a, v) => a + v, 0);
      colbert.push(colbertVectors(h, n, this.colbert, colbertDims ?? this.colbert.out));
    }
    return { dense, sparse, colbert };
  }
}
