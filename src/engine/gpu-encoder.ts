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
import { quantBindingData } from '../gpu/quant-wgsl.ts';
import { concatRows, isQuantizedWeight, quantize, sliceRows, wordsPerRow, type QuantBits, type QuantizedMatrix } from '../model/quant.ts';
import { toFloat32 } from '../model/tensor.ts';
import { WeightError } from '../errors.ts';
import { poolingProgram } from '../gpu/kernels/pooling.ts';
import { mclsPoolProgram } from '../gpu/kernels/mcls_pool.ts';
import { rmsnormProgram } from '../gpu/kernels/rmsnorm.ts';
import { swigluProgram } from '../gpu/kernels/swiglu.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { POOLING_MODES, type EncoderConfig } from '../model/config.ts';
import type { LoadedModel, QuantizeProgress } from '../model/load.ts';
import type { RawTensor } from '../model/tensor.ts';
import { encoderWeightSpecs, headWeightSpecs, pickWeight } from '../model/weights.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';
import { positionIds } from './positions.ts';
import { truncateAndNormalize } from './postprocess.ts';
import type { ResolvedEmbedOptions } from './options.ts';
import { floatStorage, quantBitsOf, shaderDType, uploadWeights, type WeightStorage } from './gpu-weights.ts';
import { activationRowBytes, rowChunks } from './memory-plan.ts';
import type { BatchEncoder, BatchOutputs, BatchResult } from './backend.ts';

interface Linear {
  /** W's bindings: one float buffer, or a quantised matrix's 2 (int8) or 3 (q4) (src/gpu/quant-wgsl.ts). */
  w: GPUBuffer[];
  /** W's quantisation, or null for float storage. */
  bits: QuantBits | null;
  b: GPUBuffer | null;
  N: number;
  K: number;
}

/** One block's GPU buffers. bert/xlm-roberta: post-LN; m3bert: pre-norm Llama block. */
interface Block {
  qkv: Linear; // fused q;k;v → (3H, H)
  o: Linear;
  ffnIn: Linear; // bert: intermediate (I, H); m3bert: gate;up fused (2I, H)
  ffnOut: Linear; // (H, I)
  norm1: { w: GPUBuffer; b: GPUBuffer | null }; // bert: attention.output.LayerNorm; m3bert: input_layernorm
  norm2: { w: GPUBuffer; b: GPUBuffer | null }; // bert: output.LayerNorm; m3bert: post_attention_layernorm
}

const ACT: Record<EncoderConfig['hidden_act'], MatmulActivation> = { gelu: 'gelu', gelu_tanh: 'gelu_tanh', relu: 'relu', silu: 'silu' };

/**
 * The WebGPU encoder: weights uploaded once, a whole forward pass (embeddings → k blocks → exit rule →
 * pooling → truncation + L2) recorded into one command encoder, pipelines compiled at warm-up only.
 * Mirrors src/reference/encoder.ts op for op; parity is tested against it.
 */
