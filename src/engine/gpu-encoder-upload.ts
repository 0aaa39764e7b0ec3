/**
 * The WebGPU encoder's weights (src/engine/gpu-encoder.ts runs the forward pass over them): every tensor of the
 * embeddings, the first `maxLayers` blocks and the BGE-M3 heads uploaded once, in the storage asked for (f32, f16,
 * or int8 / q4 matmul weights and word table: src/model/QUANT.md), q;k;v and gate;up fused into one matrix each.
 * Apart from the forward pass because it is the only code that reads tensor names and quantises.
 */
import type { GpuRuntime } from '../gpu/runtime.ts';
import { quantBindingData } from '../gpu/quant-wgsl.ts';
import { WeightError } from '../errors.ts';
import type { EncoderConfig } from '../model/config.ts';
import type { LoadedModel, QuantizeProgress } from '../model/load.ts';
import { concatRows, isQuantizedWeight, quantizeWeight, sliceRows, wordsPerRow, type QuantBits, type QuantizedMatrix } from '../model/quant.ts';
import type { RawTensor } from '../model/tensor.ts';
import { encoderWeightSpecs, headWeightSpecs, pickWeight } from '../model/weights.ts';
import { floatStorage, quantBitsOf, uploadWeights, type WeightStorage } from './gpu-weights.ts';
import { rowChunks } from './memory-plan.ts';

export interface Linear {
  /** W's bindings: one float buffer, or a quantised matrix's 2 (int8) or 3 (q4) (src/gpu/quant-wgsl.ts). */
  w: GPUBuffer[];
  /** W's quantisation, or null for float storage. */
  bits: QuantBits | null;
  b: GPUBuffer | null;
  N: number;
  K: number;
}

/** One block's GPU buffers. bert/xlm-roberta: post-LN; m3bert: pre-norm Llama block. */
export interface Block {
  qkv: Linear; // fused q;k;v → (3H, H)
  o: Linear;
  ffnIn: Linear; // bert: intermediate (I, H); m3bert: gate;up fused (2I, H)
  ffnOut: Linear; // (H, I)
  norm1: { w: GPUBuffer; b: GPUBuffer | null }; // bert: attention.output.LayerNorm; m3bert: input_layernorm
  norm2: { w: GPUBuffer; b: GPUBuffer | null }; // bert: output.LayerNorm; m3bert: post_attention_layernorm
}

/** Row chunks of a (V, H) table that each fit one storage binding (usually one chunk). */
export type WordChunk = { bufs: GPUBuffer[]; row0: number; rows: number };

export interface EncoderWeights {
  emb: { word: WordChunk[]; wordBits: QuantBits | null; pos: GPUBuffer; type: GPUBuffer | null; norm: { w: GPUBuffer; b: GPUBuffer | null } };
  blocks: Block[];
  /** m3bert's final RMSNorm; null for bert/xlm-roberta (post-LN blocks end normalised). */
  finalNorm: GPUBuffer | null;
  /** BGE-M3 heads: colbert_linear (Hc, H) and sparse_linear (1, H), both with bias. */
  heads: { colbert: Linear; sparse: Linear } | null;
}

export interface UploadOptions {
  storage: WeightStorage;
  /** Bytes one storage binding may hold. */
  bindingLimit: number;
  /** Blocks to upload. */
  maxLayers: number;
  /** One report per quantised weight (storage 'int8' / 'q4'). */
  onProgress?: (p: QuantizeProgress) => void;
}

/**
 * Uploads `model`'s weights. Every buffer created goes into `buffers` as it is created, so the caller can
 * free what is already on the device when a missing or misshapen tensor throws half-way.
 */
export function uploadEncoderWeights(rt: GpuRuntime, model: LoadedModel, o: UploadOptions, buffers: GPUBuffer[]): EncoderWeights {
  const u = new Uploader(rt, model, o, buffers);
  const encoder = u.encoder(model.weights);
  return { ...encoder, heads: model.heads.size ? u.heads(model.heads) : null };
}

