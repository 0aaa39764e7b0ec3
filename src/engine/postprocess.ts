import { NumericError } from '../errors.ts';
import type { Pooling } from '../model/config.ts';

/**
 * What production backends do on the CPU after a forward pass: pooling and Matryoshka truncation for
 * backends that return hidden states (the ONNX one), the nomic-style pre-truncation layer norm, BGE-M3's
 * per-id combination of lexical weights, and the finite-output check. The CPU reference
 * (src/reference) keeps its own implementations: it is the oracle these are tested against, so
 * production never imports it.
 */

/** BGE-M3 lexical weights of one text: token ids ascending, each with its weight. */
export interface SparseVector {
  /** Token ids, ascending. */
  ids: Uint32Array;
  /** max over the text's occurrences of relu(sparse_linear(h)), same order as ids. */
  weights: Float32Array;
}

/**
 * FlagEmbedding's _process_token_weights (inference/embedder/encoder_only/m3.py) over one row:
 * raw: (T) per-token weights, ids/mask: (T). relu, then the max per token id, dropping `unused` ids
 * (cls, eos, pad, unk: TextTokenizer.specialIds) and weights that are not > 0; ids ascending.
 */
export function combineTokenWeights(raw: ArrayLike<number>, ids: ArrayLike<number>, mask: ArrayLike<number>, T: number, unused: ReadonlySet<number>): SparseVector {
  const best = new Map<number, number>();
  for (let t = 0; t < T; t++) {
    if (!mask[t] || unused.has(ids[t])) continue;
    const w = Math.max(raw[t], 0);
    if (!(w > 0)) continue;
    const prev = best.get(ids[t]);
    if (prev === undefined || w > prev) best.set(ids[t], w);
  }
  const sorted = [...best.keys()].sort((a, b) => a - b);
  return { ids: Uint32Array.from(sorted), weights: Float32Array.from(sorted, (id) => best.get(id)!) };
}

/**
 * sentence-transformers Pooling.forward (sentence_transformers/models/Pooling.py) over (B, T, H) hidden states
 * and a (B, T) mask → (B, H): cls = token 0; mean / mean_sqrt_len_tokens / weightedmean = Σ w·x over masked
 * tokens (w = t + 1 for weightedmean, else 1) divided by clamp(Σ w, 1e-9) (its sqrt for mean_sqrt_len_tokens);
 * max = max over all T with padded positions set to -1e9; lasttoken = token (first 0 in the mask, or T) − 1,
 * clamped at 0, times its mask value.
 */
export function pool(hidden: Float32Array, mask: Uint8Array, B: number, T: number, H: number, mode: Pooling): Float32Array {
  const out = new Float32Array(B * H);
  const acc = new Float64Array(H);
  for (let b = 0; b < B; b++) {
    if (mode === 'cls') {
      out.set(hidden.subarray(b * T * H, b * T * H + H), b * H);
      continue;
    }
    if (mode === 'lasttoken') {
      let i = 0;
      while (i < T && mask[b * T + i]) i++;
      i = Math.max(i - 1, 0);
      if (mask[b * T + i]) out.set(hidden.subarray((b * T + i) * H, (b * T + i + 1) * H), b * H);
      continue;
    }
    acc.fill(mode === 'max' ? -Infinity : 0);
    let den = 0;
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * H;
      if (mode === 'max') {
        for (let c = 0; c < H; c++) acc[c] = Math.max(acc[c], mask[b * T + t] ? hidden[o + c] : -1e9);
        continue;
      }
      if (!mask[b * T + t]) continue;
      const w = mode === 'weightedmean' ? t + 1 : 1;
      den += w;
      for (let c = 0; c < H; c++) acc[c] += w * hidden[o + c];
    }
    // sentence-transformers clamps the denominator at 1e-9: an all-padding row stays zero.
    const d = mode === 'max' ? 1 : mode === 'mean_sqrt_len_tokens' ? Math.sqrt(Math.max(den, 1e-9)) : Math.max(den, 1e-9);
    for (let c = 0; c < H; c++) out[b * H + c] = acc[c] / d;
  }
  return out;
}

/**
 * (B, H) pooled rows → (B, dims): optional parameter-free layer norm over the full row (nomic-embed
 * v1.5's LayerNorm module, eps 1e-5, before truncation), the first `dims` values, then L2
 * normalisation (sentence-transformers truncates before it normalises).
 */
export function truncateAndNormalize(pooled: Float32Array, B: number, H: number, opts: { dims: number; normalize: boolean; layerNormBeforeTruncate?: boolean; eps?: number }): Float32Array {
  const d = opts.dims;
  const eps = opts.eps ?? 1e-5;
  const out = new Float32Array(B * d);
  for (let b = 0; b < B; b++) {
    const row = pooled.subarray(b * H, (b + 1) * H);
    let mean = 0;
    let inv = 1;
    if (opts.layerNormBeforeTruncate) {
      let s = 0;
      for (let c = 0; c < H; c++) s += row[c];
      mean = s / H;
      let v = 0;
      for (let c = 0; c < H; c++) v += (row[c] - mean) ** 2;
      inv = 1 / Math.sqrt(v / H + eps);
    }
    let n2 = 0;
    for (let c = 0; c < d; c++) {
      const x = (row[c] - mean) * inv;
      out[b * d + c] = x;
      n2 += x * x;
    }
    if (opts.normalize) {
      const n = Math.max(Math.sqrt(n2), 1e-12);
      for (let c = 0; c < d; c++) out[b * d + c] /= n;
    }
  }
  return out;
}

/**
 * Output check before anything is returned: a NaN or Inf (an overflowing f16 weight, a corrupt
 * checkpoint, a driver fault) would otherwise travel silently into an index and every score built on it.
 */
export function assertFinite(values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new NumericError(`the ${what} contain a non-finite value`, { expected: 'finite numbers (check the weights for NaN/Inf, or try f32 weights)', received: `${values[i]} at index ${i}` });
    }
  }
}
