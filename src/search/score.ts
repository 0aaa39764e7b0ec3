/**
 * BGE-M3 relevance scores for one query and one passage, with the semantics of FlagEmbedding
 * (`FlagEmbedding/inference/embedder/encoder_only/m3.py`: `compute_lexical_matching_score`,
 * `colbert_score`, `compute_score_single_device`; legacy `FlagEmbedding/bge_m3.py`).
 *
 * - dense:  q · p (the engine L2-normalises dense vectors, so this is the cosine).
 * - sparse: Σ over token ids present in both of w_q[id] · w_p[id].
 * - colbert: (1 / N_q) Σ_i max_j q_i · p_j, N_q = number of query vectors.
 * - 'sparse+dense':         (w_d·dense + w_s·sparse) / (w_d + w_s)
 * - 'colbert+sparse+dense': (w_d·dense + w_s·sparse + w_c·colbert) / (w_d + w_s + w_c)
 *   with weights ordered [dense, sparse, colbert], default [1, 1, 1].
 *
 * All sums are accumulated in float64.
 */
import { InvalidInputError } from '../errors.ts';
import type { SparseVector } from '../engine/postprocess.ts';

export type { SparseVector };

/** Multi-vector (ColBERT) output of one text: `count` rows of `dim` floats, row-major, each row L2-normalised. */
export interface ColbertVectors {
  data: Float32Array;
  count: number;
  dim: number;
}

/** The three representations of one text, as the engine returns them. */
export interface M3Representation {
  dense: Float32Array;
  sparse: SparseVector;
  colbert: ColbertVectors;
}

/** Weights for [dense, sparse, colbert], the order FlagEmbedding's `weights_for_different_modes` uses. */
export type ModeWeights = readonly [number, number, number];

export interface M3Scores {
  dense: number;
  sparse: number;
  colbert: number;
  'sparse+dense': number;
  'colbert+sparse+dense': number;
}

/** Dot product of two dense vectors of equal length. */
export function denseScore(q: Float32Array, p: Float32Array): number {
  if (q.length !== p.length) {
    throw new InvalidInputError(`dense vectors differ in length: query ${q.length}, passage ${p.length}`, {
      expected: `passage length ${q.length}`,
      received: p,
    });
  }
  let s = 0;
  for (let i = 0; i < q.length; i++) s += q[i] * p[i];
  return s;
}

/**
 * Dense scores of one query against n passages stored row-major in `passages` (n × d).
 * Returns n scores.
 */
export function batchDenseScores(q: Float32Array, passages: Float32Array, d: number): Float32Array {
  if (!Number.isInteger(d) || d <= 0) {
    throw new InvalidInputError('batchDenseScores: dimension must be a positive integer', { expected: 'integer > 0', received: d });
  }
  if (q.length !== d) {
    throw new InvalidInputError(`batchDenseScores: query length ${q.length} differs from dimension ${d}`, { expected: `length ${d}`, received: q });
  }
  if (passages.length % d !== 0) {
    throw new InvalidInputError(`batchDenseScores: passage matrix length ${passages.length} is not a multiple of dimension ${d}`, {
      expected: `a multiple of ${d}`,
      received: passages,
    });
  }
  const n = passages.length / d;
  const out = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const base = r * d;
    let s = 0;
    for (let i = 0; i < d; i++) s += q[i] * passages[base + i];
    out[r] = s;
  }
  return out;
}

function checkSparse(v: SparseVector, which: string): void {
  const { ids, weights } = v;
  if (ids.length !== weights.length) {
    throw new InvalidInputError(`${which} sparse vector has ${ids.length} ids but ${weights.length} weights`, {
      expected: `${ids.length} weights`,
      received: weights,
    });
  }
  for (let i = 1; i < ids.length; i++) {
    if (ids[i] <= ids[i - 1]) {
      throw new InvalidInputError(`${which} sparse vector ids are not strictly ascending at index ${i}`, {
        expected: `id > ${ids[i - 1]}`,
        received: ids[i],
      });
    }
  }
}

/**
 * Lexical matching score: Σ over token ids present in both of w_q · w_p.
 * Both vectors must have strictly ascending ids (as `sparseWeights` produces); this is checked
 * in O(n + m) and violations throw InvalidInputError.
 */
