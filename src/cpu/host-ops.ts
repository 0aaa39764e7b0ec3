/**
 * The CPU backend's cheap steps, in plain TypeScript: each touches B·T·H values once (the blocks, at
 * O(B·T·H²), run in onnxruntime). Same formulas as the GPU kernels (src/gpu/kernels/*.ts), accumulated in
 * JS doubles and stored as f32: embeddings, norms, pooling, Matryoshka truncation + L2, the sparse head.
 */
import type { EncoderConfig, Pooling } from '../model/config.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';

// Position ids: the engine's one rule (src/engine/positions.ts): XLM-R counts `input_ids != padding_idx`,
// as transformers' create_position_ids_from_input_ids, so a literal <pad> inside a text gets padding_idx.
import { positionIds } from '../engine/positions.ts';

/** In place over (M, H): LayerNorm (biased variance, torch.nn.LayerNorm); gamma/beta null = parameter-free. */
export function layerNormRows(x: Float32Array, M: number, H: number, gamma: Float32Array | null, beta: Float32Array | null, eps: number): void {
  for (let m = 0; m < M; m++) {
    const o = m * H;
    let mean = 0;
    for (let i = 0; i < H; i++) mean += x[o + i];
    mean /= H;
    let v = 0;
    for (let i = 0; i < H; i++) v += (x[o + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / H + eps);
    for (let i = 0; i < H; i++) x[o + i] = (x[o + i] - mean) * inv * (gamma ? gamma[i] : 1) + (beta ? beta[i] : 0);
  }
}

/** In place over (M, H): RMSNorm, x · rsqrt(mean(x²) + eps) · w (LlamaRMSNorm). */
export function rmsNormRows(x: Float32Array, M: number, H: number, w: Float32Array, eps: number): void {
  for (let m = 0; m < M; m++) {
    const o = m * H;
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / H + eps);
    for (let i = 0; i < H; i++) x[o + i] = x[o + i] * inv * w[i];
  }
}

export interface EmbeddingTables {
  /** (V, H) word embeddings. */
  word: Float32Array;
  /** (P, H) position embeddings. */
  pos: Float32Array;
  /** Row 0 of the token-type table (H): single-sentence inputs are all type 0; null for m3BERT. */
  type0: Float32Array | null;
  /** LayerNorm (bert, xlm-roberta) or m3BERT's input_norm RMSNorm (beta null). */
  normW: Float32Array;
  normB: Float32Array | null;
}

/** Embedding output (B, T, H): word + position (+ type 0), then the family's norm. */
export function embed(cfg: EncoderConfig, e: EmbeddingTables, batch: EncoderBatch): Float32Array {
  const H = cfg.hidden_size;
  const M = batch.B * batch.T;
  const pos = positionIds(cfg, batch);
  const x = new Float32Array(M * H);
  for (let i = 0; i < M; i++) {
    const w = batch.inputIds[i] * H;
    const p = pos[i] * H;
    const o = i * H;
    for (let c = 0; c < H; c++) x[o + c] = e.word[w + c] + e.pos[p + c] + (e.type0 ? e.type0[c] : 0);
  }
  if (e.normB) layerNormRows(x, M, H, e.normW, e.normB, cfg.norm_eps);
  else rmsNormRows(x, M, H, e.normW, cfg.norm_eps);
  return x;
}

/**
 * (B, T, H) → (B, H), right padding (row b's real tokens are t < lengths[b]). The sentence-transformers modes
 * (sentence_transformers/models/Pooling.py): CLS = token 0; mean = Σx / max(n, 1); mean_sqrt_len_tokens =
 * Σx / sqrt(max(n, 1)); weightedmean = Σ(t + 1)·x / max(Σ(t + 1), 1); max = max over real tokens with padding
 * counted as -1e9; lasttoken = token n − 1 (zeros when n = 0). MCLS = mean over positions holding `clsId`.
 */
export function pool(h: Float32Array, batch: EncoderBatch, lengths: readonly number[], H: number, mode: Pooling | 'mcls', clsId: number): Float32Array {
  const { B, T, inputIds } = batch;
  const out = new Float32Array(B * H);
  const acc = new Float64Array(H);
  for (let b = 0; b < B; b++) {
    const len = Math.min(lengths[b], T);
    if (mode === 'cls' || mode === 'lasttoken') {
      const t = mode === 'cls' ? 0 : len - 1;
      if (t >= 0) out.set(h.subarray((b * T + t) * H, (b * T + t + 1) * H), b * H);
      continue;
    }
    if (mode === 'max') {
      // Pooling.py sets padded positions to -1e9 before torch.max over all T positions.
      acc.fill(len < T ? -1e9 : -Infinity);
      for (let t = 0; t < len; t++) for (let c = 0, o = (b * T + t) * H; c < H; c++) if (h[o + c] > acc[c]) acc[c] = h[o + c];
      for (let c = 0; c < H; c++) out[b * H + c] = acc[c];
      continue;
    }
    acc.fill(0);
    let n = 0;
    for (let t = 0; t < len; t++) {
      if (mode === 'mcls' && inputIds[b * T + t] !== clsId) continue;
      const w = mode === 'weightedmean' ? t + 1 : 1;
      n += w;
      const o = (b * T + t) * H;
      for (let c = 0; c < H; c++) acc[c] += w * h[o + c];
    }
    const den = mode === 'mean_sqrt_len_tokens' ? Math.sqrt(Math.max(n, 1)) : Math.max(n, 1);
    for (let c = 0; c < H; c++) out[b * H + c] = acc[c] / den;
  }
  return out;
}

/** (rows, cols) → (rows, d): the first d values of each row, L2-normalised when asked (norm clamped at 1e-12, as F.normalize). */
export function truncateRows(x: Float32Array, rows: number, cols: number, d: number, normalize: boolean): Float32Array {
  const out = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    let ss = 0;
    if (normalize) for (let i = 0; i < d; i++) ss += x[src + i] * x[src + i];
    const inv = normalize ? 1 / Math.max(Math.sqrt(ss), 1e-12) : 1;
    for (let i = 0; i < d; i++) out[r * d + i] = x[src + i] * inv;
  }
  return out;
}

/** BGE-M3's per-token lexical weights relu(h · w + b): (M, H) → (M). */
export function sparseHead(h: Float32Array, M: number, H: number, w: Float32Array, b: number): Float32Array {
  const out = new Float32Array(M);
  for (let m = 0; m < M; m++) {
    let s = b;
    const o = m * H;
    for (let c = 0; c < H; c++) s += h[o + c] * w[c];
    out[m] = s > 0 ? s : 0;
  }
  return out;
}
