import type { EncoderConfig } from '../model/config.ts';
import { BufferPool } from '../gpu/pool.ts';
import { quantBindingBytes } from '../gpu/quant-wgsl.ts';
import { weightBits, wordsPerRow } from '../model/quant.ts';
import { floatStorage, quantBitsOf, type WeightStorage } from './gpu-weights.ts';

/** The device limits that bound one storage binding and one buffer. */
export interface BufferLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export interface PlannedBuffer {
  name: string;
  /** Bytes actually allocated (activations come from the pool's power-of-two size classes). */
  bytes: number;
  /** Separate buffers it is split into so each fits one binding (1 = not split). */
  chunks: number;
  /** Its largest single binding, where that is not bytes / chunks (a quantised matrix: the codes of one chunk). */
  binding?: number;
}

export interface AllocationPlan {
  weights: PlannedBuffer[];
  activations: PlannedBuffer[];
  weightBytes: number;
  activationBytes: number;
  totalBytes: number;
  largest: PlannedBuffer;
  /** Padded tokens per batch such that every activation buffer fits one storage binding. */
  maxTokensPerBatch: number;
}

/** Row ranges of a (rows, rowBytes) table split so each chunk fits `limit` bytes. */
export function rowChunks(rows: number, rowBytes: number, limit: number): { row0: number; rows: number }[] {
  const per = Math.max(1, Math.floor(limit / rowBytes));
  const out: { row0: number; rows: number }[] = [];
  for (let r = 0; r < rows; r += per) out.push({ row0: r, rows: Math.min(per, rows - r) });
  return out;
}

/** The config sizes memory depends on (EncoderConfig has them; the planner builds one from ModelInfo). */
export type MemoryShape = Pick<EncoderConfig, 'family' | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'vocab_size' | 'max_position_embeddings' | 'type_vocab_size'>;

/** Widest per-token activation row in bytes: qkv (3H), FFN (I, or gate|up 2I for m3BERT), ColBERT projection. */
export function activationRowBytes(cfg: Pick<EncoderConfig, 'family' | 'hidden_size' | 'intermediate_size'>, colbertWidth: number | null): number {
  return 4 * Math.max(3 * cfg.hidden_size, cfg.family === 'm3bert' ? 2 * cfg.intermediate_size : cfg.intermediate_size, colbertWidth ?? 0);
}

/**
 * The engine's allocation plan for one batch of `tokens` padded tokens in `batch` sequences, computed
 * from the same shapes GpuEncoder allocates (weights uploaded once; activations per batch from the
 * pool). Large weight tables are split into row chunks that each fit one binding. `layers`: the blocks
 * uploaded (EngineOptions.maxLayers; default all). This is the one memory model: the client's planner
 * charges exactly these bytes for a plan. With 'int8' / 'q4' storage the matmul weights, the word table and
 * colbert_linear count their quantised bindings (codes, scales, zero points: src/gpu/quant-wgsl.ts), their
 * biases and every other tensor 4 bytes per value (GpuEncoder keeps those in f32).
 */
