import type { Pooling } from '../model/config.ts';
import type { DenseModule } from '../model/modules.ts';
import { l2Normalize, layerNorm } from './ops.ts';

/**
 * sentence-transformers Pooling.forward (sentence_transformers/models/Pooling.py), one mode, in f64:
 *   cls:          token 0
 *   mean:         Σ mask·x / clamp(Σ mask, 1e-9)
 *   mean_sqrt_len_tokens: Σ mask·x / sqrt(clamp(Σ mask, 1e-9))
 *   weightedmean: weights w_t = t + 1 (torch.arange(1, T + 1)) times the mask; Σ w·x / clamp(Σ w, 1e-9)
 *   max:          padded positions set to -1e9, then the max over all T positions
 *   lasttoken:    i = (index of the first 0 in the mask, or T when there is none) − 1, clamped at 0; x[i] · mask[i]
 *                 (an all-padding row gives zeros)
 * hidden: (B, T, H), mask: (B, T) → (B, H).
 */
export function pool(hidden: Float32Array, mask: Uint8Array, B: number, T: number, H: number, mode: Pooling): Float32Array {
  const out = new Float32Array(B * H);
  for (let b = 0; b < B; b++) {
    if (mode === 'cls') {
      out.set(hidden.subarray(b * T * H, b * T * H + H), b * H);
      continue;
    }
    if (mode === 'lasttoken') {
      let first0 = 0; // index of the first 0 in the mask, T when there is none
      while (first0 < T && mask[b * T + first0]) first0++;
      const i = Math.max(first0 - 1, 0);
      if (mask[b * T + i]) out.set(hidden.subarray((b * T + i) * H, (b * T + i + 1) * H), b * H);
      continue;
    }
    if (mode === 'max') {
      for (let c = 0; c < H; c++) {
        let m = -Infinity;
        for (let t = 0; t < T; t++) m = Math.max(m, mask[b * T + t] ? hidden[(b * T + t) * H + c] : -1e9);
        out[b * H + c] = m;
      }
      continue;
    }
    let den = 0;
    const acc = new Float64Array(H);
    for (let t = 0; t < T; t++) {
      if (!mask[b * T + t]) continue;
      const w = mode === 'weightedmean' ? t + 1 : 1;
      den += w;
      const o = (b * T + t) * H;
      for (let c = 0; c < H; c++) acc[c] += w * hidden[o + c];
    }
    // sentence-transformers clamps the denominator at 1e-9; an all-padding row stays zero.
    const d = mode === 'mean_sqrt_len_tokens' ? Math.sqrt(Math.max(den, 1e-9)) : Math.max(den, 1e-9);
    for (let c = 0; c < H; c++) out[b * H + c] = acc[c] / d;
  }
  return out;
}

export interface TruncateOptions {
  /** Keep the first `dims` values (Matryoshka prefix). */
  dims: number;
  normalize: boolean;
  /** nomic-embed-text-v1.5: parameter-free layer norm over the full pooled vector before truncation. */
  layerNormBeforeTruncate?: boolean;
  eps?: number;
}

/**
 * Matryoshka truncation (Kusupati et al. 2022): optional pre-truncation layer norm, then the first
 * `dims` values, then L2 normalisation — sentence-transformers truncates before it normalises.
 * pooled: (B, H) → (B, dims).
 */
export function truncateAndNormalize(pooled: Float32Array, B: number, H: number, opts: TruncateOptions): Float32Array {
  const x = opts.layerNormBeforeTruncate ? layerNorm(pooled, B, H, null, null, opts.eps ?? 1e-5) : pooled;
  const d = opts.dims;
  const cut = new Float32Array(B * d);
  for (let b = 0; b < B; b++) cut.set(x.subarray(b * H, b * H + d), b * d);
  return opts.normalize ? l2Normalize(cut, B, d) : cut;
}

/**
 * MCLS pooling (BGE-M3, Chen et al. 2024 §3.3): the mean of the hidden states at every CLS position of
 * each text (the engine inserts a CLS every k tokens). hidden: (B, T, H), ids: (B, T) → (B, H).
 */
export function poolMcls(hidden: Float32Array, ids: ArrayLike<number>, lengths: readonly number[], B: number, T: number, H: number, clsId: number): Float32Array {
  const y = new Float32Array(B * H);
  for (let b = 0; b < B; b++) {
    const acc = new Float64Array(H);
    let n = 0;
    for (let t = 0; t < Math.min(lengths[b], T); t++) {
      if (ids[b * T + t] !== clsId) continue;
      n++;
      for (let c = 0; c < H; c++) acc[c] += hidden[(b * T + t) * H + c];
    }
    for (let c = 0; c < H; c++) y[b * H + c] = acc[c] / Math.max(n, 1);
  }
  return y;
}

/**
 * sentence-transformers Dense modules in order (models/Dense.py: activation(linear(x))), f64 sums.
 * x: (B, in) → (B, out of the last layer).
 */
export function denseStack(x: Float32Array, B: number, layers: readonly DenseModule[]): Float32Array {
  let cur = x;
  for (const d of layers) {
    const y = new Float32Array(B * d.out_features);
    for (let b = 0; b < B; b++) {
      for (let o = 0; o < d.out_features; o++) {
        let acc = d.bias ? d.bias[o] : 0;
        for (let i = 0; i < d.in_features; i++) acc += d.weight[o * d.in_features + i] * cur[b * d.in_features + i];
        y[b * d.out_features + o] = d.activation === 'tanh' ? Math.tanh(acc) : d.activation === 'relu' ? Math.max(acc, 0) : d.activation === 'sigmoid' ? 1 / (1 + Math.exp(-acc)) : d.activation === 'identity' ? acc : gelu(acc);
      }
    }
    cur = y;
  }
  return cur;
}

/** torch.nn.GELU (erf form), erf by its Maclaurin series / continued fraction split at |x| = 2.5 (double precision). */
function gelu(v: number): number {
  const x = v / Math.SQRT2;
  const ax = Math.abs(x);
  let e: number;
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 60; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    e = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc continued fraction (Lentz-free, fixed depth is ample for |x| >= 2.5)
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
    e = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
    if (x < 0) e = -e;
  }
  return 0.5 * v * (1 + e);
}
