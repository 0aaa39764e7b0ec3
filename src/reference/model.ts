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
import { planBatches } from '../engine/batching.ts';

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

  /**
   * @param maxBatchTokens cap on padded tokens (batch size × longest sequence) per forward pass, as the
   *   Engine's: bounds the reference's activations (B·T·max(3H, I) floats) however many texts a call holds.
   */
  constructor(
    readonly model: LoadedModel,
    readonly maxBatchTokens = 8192,
  ) {
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

  /** Tokenises (MCLS inserted when asked) into one padded batch (tests and tools look at small sets this way). */
  tokenize(texts: readonly string[], mcls?: number): { batch: EncoderBatch; truncated: number } {
    const { ids, truncated } = this.encodeIds(texts, mcls);
    return { batch: padBatch(ids, this.model.tokenizer.padId), truncated };
  }

  /** Tokenises (MCLS inserted when asked) without padding: embed() pads batch by batch. */
  private encodeIds(texts: readonly string[], mcls?: number): { ids: Int32Array[]; truncated: number } {
    const max = this.model.config.max_tokens;
    const enc = this.model.tokenizer.encode(validateTexts(texts), max);
    if (mcls) {
      enc.ids = enc.ids.map((seq, i) => {
        const r = insertMcls(seq, mcls, max);
        enc.truncated[i] ||= r.cut;
        return r.ids;
      });
    }
    return { ids: enc.ids, truncated: enc.truncated.filter(Boolean).length };
  }

  forward(batch: EncoderBatch, layers?: number, keepHiddenStates = false): ForwardResult {
    return forward(this.model.config, this.weights, batch, { layers, keepHiddenStates });
  }

  /**
   * Runs `each` over length-sorted batches capped at maxBatchTokens padded tokens (planBatches, as the
   * Engine does), so one long text never pads a thousand short ones to its length: memory stays
   * O(maxBatchTokens · H) whatever the call holds.
   */
  private batched(ids: Int32Array[], each: (batch: EncoderBatch, rows: number[]) => void): void {
    for (const rows of planBatches(
      ids.map((s) => s.length),
      this.maxBatchTokens,
    ))
      each(
        padBatch(
          rows.map((i) => ids[i]),
          this.model.tokenizer.padId,
        ),
        rows,
      );
  }

  embed(texts: readonly string[], options: EmbedOptions & { prompt?: string } = {}): ReferenceEmbedding {
    // sentence-transformers modules: a prompt prefixes the texts; Dense layers follow pooling (dims count their output).
    const { prompt, ...rest } = options;
    const promptText = resolvePrompt(this.model, prompt);
    const o = resolveEmbedOptions(moduleConfig(this.model), this.model.pooling, rest);
    const { ids, truncated } = this.encodeIds(promptText ? validateTexts(texts).map((t) => promptText + t) : texts, o.mcls);
    const H = this.model.config.hidden_size;
    const dense = this.model.modules?.dense ?? [];
    const embeddings = new Float32Array(ids.length * o.dims);
    this.batched(ids, (batch, rows) => {
      const { lastHidden } = this.forward(batch, o.layers);
      const lengths = rows.map((i) => ids[i].length);
      const pooled = o.mcls ? poolMcls(lastHidden, batch.inputIds, lengths, batch.B, batch.T, H, batch.inputIds[0]) : pool(lastHidden, batch.attentionMask, batch.B, batch.T, H, o.pooling);
      const [x, W] = dense.length ? [denseStack(pooled, batch.B, dense), dense[dense.length - 1].out_features] : [pooled, H];
      const e = truncateAndNormalize(x, batch.B, W, { dims: o.dims, normalize: o.normalize, layerNormBeforeTruncate: o.layerNormBeforeTruncate });
      rows.forEach((i, r) => embeddings.set(e.subarray(r * o.dims, (r + 1) * o.dims), i * o.dims));
    });
    return { embeddings, dims: o.dims, truncated };
  }

  /** BGE-M3's three outputs from one pass (dense = CLS pooled, truncated, normalised). */
  bgeM3(texts: readonly string[], options: EmbedOptions & { colbertDims?: number } = {}): ReferenceBgeM3 {
    if (!this.colbert || !this.sparse) throw new WeightError('this model has no BGE-M3 heads', { expected: 'colbert_linear.pt and sparse_linear.pt', received: 'none' });
    const { colbertDims, ...rest } = options;
    const o = resolveEmbedOptions(this.model.config, this.model.pooling, { pooling: 'cls', ...rest });
    const { ids } = this.encodeIds(texts);
    const H = this.model.config.hidden_size;
    const n = ids.length;
    const dense = new Float32Array(n * o.dims);
    const sparse: SparseVector[] = new Array(n);
    const colbert: Float32Array[] = new Array(n);
    this.batched(ids, (batch, rows) => {
      const { lastHidden } = this.forward(batch, o.layers);
      const { B, T, inputIds, attentionMask } = batch;
      const d = truncateAndNormalize(pool(lastHidden, attentionMask, B, T, H, o.pooling), B, H, { dims: o.dims, normalize: true });
      rows.forEach((i, b) => {
        dense.set(d.subarray(b * o.dims, (b + 1) * o.dims), i * o.dims);
        const h = lastHidden.subarray(b * T * H, (b + 1) * T * H);
        const mask = attentionMask.subarray(b * T, (b + 1) * T);
        sparse[i] = sparseWeights(h, inputIds.subarray(b * T, (b + 1) * T), mask, T, this.sparse!, this.model.tokenizer.specialIds);
        colbert[i] = colbertVectors(h, ids[i].length, this.colbert!, colbertDims ?? this.colbert!.out);
      });
    });
    return { dense, sparse, colbert };
  }
}
