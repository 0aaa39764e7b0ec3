/**
 * The WebGPU encoder: weights uploaded once (gpu-encoder-upload.ts), a whole forward pass (embeddings → k blocks →
 * exit rule → pooling → truncation + L2, and the BGE-M3 heads) recorded into one command encoder, pipelines compiled
 * at warm-up only. Mirrors src/reference/encoder.ts op for op; parity is tested against it.
 */
import { scheduleFor, type KernelProgram, type KernelSchedule, type WeightDType } from '../gpu/kernel.ts';
import { attentionProgram } from '../gpu/kernels/attention.ts';
import { embeddingProgram } from '../gpu/kernels/embedding.ts';
import { gatherAddProgram } from '../gpu/kernels/gather_add.ts';
import { l2normProgram } from '../gpu/kernels/l2norm.ts';
import { layernormProgram } from '../gpu/kernels/layernorm.ts';
import { matmulProgram, type MatmulActivation } from '../gpu/kernels/matmul.ts';
import { matmulQ8Program } from '../gpu/kernels/matmul_q8.ts';
import { matmulQ4Program } from '../gpu/kernels/matmul_q4.ts';
import { embeddingQProgram, gatherAddQProgram } from '../gpu/kernels/embedding_q.ts';
import type { QuantBits } from '../model/quant.ts';
import { poolingProgram } from '../gpu/kernels/pooling.ts';
import { mclsPoolProgram } from '../gpu/kernels/mcls_pool.ts';
import { rmsnormProgram } from '../gpu/kernels/rmsnorm.ts';
import { swigluProgram } from '../gpu/kernels/swiglu.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { POOLING_MODES, type EncoderConfig } from '../model/config.ts';
import type { LoadedModel, QuantizeProgress } from '../model/load.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';
import { positionIds } from './positions.ts';
import { truncateAndNormalize } from './postprocess.ts';
import type { ResolvedEmbedOptions } from './options.ts';
import { quantBitsOf, shaderDType, type WeightStorage } from './gpu-weights.ts';
import { uploadEncoderWeights, type Block, type EncoderWeights, type Linear } from './gpu-encoder-upload.ts';
import { activationRowBytes } from './memory-plan.ts';
import type { BatchEncoder, BatchOutputs, BatchResult } from './backend.ts';

const ACT: Record<EncoderConfig['hidden_act'], MatmulActivation> = { gelu: 'gelu', gelu_tanh: 'gelu_tanh', relu: 'relu', silu: 'silu' };

export class GpuEncoder implements BatchEncoder {
  readonly backend = 'webgpu' as const;
  readonly dtype: WeightDType;
  private blocks: Block[] = [];
  /** word: the word-embedding table in row chunks that each fit one storage binding (usually one). */
  private emb!: EncoderWeights['emb'];
  private finalNorm: GPUBuffer | null = null;
  /** BGE-M3 heads: colbert_linear (Hc, H) and sparse_linear (1, H), both with bias. */
  private heads: EncoderWeights['heads'] = null;
  private buffers: GPUBuffer[] = [];
  /** Quantisation of the matmul weights and word table ('int8' / 'q4' storage), else null. */
  readonly quant: QuantBits | null;

  /** Bytes one storage binding may hold on this device (or less, when a caller lowers it). */
  readonly bindingLimit: number;
  /** Blocks uploaded: a device that will only ever run k layers need not hold the rest. */
  readonly maxLayers: number;
  /** Matmul, attention and norm layout (KernelSchedule): by adapter unless the caller forced one. */
  readonly schedule: KernelSchedule;

