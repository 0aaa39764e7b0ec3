/**
 * The CPU backend's BatchEncoder (backend 'cpu'): every family, every output and every (layers, dims)
 * from the safetensors alone. Embeddings, norms, pooling and the sparse head run in TypeScript
 * (host-ops.ts); each encoder block and the ColBERT projection is an onnxruntime-web session on the wasm
 * EP (graphs.ts), chained, so an early exit at k runs exactly k block sessions. f32 throughout: f16 and
 * bf16 checkpoints are upcast at load. Mirrors src/engine/gpu-encoder.ts step for step.
 */
import type { EncoderConfig } from '../model/config.ts';
import type { LoadedModel } from '../model/load.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';
import type { BatchEncoder, BatchOutputs, BatchResult } from '../engine/backend.ts';
import type { ResolvedEmbedOptions } from '../engine/options.ts';
import { bertBlockGraph, BLOCK_IO, colbertGraph, llamaBlockGraph } from './graphs.ts';
import { embed, layerNormRows, pool, rmsNormRows, sparseHead, truncateRows, type EmbeddingTables } from './host-ops.ts';
import { lengthGroups } from './groups.ts';
import { chooseThreads, createSession, ort, type ThreadChoice } from './ort.ts';
import { headWeights, weightReader } from './weights.ts';

export interface CpuEncoderOptions {
  /** Wasm threads (needs cross-origin isolation); default: onnxruntime-web's own default, 1 without isolation. */
  threads?: number;
  /** Build only the first k blocks (a planner that never runs deeper saves their memory and load time). */
  maxLayers?: number;
  /** Where onnxruntime-web's .wasm files are served (default: next to its module). */
  wasmPaths?: string;
}

/**
 * onnxruntime's CPU Attention materialises softmax scores (B, heads, T, T) in f32, and its 32-bit size
 * arithmetic in wasm overflows at T = 8192 even with 2 heads (SafeInt "Integer overflow", measured on
 * xlmr-long). Padded tokens per batch (and so the longest sequence) are capped so that one sequence's
 * scores take at most 256 MiB: T ≤ √(2²⁶ / heads), e.g. 2048 for bge-m3's 16 heads. Longer texts are
 * refused with InvalidInputError by the Engine before any work. Length groups (groups.ts) keep batches far below.
 */
export const ATTENTION_SCORE_BYTES = 2 ** 28;

export class CpuEncoder implements BatchEncoder {
  readonly backend = 'cpu' as const;
  readonly dtype = 'f32';
  readonly batchTokenCap: number;
  private sessions: ort.InferenceSession[] = [];
  private colbert: ort.InferenceSession | null = null;
  private sparse: { w: Float32Array; b: number } | null = null;
  private colbertN = 0;
  private emb!: EmbeddingTables;
  private finalNorm: Float32Array | null = null;
  /** Wasm threads in effect for this realm (the first CPU engine in a worker fixes it). */
  threads = 1;

  private constructor(
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

  /** Builds every block's graph from the weights and opens its session (released again if any step fails). */
  static async create(model: LoadedModel, opts: CpuEncoderOptions = {}): Promise<CpuEncoder> {
    const cfg = model.config;
    const enc = new CpuEncoder(cfg, opts.maxLayers ?? cfg.num_hidden_layers, chooseThreads(opts.threads));
    try {
      await enc.build(model, opts.wasmPaths);
    } catch (e) {
      enc.destroy();
      throw e;
    }
    return enc;
  }

  private async open(bytes: Uint8Array, wasmPaths?: string): Promise<ort.InferenceSession> {
    const { session, threads } = await createSession(bytes, this.threadChoice, wasmPaths);
    this.threads = threads;
    return session;
  }

  private async build(model: LoadedModel, wasmPaths?: string): Promise<void> {
    const cfg = this.cfg;
    const read = weightReader(cfg, model.weights, this.maxLayers);
    const m3 = cfg.family === 'm3bert';
    this.emb = m3
      ? { word: read('embed_tokens.weight'), pos: read('pos_embeddings.weight'), type0: null, normW: read('input_norm.weight'), normB: null }
      : {
          word: read('embeddings.word_embeddings.weight'),
          pos: read('embeddings.position_embeddings.weight'),
          type0: cfg.type_vocab_size > 0 ? read('embeddings.token_type_embeddings.weight').slice(0, cfg.hidden_size) : null,
          normW: read('embeddings.LayerNorm.weight'),
          normB: read('embeddings.LayerNorm.bias'),
        };
    if (m3) this.finalNorm = read('norm.weight');
    // One graph at a time: its f32 copy of the weights is garbage once onnxruntime holds them.
    for (let i = 0; i < this.maxLayers; i++) this.sessions.push(await this.open(m3 ? llamaBlockGraph(cfg, read, i) : bertBlockGraph(cfg, read, i), wasmPaths));
    if (model.heads.size) {
      const h = headWeights(cfg.hidden_size, model.heads);
      this.sparse = { w: h.sparseW, b: h.sparseB };
      this.colbertN = h.Hc;
      this.colbert = await this.open(colbertGraph(cfg.hidden_size, h.colbertW, h.colbertB, h.Hc), wasmPaths);
    }
  }

  /** Embeddings → the first `layers` blocks → the exit rule, for one (B, T) batch; returns (B, T, H). */
  private async forward(batch: EncoderBatch, lengths: number[], layers: number): Promise<Float32Array> {
    const { B, T } = batch;
    const H = this.cfg.hidden_size;
    let x: ort.Tensor = new ort.Tensor('float32', embed(this.cfg, this.emb, batch), [B, T, H]); // (B, T, H)
    const lens = new ort.Tensor('int32', Int32Array.from(lengths), [B]); // (B)
    for (let i = 0; i < layers; i++) x = (await this.sessions[i].run({ [BLOCK_IO.x]: x, [BLOCK_IO.lengths]: lens }))[BLOCK_IO.y] as ort.Tensor;
    const h = x.data as Float32Array; // a copy out of the wasm heap
    if (this.finalNorm) rmsNormRows(h, B * T, H, this.finalNorm, this.cfg.norm_eps); // m3BERT's exit rule: the final norm
    return h;
  }

  /**
   * The first `o.layers` blocks on one padded batch, then every requested output from that one pass.
   * The batch runs as length groups (groups.ts), each padded to its own longest row; outputs are written
   * back at the batch's (B, T) positions, padding left zero.
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
    const all = [...this.sessions, ...(this.colbert ? [this.colbert] : [])];
    this.sessions = [];
    this.colbert = null;
    // release() is async; nothing waits on it, and a failure to free is not the caller's problem.
    for (const s of all) void s.release().catch(() => undefined);
  }
}