export function planAllocations(cfg: MemoryShape, o: { tokens: number; batch: number; storage: WeightStorage; limits: BufferLimits; colbertWidth?: number | null; layers?: number }): AllocationPlan {
  const H = cfg.hidden_size;
  const I = cfg.intermediate_size;
  const L = o.layers ?? cfg.num_hidden_layers;
  const m3 = cfg.family === 'm3bert';
  const el = floatStorage(o.storage) === 'f32' ? 4 : 2;
  const storageBits = quantBitsOf(o.storage);
  const bind = Math.min(o.limits.maxStorageBufferBindingSize, o.limits.maxBufferSize);
  const w = (name: string, rows: number, cols: number): PlannedBuffer => {
    const bytes = rows * cols * el;
    return { name, bytes, chunks: bytes > bind ? rowChunks(rows, cols * el, bind).length : 1 };
  };
  /**
   * A matrix GpuEncoder quantises (when the storage does), with `bias` f32 values per row beside it; `weight` is one
   * canonical name of it, for its own bits (weightBits: q4 storage keeps some matrices at int8).
   */
  const mat = (name: string, rows: number, cols: number, bias: 0 | 1, weight: string): PlannedBuffer => {
    if (!storageBits) return w(name, rows, cols + bias);
    const bits = weightBits(weight, storageBits);
    const chunks = rowChunks(rows, 4 * wordsPerRow(bits, cols), bind);
    const bytes = chunks.reduce((s, c) => s + quantBindingBytes(bits, c.rows, cols).reduce((a, b) => a + b, 0), 0) + bias * rows * 4;
    return { name, bytes, chunks: chunks.length, binding: Math.max(...quantBindingBytes(bits, chunks[0].rows, cols), bias * rows * 4) };
  };
  const weights: PlannedBuffer[] = [mat('word_embeddings', cfg.vocab_size, H, 0, m3 ? 'embed_tokens.weight' : 'embeddings.word_embeddings.weight'), w('position_embeddings', cfg.max_position_embeddings, H)];
  if (!m3 && cfg.type_vocab_size > 0) weights.push(w('token_type_embeddings', cfg.type_vocab_size, H));
  for (let i = 0; i < L; i++) {
    const b = m3 ? 0 : 1;
    const n = (bert: string, m3bert: string) => (m3 ? `layers.${i}.${m3bert}.weight` : `encoder.layer.${i}.${bert}.weight`);
    weights.push(mat(`layer.${i}.qkv`, 3 * H, H, b, n('attention.self.query', 'self_attn.q_proj')), mat(`layer.${i}.o`, H, H, b, n('attention.output.dense', 'self_attn.o_proj')));
    weights.push(mat(`layer.${i}.ffn_in`, m3 ? 2 * I : I, H, b, n('intermediate.dense', 'mlp.gate_proj')), mat(`layer.${i}.ffn_out`, H, I, b, n('output.dense', 'mlp.down_proj')));
    weights.push(w(`layer.${i}.norms`, 1, (m3 ? 2 : 4) * H));
  }
  if (o.colbertWidth) weights.push(mat('colbert_linear', o.colbertWidth, H, 1, 'colbert_linear.weight'), w('sparse_linear', 1, H + 1));
  const M = o.tokens;
  const a = (name: string, bytes: number): PlannedBuffer => ({ name, bytes: BufferPool.sizeClass(bytes), chunks: 1 });
  const activations = [
    a('ids', 4 * M),
    a('position_ids', 4 * M),
    a('lengths', 4 * o.batch),
    a('x', 4 * M * H),
    a('t0', 4 * M * H),
    a('t1', 4 * M * H),
    a('qkv', 12 * M * H),
    a('ctx', 4 * M * H),
    a('ffn', 4 * M * (m3 ? 2 * I : I)),
    ...(m3 ? [a('swiglu', 4 * M * I)] : []),
    a('pooled', 4 * o.batch * H),
    a('out', 4 * o.batch * H),
    ...(o.colbertWidth ? [a('sparse', 4 * M), a('colbert_proj', 4 * M * o.colbertWidth), a('colbert', 4 * M * o.colbertWidth)] : []),
  ];
  const sum = (xs: PlannedBuffer[]) => xs.reduce((s, x) => s + x.bytes, 0);
  const all = [...weights.map((x) => ({ ...x, bytes: x.binding ?? Math.ceil(x.bytes / x.chunks) })), ...activations];
  const largest = all.reduce((m, x) => (x.bytes > m.bytes ? x : m));
  const maxTokensPerBatch = Math.floor(bind / activationRowBytes(cfg, o.colbertWidth ?? null));
  return { weights, activations, weightBytes: sum(weights), activationBytes: sum(activations), totalBytes: sum(weights) + sum(activations), largest, maxTokensPerBatch };
}