  private constructor(
    readonly rt: GpuRuntime,
    readonly cfg: EncoderConfig,
    readonly storage: WeightStorage,
    maxBindingBytes?: number,
    maxLayers?: number,
    schedule?: KernelSchedule,
  ) {
    this.dtype = shaderDType(storage, rt.hasF16);
    this.quant = quantBitsOf(storage);
    this.maxLayers = maxLayers ?? cfg.num_hidden_layers;
    this.schedule = schedule ?? scheduleFor(rt.fallbackAdapter);
    const l = rt.device.limits;
    this.bindingLimit = Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize, maxBindingBytes ?? Infinity);
  }

  /** Uploads the model's weights and compiles every pipeline the encoder can use. */
  static async create(rt: GpuRuntime, model: LoadedModel, storage: WeightStorage, opts: { maxBindingBytes?: number; maxLayers?: number; schedule?: KernelSchedule; onProgress?: (p: QuantizeProgress) => void } = {}): Promise<GpuEncoder> {
    const enc = new GpuEncoder(rt, model.config, storage, opts.maxBindingBytes, opts.maxLayers, opts.schedule);
    try {
      const w = uploadEncoderWeights(rt, model, { storage, bindingLimit: enc.bindingLimit, maxLayers: enc.maxLayers, onProgress: opts.onProgress }, enc.buffers);
      [enc.emb, enc.blocks, enc.finalNorm, enc.heads] = [w.emb, w.blocks, w.finalNorm, w.heads];
      await enc.warmup();
    } catch (e) {
      // A missing or misshapen tensor half-way through the upload: free what was already on the device.
      enc.destroy();
      throw e;
    }
    return enc;
  }

  /** Every activation buffer of a batch must fit one storage binding: padded tokens are capped accordingly. */
  get batchTokenCap(): number {
    return Math.floor(this.bindingLimit / activationRowBytes(this.cfg, this.colbertWidth));
  }

  /** Width of the ColBERT vectors (colbert_linear's out_features), or null without BGE-M3 heads. */
  get colbertWidth(): number | null {
    return this.heads?.colbert.N ?? null;
  }

  // ---- programs (shape-free cache keys; shapes only in uniforms) ----
  private mm(M: number, l: Linear, activation: MatmulActivation, residual: boolean): KernelProgram {
    const shape = { M, N: l.N, K: l.K };
    const attrs = { bias: l.b !== null, activation, residual, schedule: this.schedule };
    return l.bits === 8 ? matmulQ8Program(shape, attrs) : l.bits === 4 ? matmulQ4Program(shape, attrs) : matmulProgram(shape, { ...attrs, wDtype: this.dtype });
  }
  /** The embedding gather of the first word-table chunk, and the add of each further one. */
  private embed(M: number, wordRows: number): KernelProgram {
    const H = this.cfg.hidden_size;
    const tokenType = this.emb.type !== null;
    const bits = this.emb.wordBits;
    return bits ? embeddingQProgram({ M, H, wordRows }, { bits, pDtype: this.dtype, tokenType }) : embeddingProgram({ M, H, wordRows }, { wDtype: this.dtype, tokenType });
  }
  private gatherAdd(M: number, row0: number, rows: number): KernelProgram {
    const H = this.cfg.hidden_size;
    const bits = this.emb.wordBits;
    return bits ? gatherAddQProgram({ M, H, row0, rows }, { bits }) : gatherAddProgram({ M, H, row0, rows }, { wDtype: this.dtype });
  }
  /** The family's norm; residuals are fused into the matmul before it (matmul `residual`). */
  private norm(M: number): KernelProgram {
    const H = this.cfg.hidden_size;
    return this.cfg.family === 'm3bert' ? rmsnormProgram({ M, H }, { wDtype: this.dtype, eps: this.cfg.norm_eps, schedule: this.schedule }) : layernormProgram({ M, H }, { wDtype: this.dtype, eps: this.cfg.norm_eps, schedule: this.schedule });
  }

  /** Every program a forward pass may use, at a dummy shape: cache keys do not depend on shapes. */
  private allPrograms(): KernelProgram[] {
    const H = this.cfg.hidden_size;
    const b = this.blocks[0];
    const act = ACT[this.cfg.hidden_act];
    const m3 = this.cfg.family === 'm3bert';
    return [
      this.embed(1, 1),
      ...(this.emb.word.length > 1 ? [this.gatherAdd(1, 0, 1)] : []),
      this.norm(1),
      this.mm(1, b.qkv, 'none', false),
      attentionProgram({ B: 1, T: 1, H, heads: this.cfg.num_attention_heads }, { schedule: this.schedule }),
      this.mm(1, b.o, 'none', true),
      this.mm(1, b.ffnIn, m3 ? 'none' : act, false),
      this.mm(1, b.ffnOut, 'none', true),
      ...(m3 ? [swigluProgram({ M: 1, I: this.cfg.intermediate_size })] : []),
      ...POOLING_MODES.map((mode) => poolingProgram({ B: 1, T: 1, H }, { mode })),
      mclsPoolProgram({ B: 1, T: 1, H, clsId: 0 }),
      l2normProgram({ rows: 1, cols: H, d: H }, { normalize: true }),
      l2normProgram({ rows: 1, cols: H, d: H }, { normalize: false }),
      ...(this.heads ? [this.mm(1, this.heads.sparse, 'relu', false), this.mm(1, this.heads.colbert, 'none', false)] : []),
    ];
  }

  async warmup(): Promise<void> {
    await Promise.all(this.allPrograms().map((p) => this.rt.prepare(p)));
  }

  /**
   * Runs the first `o.layers` blocks on one padded batch, then every requested output from that one
   * pass. The caller validated ids and options (and that heads exist when sparse/colbert are asked).
   */
  async embedBatch(batch: EncoderBatch, lengths: number[], o: ResolvedEmbedOptions, want: BatchOutputs = { dense: true }): Promise<BatchResult> {
    // The scratch buffers go back to the pool however the call ends: a failed recording, or a readback
    // that rejects (mapAsync on a lost device). WebGPU orders later submissions after this one's work.
    const scratch: GPUBuffer[] = [];
    try {
      return await this.encodeBatch(batch, lengths, o, want, scratch);
    } finally {
      for (const s of scratch) this.rt.pool.release(s);
    }
  }

  private async encodeBatch(batch: EncoderBatch, lengths: number[], o: ResolvedEmbedOptions, want: BatchOutputs, scratch: GPUBuffer[]): Promise<BatchResult> {
    const { rt, cfg } = this;
    const { B, T } = batch;
    const H = cfg.hidden_size;
    const I = cfg.intermediate_size;
    const M = B * T;
    const m3 = cfg.family === 'm3bert';
    const f32 = (n: number, label: string) => {
      const buf = rt.pool.acquire(n * 4, label);
      scratch.push(buf);
      return buf;
    };
    const u32 = (data: Uint32Array<ArrayBuffer>, label: string) => {
      const buf = rt.pool.acquire(data.byteLength, label);
      rt.device.queue.writeBuffer(buf, 0, data);
      scratch.push(buf);
      return buf;
    };
    const ids = u32(Uint32Array.from(batch.inputIds), 'ids'); // (B, T)
    const pos = u32(positionIds(cfg, batch), 'position_ids'); // (B, T)
    const lens = u32(Uint32Array.from(lengths), 'lengths'); // (B)
    const x = f32(M * H, 'x'); // (B, T, H) residual stream
    const t0 = f32(M * H, 't0'); // (M, H) scratch
    const t1 = f32(M * H, 't1'); // (M, H) scratch
    const qkv = f32(M * 3 * H, 'qkv'); // (M, 3H)
    const ctx = f32(M * H, 'ctx'); // (M, H)
    const ffn = f32(M * (m3 ? 2 * I : I), 'ffn'); // (M, I) or (M, 2I) gate|up
    const act = m3 ? f32(M * I, 'swiglu') : ffn; // (M, I)
    const pooled = f32(B * H, 'pooled'); // (B, H)
    const out = f32(B * o.dims, 'out'); // (B, d)

    const enc = rt.device.createCommandEncoder();
    const { run, end } = rt.dispatcher(enc);
    const w = this.emb;
    // Embeddings → norm (LayerNorm, or m3BERT's input_norm RMSNorm).
    const [first, ...rest] = w.word;
    run(this.embed(M, first.rows), [ids, pos, ...first.bufs, w.pos, ...(w.type ? [w.type] : []), t0]);
    for (const c of rest) run(this.gatherAdd(M, c.row0, c.rows), [ids, ...c.bufs, t0]);
    run(this.norm(M), [t0, w.norm.w, ...(w.norm.b ? [w.norm.b] : []), x]);
    const attn = attentionProgram({ B, T, H, heads: cfg.num_attention_heads }, { schedule: this.schedule });
    for (let i = 0; i < o.layers; i++) {
      const b = this.blocks[i];
      const lin = (l: Linear) => [...l.w, ...(l.b ? [l.b] : [])];
      if (m3) {
        // h = x + o(attn(RMS(x)));  x' = h + down(silu(gate(RMS(h))) * up(RMS(h)))
        run(this.norm(M), [x, b.norm1.w, t0]);
        run(this.mm(M, b.qkv, 'none', false), [t0, ...lin(b.qkv), qkv]);
        run(attn, [qkv, lens, ctx]);
        run(this.mm(M, b.o, 'none', true), [ctx, ...lin(b.o), x, t1]); // t1 = h
        run(this.norm(M), [t1, b.norm2.w, t0]);
        run(this.mm(M, b.ffnIn, 'none', false), [t0, ...lin(b.ffnIn), ffn]);
        run(swigluProgram({ M, I }), [ffn, act]);
        run(this.mm(M, b.ffnOut, 'none', true), [act, ...lin(b.ffnOut), t1, x]);
      } else {
        // h = LN(x + o(attn(x)));  x' = LN(h + W2 act(W1 h))
        run(this.mm(M, b.qkv, 'none', false), [x, ...lin(b.qkv), qkv]);
        run(attn, [qkv, lens, ctx]);
        run(this.mm(M, b.o, 'none', true), [ctx, ...lin(b.o), x, t0]);
        run(this.norm(M), [t0, b.norm1.w, b.norm1.b!, t1]); // t1 = h
        run(this.mm(M, b.ffnIn, ACT[cfg.hidden_act], false), [t1, ...lin(b.ffnIn), ffn]);
        run(this.mm(M, b.ffnOut, 'none', true), [act, ...lin(b.ffnOut), t1, t0]);
        run(this.norm(M), [t0, b.norm2.w, b.norm2.b!, x]);
      }
    }
    let exit = x;
    if (m3) {
      run(this.norm(M), [x, this.finalNorm!, t0]);
      exit = t0;
    }
    if (want.dense) {
      // MCLS: every sequence starts with the CLS id the engine inserted every o.mcls tokens.
      if (o.mcls) run(mclsPoolProgram({ B, T, H, clsId: batch.inputIds[0] }), [exit, ids, lens, pooled]);
      else run(poolingProgram({ B, T, H }, { mode: o.pooling }), [exit, lens, pooled]);
      // nomic-style pre-truncation layer norm is applied on the CPU after readback (B × H values).
      if (!o.layerNormBeforeTruncate) run(l2normProgram({ rows: B, cols: H, d: o.dims }, { normalize: o.normalize }), [pooled, out]);
    }
    // BGE-M3 heads on the exit hidden states of every token (Chen et al. 2024 §3.2; FlagEmbedding m3.py).
    const heads = this.heads;
    const tokenWeights = want.sparse && heads ? f32(M, 'sparse') : null; // (M) relu(h · w + b)
    if (tokenWeights) run(this.mm(M, heads!.sparse, 'relu', false), [exit, ...heads!.sparse.w, heads!.sparse.b!, tokenWeights]);
    let colbert: GPUBuffer | null = null;
    const cd = want.colbertDims ?? heads?.colbert.N ?? 0;
    if (want.colbert && heads) {
      const proj = f32(M * heads.colbert.N, 'colbert_proj'); // (M, Hc)
      colbert = f32(M * cd, 'colbert'); // (M, cd): truncated, then L2-normalised per token
      run(this.mm(M, heads.colbert, 'none', false), [exit, ...heads.colbert.w, heads.colbert.b!, proj]);
      run(l2normProgram({ rows: M, cols: heads.colbert.N, d: cd }, { normalize: true }), [proj, colbert]);
    }
    end();
    rt.submit(enc);
    const result: BatchResult = {};
    if (want.dense) {
      result.dense = o.layerNormBeforeTruncate ? truncateAndNormalize(await rt.readF32(pooled, B * H), B, H, { dims: o.dims, normalize: o.normalize, layerNormBeforeTruncate: true }) : await rt.readF32(out, B * o.dims);
    }
    if (tokenWeights) result.tokenWeights = await rt.readF32(tokenWeights, M);
    if (colbert) result.colbert = { data: await rt.readF32(colbert, M * cd), dim: cd };
    return result;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers = [];
    // The pooled activations were sized for this model; another engine's in-use buffers are not idle, so they stay.
    this.rt.pool.trim();
  }
}
