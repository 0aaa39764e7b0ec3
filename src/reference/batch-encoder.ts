import type { BatchEncoder, BatchOutputs, BatchResult } from '../engine/backend.ts';
import type { ResolvedEmbedOptions } from '../engine/options.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';
import type { ReferenceEncoder } from './model.ts';
import { l2Normalize, linear } from './ops.ts';
import { pool, poolMcls, truncateAndNormalize } from './pooling.ts';

/**
 * The CPU reference as a BatchEncoder, so the Engine (src/engine/engine.ts) drives it exactly as it
 * drives the GPU: one validation, one tokenisation (MCLS included, for every output), batching by
 * length under maxBatchTokens, one sparse combination, the same finite-output check. Only the forward
 * pass and the per-batch heads are the reference's own (the oracle's arithmetic).
 */
export class ReferenceBatchEncoder implements BatchEncoder {
  readonly backend = 'cpu-ref' as const;
  readonly dtype = 'f32';
  /** No device binding limit: the Engine's maxBatchTokens alone bounds a batch's memory. */
  readonly batchTokenCap = Number.MAX_SAFE_INTEGER;

  constructor(readonly ref: ReferenceEncoder) {}

  get maxLayers(): number {
    return this.ref.model.config.num_hidden_layers;
  }

  get colbertWidth(): number | null {
    return this.ref.colbert?.out ?? null;
  }

  async embedBatch(batch: EncoderBatch, lengths: number[], o: ResolvedEmbedOptions, want: BatchOutputs): Promise<BatchResult> {
    const { B, T, inputIds, attentionMask } = batch;
    const H = this.ref.model.config.hidden_size;
    const M = B * T;
    const { lastHidden } = this.ref.forward(batch, o.layers); // (B, T, H)
    const r: BatchResult = {};
    if (want.dense) {
      // MCLS: the Engine inserted a CLS (the sequence's first id) every o.mcls tokens.
      const pooled = o.mcls ? poolMcls(lastHidden, inputIds, lengths, B, T, H, inputIds[0]) : pool(lastHidden, attentionMask, B, T, H, o.pooling);
      r.dense = truncateAndNormalize(pooled, B, H, { dims: o.dims, normalize: o.normalize, layerNormBeforeTruncate: o.layerNormBeforeTruncate });
    }
    if (want.sparse && this.ref.sparse) {
      const s = this.ref.sparse;
      r.tokenWeights = linear(lastHidden, M, H, s.weight, 1, s.bias).map((v) => Math.max(v, 0)); // (M) relu(h · w + b)
    }
    if (want.colbert && this.ref.colbert) {
      const c = this.ref.colbert;
      const d = want.colbertDims ?? c.out;
      const proj = linear(lastHidden, M, H, c.weight, c.out, c.bias); // (M, Hc)
      const cut = new Float32Array(M * d);
      for (let m = 0; m < M; m++) cut.set(proj.subarray(m * c.out, m * c.out + d), m * d);
      r.colbert = { data: l2Normalize(cut, M, d), dim: d }; // (M, d): truncated, then normalised per token
    }
    return r;
  }

  destroy(): void {}
}