export function lexicalMatchingScore(q: SparseVector, p: SparseVector): number {
  checkSparse(q, 'query');
  checkSparse(p, 'passage');
  const qi = q.ids;
  const pi = p.ids;
  let a = 0;
  let b = 0;
  let s = 0;
  while (a < qi.length && b < pi.length) {
    const x = qi[a];
    const y = pi[b];
    if (x === y) {
      s += q.weights[a] * p.weights[b];
      a++;
      b++;
    } else if (x < y) {
      a++;
    } else {
      b++;
    }
  }
  return s;
}

function checkColbert(v: ColbertVectors, which: string): void {
  if (!Number.isInteger(v.count) || v.count < 1) {
    throw new InvalidInputError(`${which} ColBERT vectors: count must be a positive integer`, { expected: 'integer >= 1', received: v.count });
  }
  if (!Number.isInteger(v.dim) || v.dim < 1) {
    throw new InvalidInputError(`${which} ColBERT vectors: dim must be a positive integer`, { expected: 'integer >= 1', received: v.dim });
  }
  if (v.data.length !== v.count * v.dim) {
    throw new InvalidInputError(`${which} ColBERT vectors: data length ${v.data.length} is not count ${v.count} × dim ${v.dim}`, {
      expected: `length ${v.count * v.dim}`,
      received: v.data,
    });
  }
}

/**
 * ColBERT late-interaction score: (1 / N_q) Σ_i max_j q_i · p_j, N_q = q.count.
 * The max is over the passage's real vectors only, so it can be negative (no clamp at 0).
 *
 * Both sides must hold at least one vector. FlagEmbedding returns NaN (0 / 0) for an empty query
 * and raises for an empty passage; here both throw InvalidInputError. The engine never produces
 * an empty set (the final `</s>` always yields a vector).
 */
export function colbertScore(q: ColbertVectors, p: ColbertVectors): number {
  checkColbert(q, 'query');
  checkColbert(p, 'passage');
  if (q.dim !== p.dim) {
    throw new InvalidInputError(`ColBERT dims differ: query ${q.dim}, passage ${p.dim}`, { expected: `passage dim ${q.dim}`, received: p.dim });
  }
  const d = q.dim;
  const qd = q.data;
  const pd = p.data;
  let total = 0;
  for (let i = 0; i < q.count; i++) {
    const qb = i * d;
    let best = -Infinity;
    for (let j = 0; j < p.count; j++) {
      const pb = j * d;
      let s = 0;
      for (let k = 0; k < d; k++) s += qd[qb + k] * pd[pb + k];
      if (s > best) best = s;
    }
    total += best;
  }
  return total / q.count;
}

function checkWeights(weights: ModeWeights): void {
  if (!Array.isArray(weights) || weights.length !== 3) {
    throw new InvalidInputError('weights must be [dense, sparse, colbert]', { expected: 'array of 3 numbers', received: weights });
  }
  for (let i = 0; i < 3; i++) {
    const w = weights[i];
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) {
      throw new InvalidInputError(`weights[${i}] must be a finite non-negative number`, { expected: 'finite number >= 0', received: w });
    }
  }
  if (weights[0] + weights[1] + weights[2] === 0) {
    throw new InvalidInputError('weights must not all be zero', { expected: 'at least one weight > 0', received: '[0, 0, 0]' });
  }
}

/**
 * All five FlagEmbedding scores for one query/passage pair.
 *
 * weights = [dense, sparse, colbert] (default [1, 1, 1]; the BGE-M3 README uses [0.4, 0.2, 0.4]).
 * 'sparse+dense' uses only the dense and sparse weights and divides by their sum;
 * 'colbert+sparse+dense' divides by the sum of all three.
 * Weights must be finite, non-negative and not all zero (InvalidInputError otherwise). When the
 * dense and sparse weights are both zero, 'sparse+dense' is NaN (0 / 0), as in FlagEmbedding.
 */
export function computeScore(q: M3Representation, p: M3Representation, weights: ModeWeights = [1, 1, 1]): M3Scores {
  checkWeights(weights);
  const [wd, ws, wc] = weights;
  const dense = denseScore(q.dense, p.dense);
  const sparse = lexicalMatchingScore(q.sparse, p.sparse);
  const colbert = colbertScore(q.colbert, p.colbert);
  const sd = wd + ws;
  return {
    dense,
    sparse,
    colbert,
    'sparse+dense': sd === 0 ? Number.NaN : (ws * sparse + wd * dense) / sd,
    'colbert+sparse+dense': (wc * colbert + ws * sparse + wd * dense) / (wd + ws + wc),
  };
}
