import { l2Normalize, linear } from './ops.ts';

/**
 * BGE-M3's sparse and ColBERT heads (Chen et al. 2024, §3.2; FlagEmbedding
 * inference/embedder/encoder_only/m3.py: _sparse_embedding, _colbert_embedding,
 * _process_token_weights, _process_colbert_vecs).
 */

export interface LinearWeights {
  weight: Float32Array; // (out, in)
  bias: Float32Array; // (out)
  out: number;
  in: number;
}

// The result type is production's (search and the engine return it); the arithmetic below is the oracle's own.
import type { SparseVector } from '../engine/postprocess.ts';
export type { SparseVector };

/**
 * Lexical weights of one sequence. hidden: (T, H) of one text, ids/mask: (T).
 * Per token w = relu(h · W + b); per id keep the max; drop special ids and weights that are not > 0
 * (FlagEmbedding keeps `idx not in unused_tokens and w > 0`).
 */
export function sparseWeights(hidden: Float32Array, ids: ArrayLike<number>, mask: ArrayLike<number>, T: number, head: LinearWeights, specialIds: ReadonlySet<number>): SparseVector {
  const raw = linear(hidden, T, head.in, head.weight, 1, head.bias); // (T, 1)
  return combineTokenWeights(raw, ids, mask, T, specialIds);
}

/**
 * The per-id combination step, the oracle's copy (production's is src/engine/postprocess.ts, checked
 * against this one): relu, max per token id, special ids and weights that are not > 0 dropped, ids ascending.
 */
export function combineTokenWeights(raw: ArrayLike<number>, ids: ArrayLike<number>, mask: ArrayLike<number>, T: number, specialIds: ReadonlySet<number>): SparseVector {
  const best = new Map<number, number>();
  for (let t = 0; t < T; t++) {
    if (!mask[t] || specialIds.has(ids[t])) continue;
    const w = Math.max(raw[t], 0);
    if (!(w > 0)) continue;
    const prev = best.get(ids[t]);
    if (prev === undefined || w > prev) best.set(ids[t], w);
  }
  const sorted = [...best.keys()].sort((a, b) => a - b);
  return { ids: Uint32Array.from(sorted), weights: Float32Array.from(sorted, (id) => best.get(id)!) };
}

/**
 * ColBERT vectors of one sequence: colbert_linear(h[1:]) for the n−1 real tokens after CLS (the final
 * </s> is kept), each L2-normalised; optionally truncated to the first `dims` values before normalising.
 * hidden: (T, H), n = number of real tokens → (n−1, dims ?? out).
 */
export function colbertVectors(hidden: Float32Array, n: number, head: LinearWeights, dims = head.out): Float32Array {
  const H = head.in;
  const rows = Math.max(n - 1, 0);
  const proj = linear(hidden.subarray(H, (1 + rows) * H), rows, H, head.weight, head.out, head.bias); // (n−1, out)
  if (dims === head.out) return l2Normalize(proj, rows, dims);
  const cut = new Float32Array(rows * dims);
  for (let r = 0; r < rows; r++) cut.set(proj.subarray(r * head.out, r * head.out + dims), r * dims);
  return l2Normalize(cut, rows, dims);
}