export class GpuEncoder implements BatchEncoder {
  readonly backend = 'webgpu' as const;
  readonly dtype: WeightDType;
  private blocks: Block[] = [];
  /** word: the word-embedding table in row chunks that each fit one storage binding (usually one). */
  private emb!: { word: { bufs: GPUBuffer[]; row0: number; rows: number }[]; wordBits: QuantBits | null; pos: GPUBuffer; type: GPUBuffer | null; norm: { w: GPUBuffer; b: GPUBuffer | null } };
  private finalNorm: GPUBuffer | null = null;
  /** BGE-M3 heads: colbert_linear (Hc, H) and sparse_linear (1, H), both with bias. */
  private heads: { colbert: Linear; sparse: Linear } | null = null;
  private buffers: GPUBuffer[] = [];
  /** Quantisation of the matmul weights and word table ('int8' / 'q4' storage), else null. */
  readonly quant: QuantBits | null;
  /** Pre-quantised matrices from the model folder (LoadedModel.quantized), by weight name. */
  private prequantized: Map<string, QuantizedMatrix> = new Map();
  private onQuantize?: (p: QuantizeProgress) => void;
  private quantDone = 0;
  private quantTotal = 0;

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
    enc.prequantized = model.quantized ?? new Map();
    enc.onQuantize = opts.onProgress;
    if (enc.quant) enc.quantTotal = encoderWeightSpecs(model.config, enc.maxLayers).filter((w) => isQuantizedWeight(w.name)).length + (model.heads.size ? 1 : 0);
    try {
      enc.upload(model.weights);
      if (model.heads.size) enc.uploadHeads(model.heads);
      await enc.warmup();
    } catch (e) {
      // A missing or misshapen tensor half-way through the upload: free what was already on the device.
      enc.destroy();
      throw e;
    }
    return enc;
  }

  private up(parts: RawTensor[], label: string): GPUBuffer {
    const b = uploadWeights(this.rt, parts, floatStorage(this.storage), label);
    this.buffers.push(b);
    return b;
  }

  /** Uploads a quantised matrix's bindings (codes, scales, [zero points]). */
  private upQuant(q: QuantizedMatrix, label: string): GPUBuffer[] {
    return quantBindingData(q).map((data, i) => {
      const b = this.rt.upload(data, `${label}${['.qweight', '.scales', '.qzeros'][i]}`);
      this.buffers.push(b);
      return b;
    });
  }

  /**
   * Weight `name` (a (rows, cols) matrix) quantised with this encoder's bits: as the folder stored it, or
   * quantised here from its f32/f16/bf16 tensor (quant.ts), with a progress report per weight.
   */
  private quantized(name: string, t: RawTensor | undefined): QuantizedMatrix {
    const pre = this.prequantized.get(name);
    let q = pre;
    if (!q) {
      if (!t) throw new WeightError(`missing weight "${name}"`, { expected: 'a float tensor or its quantised form (src/model/QUANT.md)', received: 'neither' });
      q = quantize(toFloat32(t), t.shape[0], t.shape[1], this.quant!);
    } else if (q.bits !== this.quant) {
      throw new WeightError(`weight "${name}" is stored with ${q.bits} bits`, { expected: `${this.quant} bits (the storage asked for)`, received: `${q.bits} bits` });
    }
    this.onQuantize?.({ phase: 'quantize', name, done: ++this.quantDone, total: this.quantTotal, prequantized: pre !== undefined });
    return q;
  }

  /** Uploads a (V, H) table in row chunks that each fit one binding (bge-m3's 250,002 × 1024 may not), quantised when the storage is. */
  private upChunked(name: string, t: RawTensor | undefined, label: string): { bufs: GPUBuffer[]; row0: number; rows: number }[] {
    if (this.quant) {
      const q = this.quantized(name, t);
      // The codes are each chunk's widest binding (int8 scales: 4 B per row; q4 scales and zeros: < codes).
      return rowChunks(q.rows, 4 * wordsPerRow(q.bits, q.cols), this.bindingLimit).map(({ row0, rows }) => ({ bufs: this.upQuant(sliceRows(q, row0, rows), `${label}[${row0}..${row0 + rows})`), row0, rows }));
    }
    const [V, H] = t!.shape;
    const el = t!.dtype === 'f32' ? 4 : 2;
    const stored = this.storage === 'f32' ? 4 : 2;
    return rowChunks(V, H * stored, this.bindingLimit).map(({ row0, rows }) => ({
      bufs: [this.up([{ dtype: t!.dtype, shape: [rows, H], data: t!.data.subarray(row0 * H * el, (row0 + rows) * H * el) }], `${label}[${row0}..${row0 + rows})`)],
      row0,
      rows,
    }));
  }

  private upload(weights: Map<string, RawTensor>): void {
    const specs = new Map(encoderWeightSpecs(this.cfg).map((s) => [s.name, s]));
    const t = (name: string) => pickWeight(weights, specs.get(name)!);
    // A quantised weight may come pre-quantised (no float tensor in the folder): its shape was checked by the loader.
    const tq = (name: string) => (this.prequantized.has(name) ? undefined : t(name));
    const H = this.cfg.hidden_size;
    const I = this.cfg.intermediate_size;
    const linear = (names: string[], biases: string[] | null, N: number, K: number): Linear => {
      const bits = this.quant && isQuantizedWeight(names[0]) ? this.quant : null;
      return {
        // Quantisation is per row, so quantising q, k and v apart and stacking them equals quantising the stack.
        w: bits ? this.upQuant(concatRows(names.map((n) => this.quantized(n, tq(n)))), names[0]) : [this.up(names.map(t), names[0])],
        bits,
        b: biases ? this.up(biases.map(t), biases[0]) : null,
        N,
        K,
      };
    };
    const wordBits = this.quant;
    if (this.cfg.family === 'm3bert') {
      this.emb = {
        word: this.upChunked('embed_tokens.weight', tq('embed_tokens.weight'), 'embed_tokens'),
        wordBits,
        pos: this.up([t('pos_embeddings.weight')], 'pos_embeddings'),
        type: null,
        norm: { w: this.up([t('input_norm.weight')], 'input_norm'), b: null },
      };
      for (let i = 0; i < this.maxLayers; i++) {
        const p = `layers.${i}`;
        this.blocks.push({
          qkv: linear(
            ['q', 'k', 'v'].map((x) => `${p}.self_attn.${x}_proj.weight`),
            null,
            3 * H,
            H,
          ),
          o: linear([`${p}.self_attn.o_proj.weight`], null, H, H),
          ffnIn: linear([`${p}.mlp.gate_proj.weight`, `${p}.mlp.up_proj.weight`], null, 2 * I, H),
          ffnOut: linear([`${p}.mlp.down_proj.weight`], null, H, I),
          norm1: { w: this.up([t(`${p}.input_layernorm.weight`)], 'input_layernorm'), b: null },
          norm2: { w: this.up([t(`${p}.post_attention_layernorm.weight`)], 'post_attention_layernorm'), b: null },
        });
      }
      this.finalNorm = this.up([t('norm.weight')], 'norm');
      return;
    }
    const ln = (p: string) => ({ w: this.up([t(`${p}.weight`)], p), b: this.up([t(`${p}.bias`)], p) });
    this.emb = {
      word: this.upChunked('embeddings.word_embeddings.weight', tq('embeddings.word_embeddings.weight'), 'word_embeddings'),
      wordBits,
      pos: this.up([t('embeddings.position_embeddings.weight')], 'position_embeddings'),
      type: this.cfg.type_vocab_size > 0 ? this.up([t('embeddings.token_type_embeddings.weight')], 'token_type_embeddings') : null,
      norm: ln('embeddings.LayerNorm'),
    };
    for (let i = 0; i < this.maxLayers; i++) {
      const p = `encoder.layer.${i}`;
      const qkv = ['query', 'key', 'value'].map((x) => `${p}.attention.self.${x}`);
      this.blocks.push({
        qkv: linear(
          qkv.map((n) => `${n}.weight`),
          qkv.map((n) => `${n}.bias`),
          3 * H,
          H,
        ),
        o: linear([`${p}.attention.output.dense.weight`], [`${p}.attention.output.dense.bias`], H, H),
        ffnIn: linear([`${p}.intermediate.dense.weight`], [`${p}.intermediate.dense.bias`], I, H),
        ffnOut: linear([`${p}.output.dense.weight`], [`${p}.output.dense.bias`], H, I),
        norm1: ln(`${p}.attention.output.LayerNorm`),
        norm2: ln(`${p}.output.LayerNorm`),
      });
    }
  }

  private uploadHeads(heads: Map<string, RawTensor>): void {
    const H = this.cfg.hidden_size;
    const Hc = heads.get('colbert_linear.weight')?.shape[0] ?? this.prequantized.get('colbert_linear.weight')?.rows ?? H;
    const specs = headWeightSpecs(H, Hc);
    const [cb, sw, sb] = specs.slice(1).map((s) => pickWeight(heads, s));
    const colbertW = this.quant
      ? this.upQuant(this.quantized('colbert_linear.weight', this.prequantized.has('colbert_linear.weight') ? undefined : pickWeight(heads, specs[0])), 'colbert_linear')
      : [this.up([pickWeight(heads, specs[0])], 'colbert_linear.weight')];
    this.heads = {
      colbert: { w: colbertW, bits: this.quant, b: this.up([cb], 'colbert_linear.bias'), N: Hc, K: H },
      sparse: { w: [this.up([sw], 'sparse_linear.weight')], bits: null, b: this.up([sb], 'sparse_linear.bias'), N: 1, K: H },
    };
  }

  /** Width of the ColBERT vectors (colbert_linear's out_features), or null without BGE-M3 heads. */
  /** Every activation buffer of a batch must fit one storage binding: padded tokens are capped accordingly. */
  get batchTokenCap(): number {
    return Math.floor(this.bindingLimit / activationRowBytes(this.cfg, this.colbertWidth));
  }

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
