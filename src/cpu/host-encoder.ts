/**
 * What the two onnxruntime-web backends share after their forward pass: pooling, BGE-M3's sparse and
 * ColBERT heads, truncation and normalisation, run on the exit hidden states of one padded batch. The
 * per-block CPU backend (encoder.ts, 'cpu') and the whole exported graph (graph-encoder.ts, 'ort-wasm')
 * differ only in `forward`, so both return exactly the same outputs for the same hidden states.
 */
import type { EncoderConfig } from '../model/config.ts';
import type { LoadedModel } from '../model/load.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';
import type { BackendKind, BatchEncoder, BatchOutputs, BatchResult } from '../engine/backend.ts';
import type { ResolvedEmbedOptions } from '../engine/options.ts';
import { colbertGraph } from './graphs.ts';
import { layerNormRows, pool, sparseHead, truncateRows } from './host-ops.ts';
import { lengthGroups } from './groups.ts';
import { createSession, ort, type ThreadChoice } from './ort.ts';
import { headWeights } from './weights.ts';

/**
 * onnxruntime's CPU Attention materialises softmax scores (B, heads, T, T) in f32, and its 32-bit size
 * arithmetic in wasm overflows at T = 8192 even with 2 heads (SafeInt "Integer overflow", measured on
 * xlmr-long). Padded tokens per batch (and so the longest sequence) are capped so that one sequence's
 * scores take at most 256 MiB: T ≤ √(2²⁶ / heads), e.g. 2048 for bge-m3's 16 heads. Longer texts are
 * refused with InvalidInputError by the Engine before any work. Length groups (groups.ts) keep batches far below.
 */
export const ATTENTION_SCORE_BYTES = 2 ** 28;

export abstract class HostEncoder implements BatchEncoder {
  abstract readonly backend: BackendKind;
  readonly dtype = 'f32';
  readonly batchTokenCap: number;
  private colbert: ort.InferenceSession | null = null;
  private sparse: { w: Float32Array; b: number } | null = null;
  private colbertN = 0;
  /** Wasm threads in effect for this realm (the first onnxruntime-web session in a worker fixes it). */
  threads = 1;

  protected constructor(
    readonly cfg: EncoderConfig,
    readonly maxLayers: number,
    readonly threadChoice: ThreadChoice,
  ) {
    this.batchTokenCap = Math.floor(Math.sqrt(ATTENTION_SCORE_BYTES / 4 / cfg.num_attention_heads));
  }

  /** Why `threads` is what it is (isolation, default or asked). */
  get threadReason(): string {
    return this.threads === this.threadChoice.threads ? this.threadChoice.reason : `${this.threads} thread(s): fixed by the first onnxruntime-web session in this worker (asked for ${this.threadChoice.threads})`;
  }

  get colbertWidth(): number | null {
    return this.colbert ? this.colbertN : null;
  }

  protected async open(bytes: Uint8Array, wasmPaths?: string): Promise<ort.InferenceSession> {
    const { session, threads } = await createSession(bytes, this.threadChoice, wasmPaths);
    this.threads = threads;
    return session;
  }

  /** BGE-M3's heads, when the model has them: sparse on the host, the ColBERT projection as one session. */
  protected async buildHeads(model: LoadedModel, wasmPaths?: string): Promise<void> {
    if (!model.heads.size) return;
    const h = headWeights(this.cfg.hidden_size, model.heads);
    this.sparse = { w: h.sparseW, b: h.sparseB };
    this.colbertN = h.Hc;
    this.colbert = await this.open(colbertGraph(this.cfg.hidden_size, h.colbertW, h.colbertB, h.Hc), wasmPaths);
  }

  /** The exit hidden states (B, T, H) of the first `layers` blocks for one batch, exit rule applied. */
  protected abstract forward(batch: EncoderBatch, lengths: number[], layers: number): Promise<Float32Array>;

  /** The sessions `forward` runs (released by destroy). */
  protected abstract forwardSessions(): ort.InferenceSession[];

  /**
   * One forward pass per length group of the batch, then every requested output from that pass. Each
   * group (groups.ts) is padded to its own longest row; outputs are written back at the batch's (B, T)
   * positions, padding left zero.
   */
  async embedBatch(batch: EncoderBatch, lengths: number[], o: ResolvedEmbedOptions, want: BatchOutputs = { dense: true }): Promise<BatchResult> {
    const H = this.cfg.hidden_size;
    const { B, T } = batch;
    const clsId = batch.inputIds[0]; // MCLS: every sequence starts with the CLS id the engine inserted every o.mcls tokens
    const pooled = want.dense ? new Float32Array(B * H) : null; // (B, H)
    const tokenWeights = want.sparse && this.sparse ? new Float32Array(B * T) : null; // (B·T)
    const cd = want.colbertDims ?? this.colbertN;
    const colbert = want.colbert && this.colbert ? new Float32Array(B * T * cd) : null; // (B·T, cd)
    for (const rows of lengthGroups(lengths)) {
      const Tg = lengths[rows[0]];
      const Bg = rows.length;
      const ids = new Int32Array(Bg * Tg);
      const mask = new Uint8Array(Bg * Tg);
      rows.forEach((r, j) => {
        ids.set(batch.inputIds.subarray(r * T, r * T + Tg), j * Tg);
        mask.set(batch.attentionMask.subarray(r * T, r * T + Tg), j * Tg);
      });
      const sub: EncoderBatch = { inputIds: ids, attentionMask: mask, B: Bg, T: Tg };
      const subLengths = rows.map((r) => lengths[r]);
      const h = await this.forward(sub, subLengths, o.layers); // (Bg, Tg, H)
      if (pooled) {
        const p = pool(h, sub, subLengths, H, o.mcls ? 'mcls' : o.pooling, clsId); // (Bg, H)
        rows.forEach((r, j) => pooled.set(p.subarray(j * H, (j + 1) * H), r * H));
      }
      // BGE-M3 heads on the exit hidden states of every token (Chen et al. 2024 §3.2; FlagEmbedding m3.py).
      if (tokenWeights) {
        const w = sparseHead(h, Bg * Tg, H, this.sparse!.w, this.sparse!.b); // (Bg·Tg)
        rows.forEach((r, j) => tokenWeights.set(w.subarray(j * Tg, (j + 1) * Tg), r * T));
      }
      if (colbert) {
        const proj = (await this.colbert!.run({ h: new ort.Tensor('float32', h, [Bg * Tg, H]) })).y.data as Float32Array; // (Bg·Tg, Hc)
        const v = truncateRows(proj, Bg * Tg, this.colbertN, cd, true); // (Bg·Tg, cd)
        rows.forEach((r, j) => colbert.set(v.subarray(j * Tg * cd, (j + 1) * Tg * cd), r * T * cd));
      }
    }
    const result: BatchResult = {};
    if (pooled) {
      // nomic-style models: a parameter-free layer norm over the whole pooled vector before truncation.
      if (o.layerNormBeforeTruncate) layerNormRows(pooled, B, H, null, null, 1e-5);
      result.dense = truncateRows(pooled, B, H, o.dims, o.normalize); // (B, dims)
    }
    if (tokenWeights) result.tokenWeights = tokenWeights;
    if (colbert) result.colbert = { data: colbert, dim: cd };
    return result;
  }

  destroy(): void {
    const all = [...this.forwardSessions(), ...(this.colbert ? [this.colbert] : [])];
    this.colbert = null;
    // release() is async; nothing waits on it, and a failure to free is not the caller's problem.
    for (const s of all) void s.release().catch(() => undefined);
  }
}