class Uploader {
  private readonly cfg: EncoderConfig;
  private readonly storage: WeightStorage;
  /** Quantisation of the matmul weights and word table ('int8' / 'q4' storage), else null. */
  private readonly quant: QuantBits | null;
  private readonly bindingLimit: number;
  private readonly maxLayers: number;
  /** Pre-quantised matrices from the model folder (LoadedModel.quantized), by weight name. */
  private readonly prequantized: Map<string, QuantizedMatrix>;
  private readonly onQuantize?: (p: QuantizeProgress) => void;
  private quantDone = 0;
  private readonly quantTotal: number = 0;

  constructor(
    private readonly rt: GpuRuntime,
    model: LoadedModel,
    o: UploadOptions,
    private readonly buffers: GPUBuffer[],
  ) {
    this.cfg = model.config;
    this.storage = o.storage;
    this.quant = quantBitsOf(o.storage);
    this.bindingLimit = o.bindingLimit;
    this.maxLayers = o.maxLayers;
    this.prequantized = model.quantized ?? new Map();
    this.onQuantize = o.onProgress;
    if (this.quant) this.quantTotal = encoderWeightSpecs(model.config, this.maxLayers).filter((w) => isQuantizedWeight(w.name)).length + (model.heads.size ? 1 : 0);
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
   * Weight `name` (a (rows, cols) matrix) quantised: as the folder stored it (its own bits: a q4 folder keeps some
   * weights at 8, QUANT.md), or quantised here from its f32/f16/bf16 tensor with weightBits(name, storage bits),
   * with a progress report per weight. The matrix's own bits pick its kernel.
   */
  private quantized(name: string, t: RawTensor | undefined): QuantizedMatrix {
    const pre = this.prequantized.get(name);
    let q = pre;
    if (!q) {
      if (!t) throw new WeightError(`missing weight "${name}"`, { expected: 'a float tensor or its quantised form (src/model/QUANT.md)', received: 'neither' });
      q = quantizeWeight(name, t, this.quant!);
    } else if (q.bits < this.quant!) {
      throw new WeightError(`weight "${name}" is stored with ${q.bits} bits`, { expected: `${this.quant} bits or more (the storage asked for)`, received: `${q.bits} bits` });
    }
    this.onQuantize?.({ phase: 'quantize', name, done: ++this.quantDone, total: this.quantTotal, prequantized: pre !== undefined });
    return q;
  }

  /** Uploads a (V, H) table in row chunks that each fit one binding (bge-m3's 250,002 × 1024 may not), quantised when the storage is. */
  private upChunked(name: string, t: RawTensor | undefined, label: string): { word: { bufs: GPUBuffer[]; row0: number; rows: number }[]; wordBits: QuantBits | null } {
    if (this.quant) {
      const q = this.quantized(name, t);
      // The codes are each chunk's widest binding (int8 scales: 4 B per row; q4 scales and zeros: < codes).
      return { word: rowChunks(q.rows, 4 * wordsPerRow(q.bits, q.cols), this.bindingLimit).map(({ row0, rows }) => ({ bufs: this.upQuant(sliceRows(q, row0, rows), `${label}[${row0}..${row0 + rows})`), row0, rows })), wordBits: q.bits };
    }
    const [V, H] = t!.shape;
    const el = t!.dtype === 'f32' ? 4 : 2;
    const stored = this.storage === 'f32' ? 4 : 2;
    const word = rowChunks(V, H * stored, this.bindingLimit).map(({ row0, rows }) => ({
      bufs: [this.up([{ dtype: t!.dtype, shape: [rows, H], data: t!.data.subarray(row0 * H * el, (row0 + rows) * H * el) }], `${label}[${row0}..${row0 + rows})`)],
      row0,
      rows,
    }));
    return { word, wordBits: null };
  }

  /** The embeddings, the first maxLayers blocks and (m3bert) the final norm. */
  encoder(weights: Map<string, RawTensor>): Omit<EncoderWeights, 'heads'> {
    const blocks: Block[] = [];
    const specs = new Map(encoderWeightSpecs(this.cfg).map((s) => [s.name, s]));
    const t = (name: string) => pickWeight(weights, specs.get(name)!);
    // A quantised weight may come pre-quantised (no float tensor in the folder): its shape was checked by the loader.
    const tq = (name: string) => (this.prequantized.has(name) ? undefined : t(name));
    const H = this.cfg.hidden_size;
    const I = this.cfg.intermediate_size;
    const linear = (names: string[], biases: string[] | null, N: number, K: number): Linear => {
      // Quantisation is per row, so quantising q, k and v apart and stacking them equals quantising the stack
      // (concatRows: InvalidInputError if a folder stored the parts with different bits).
      const q = this.quant && isQuantizedWeight(names[0]) ? concatRows(names.map((n) => this.quantized(n, tq(n)))) : null;
      return {
        w: q ? this.upQuant(q, names[0]) : [this.up(names.map(t), names[0])],
        bits: q ? q.bits : null,
        b: biases ? this.up(biases.map(t), biases[0]) : null,
        N,
        K,
      };
    };
    if (this.cfg.family === 'm3bert') {
      const emb = {
        ...this.upChunked('embed_tokens.weight', tq('embed_tokens.weight'), 'embed_tokens'),
        pos: this.up([t('pos_embeddings.weight')], 'pos_embeddings'),
        type: null,
        norm: { w: this.up([t('input_norm.weight')], 'input_norm'), b: null },
      };
      for (let i = 0; i < this.maxLayers; i++) {
        const p = `layers.${i}`;
        blocks.push({
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
      return { emb, blocks, finalNorm: this.up([t('norm.weight')], 'norm') };
    }
    const ln = (p: string) => ({ w: this.up([t(`${p}.weight`)], p), b: this.up([t(`${p}.bias`)], p) });
    const emb = {
      ...this.upChunked('embeddings.word_embeddings.weight', tq('embeddings.word_embeddings.weight'), 'word_embeddings'),
      pos: this.up([t('embeddings.position_embeddings.weight')], 'position_embeddings'),
      type: this.cfg.type_vocab_size > 0 ? this.up([t('embeddings.token_type_embeddings.weight')], 'token_type_embeddings') : null,
      norm: ln('embeddings.LayerNorm'),
    };
    for (let i = 0; i < this.maxLayers; i++) {
      const p = `encoder.layer.${i}`;
      const qkv = ['query', 'key', 'value'].map((x) => `${p}.attention.self.${x}`);
      blocks.push({
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
    return { emb, blocks, finalNorm: null };
  }

  /** BGE-M3's colbert_linear (quantised with the encoder's matmuls) and sparse_linear (always float). */
  heads(heads: Map<string, RawTensor>): NonNullable<EncoderWeights['heads']> {
    const H = this.cfg.hidden_size;
    const Hc = heads.get('colbert_linear.weight')?.shape[0] ?? this.prequantized.get('colbert_linear.weight')?.rows ?? H;
    const specs = headWeightSpecs(H, Hc);
    const [cb, sw, sb] = specs.slice(1).map((s) => pickWeight(heads, s));
    const colbertQ = this.quant ? this.quantized('colbert_linear.weight', this.prequantized.has('colbert_linear.weight') ? undefined : pickWeight(heads, specs[0])) : null;
    const colbertW = colbertQ ? this.upQuant(colbertQ, 'colbert_linear') : [this.up([pickWeight(heads, specs[0])], 'colbert_linear.weight')];
    return {
      colbert: { w: colbertW, bits: colbertQ ? colbertQ.bits : null, b: this.up([cb], 'colbert_linear.bias'), N: Hc, K: H },
      sparse: { w: [this.up([sw], 'sparse_linear.weight')], bits: null, b: this.up([sb], 'sparse_linear.bias'), N: 1, K: H },
    };
  }
}
