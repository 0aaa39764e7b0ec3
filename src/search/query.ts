/**
 * One search over an index's rows, per mode:
 *
 * - dense:   exact scan at the stored precision, or the funnel: a first pass over every row (sign codes by
 *            Hamming distance, or a Matryoshka prefix of `prefixDims`), then the `multiplier × k` best
 *            (DEFAULT_MULTIPLIER) are rescored at full dims and stored precision.
 * - sparse:  the inverted index's accumulated lexical scores (exactly `lexicalMatchingScore`).
 * - colbert: MaxSim (exactly `colbertScore` for f32 blocks) over a dense shortlist of `shortlist × k`
 *            rows, or over every row when the index has no dense vectors.
 * - hybrid:  the union of the dense and sparse shortlists, each `shortlist × k`, ranked by FlagEmbedding's
 *            weighted combination (`computeScore`): (w_d·dense + w_s·sparse [+ w_c·colbert]) / Σw, the ColBERT
 *            term only when the index stores ColBERT vectors and w_c > 0.
 *
 * Reported scores are recomputed per hit in the order score.ts sums, so f32 scores equal score.ts's.
 */
import { InvalidInputError } from '../errors.ts';
import type { Rows } from './rows.ts';
import { TopK } from './topk.ts';
import type { QueryVectors, SearchHit, SearchOptions } from './types.ts';

const MODES = ['dense', 'sparse', 'colbert', 'hybrid'];

/**
 * Default shortlist of each first pass, as a multiple of k. Binary: ×200, because sign codes of trained
 * embeddings rank coarsely: on m3-tiny × SciFact (5,183 abstracts, 300 queries, 128 dims) recall@10 against
 * exact f32 is ×10 0.640, ×40 0.886, ×100 0.968, ×200 0.985 (v3 weights; v2: ×10 0.605, ×200 0.979;
 * tools/bench/search-recall.ts; ×100 gave 0.972 on the bench's shorter texts), and a long shortlist costs little
 * since the Hamming pass selects by counting and the SIMD kernel rescores the rows (100k × 1024, p50: ×10 1.98 ms,
 * ×100 2.14, ×200 3.05, `--timing`).
 * Prefix: ×10, a heap scan whose cost grows with the shortlist.
 */
export const DEFAULT_MULTIPLIER: Record<string, number> = { binary: 200, prefix: 10 };

function need<T>(v: T | undefined | null, what: string, mode: string): T {
  if (v === undefined || v === null) throw new InvalidInputError(`mode "${mode}" needs ${what}`, { expected: what, received: v });
  return v;
}

export function searchRows(rows: Rows, q: QueryVectors, opts: SearchOptions & { mode: string }): SearchHit[] {
  const { mode } = opts;
  const k = opts.k ?? 10;
  if (!MODES.includes(mode)) throw new InvalidInputError('mode must be "dense", "sparse", "colbert" or "hybrid"', { expected: MODES.join(' | '), received: mode });
  if (!Number.isInteger(k) || k < 1) throw new InvalidInputError('k must be a positive integer', { expected: 'integer >= 1', received: k });
  const shortlist = opts.shortlist ?? 10;
  if (!(shortlist >= 1)) throw new InvalidInputError('shortlist must be >= 1', { expected: 'number >= 1', received: shortlist });
  const weights = opts.weights ?? [1, 1, 1];
  if (!Array.isArray(weights) || weights.length !== 3 || weights.some((w) => typeof w !== 'number' || !Number.isFinite(w) || w < 0) || weights[0] + weights[1] + weights[2] === 0) {
    throw new InvalidInputError('weights must be [dense, sparse, colbert], finite, non-negative, not all zero', { expected: '[number, number, number]', received: weights });
  }
  if (opts.filter !== undefined && typeof opts.filter !== 'function') throw new InvalidInputError('filter must be a function (meta, id) => boolean', { expected: 'function', received: opts.filter });
  const { alive, ids, meta } = rows;
  const filter = opts.filter;
  const accept = filter ? (r: number) => alive[r] === 1 && filter(meta[r], ids[r]) : (r: number) => alive[r] === 1;

  const denseTop = (m: number): Int32Array => {
    const d = need(rows.dense, 'an index with dense vectors', mode);
    const qd = need(q.dense, 'a dense query vector', mode);
    d.checkQuery(qd);
    const f = opts.funnel ?? (d.storage === 'binary+int8' ? { first: 'binary' as const } : false);
    if (!f) return d.scan(qd, m, accept).sorted().rows;
    const mult = f.multiplier ?? DEFAULT_MULTIPLIER[f.first] ?? 10; // (an unknown `first` is rejected below)
    if (!(mult >= 1)) throw new InvalidInputError('funnel.multiplier must be >= 1', { expected: 'number >= 1', received: mult });
    const M = Math.ceil(m * mult);
    let cand: Int32Array;
    if (f.first === 'binary') cand = d.hammingScan(qd, M, accept);
    else if (f.first === 'prefix') {
      const p = f.prefixDims ?? Math.max(1, Math.min(d.dims, Math.round(d.dims / 4)));
      if (!Number.isInteger(p) || p < 1 || p > d.dims) throw new InvalidInputError('funnel.prefixDims must be an integer in [1, dims]', { expected: `1..${d.dims}`, received: p });
      cand = d.scan(qd, M, accept, p).sorted().rows;
    } else throw new InvalidInputError('funnel.first must be "binary" or "prefix"', { expected: '"binary" | "prefix"', received: f.first });
    return d.rescore(qd, cand, m).sorted().rows;
  };
  const sparseScores = (): Map<number, number> => {
    const s = need(rows.sparse, 'an index with sparse weights', mode);
    const out = new Map<number, number>();
    s.accumulate(need(q.sparse, 'a sparse query vector', mode), (r, v) => out.set(r, v));
    return out;
  };
  const colbertOf = (r: number) => rows.colbert!.score(q.colbert!, r);
  const denseOf = (r: number) => rows.dense!.score(q.dense!, r);

  let ranked: { row: number; score: number; dense: number | null; sparse: number | null; colbert: number | null }[];
  if (mode === 'dense') {
    ranked = Array.from(denseTop(k), (r) => {
      const s = denseOf(r);
      return { row: r, score: s, dense: s, sparse: null, colbert: null };
    });
  } else if (mode === 'sparse') {
    const sc = sparseScores();
    const heap = new TopK(k);
    for (const [r, s] of sc) if (s > heap.min && accept(r)) heap.push(s, r);
    // No threshold: with fewer than k matching rows, the rest come back with their exact score, 0, in row order.
    for (let r = 0; heap.size < k && r < rows.n; r++) if (!sc.has(r) && accept(r)) heap.push(0, r);
    const { rows: rr, scores } = heap.sorted();
    ranked = Array.from(rr, (r, i) => ({ row: r, score: scores[i], dense: null, sparse: scores[i], colbert: null }));
  } else if (mode === 'colbert') {
    const c = need(rows.colbert, 'an index with ColBERT vectors', mode);
    c.check(need(q.colbert, 'ColBERT query vectors', mode), 'query');
    const cand = rows.dense && q.dense ? denseTop(Math.ceil(k * shortlist)) : Int32Array.from({ length: rows.n }, (_, r) => r).filter(accept);
    const heap = new TopK(k);
    for (const r of cand) heap.push(colbertOf(r), r);
    const { rows: rr, scores } = heap.sorted();
    ranked = Array.from(rr, (r, i) => ({ row: r, score: scores[i], dense: rows.dense && q.dense ? denseOf(r) : null, sparse: null, colbert: scores[i] }));
  } else {
    const sc = sparseScores();
    const m = Math.ceil(k * shortlist);
    const cand = new Set<number>(denseTop(m));
    const sh = new TopK(m);
    for (const [r, s] of sc) if (s > sh.min && accept(r)) sh.push(s, r);
    for (const r of sh.sorted().rows) cand.add(r);
    const [wd, ws, wc] = weights;
    const useC = !!rows.colbert && wc > 0;
    if (!useC && wd + ws === 0) throw new InvalidInputError('hybrid without ColBERT needs a dense or sparse weight > 0', { expected: 'weights[0] + weights[1] > 0', received: weights });
    if (useC) rows.colbert!.check(need(q.colbert, 'ColBERT query vectors (weights[2] > 0 and the index stores ColBERT)', mode), 'query');
    const heap = new TopK(k);
    const parts = new Map<number, [number, number, number | null]>();
    for (const r of [...cand].sort((a, b) => a - b)) {
      const d = denseOf(r);
      const s = sc.get(r) ?? 0;
      const c = useC ? colbertOf(r) : null;
      // computeScore: 'colbert+sparse+dense' when ColBERT is used, else 'sparse+dense'.
      const score = useC ? (wc * c! + ws * s + wd * d) / (wd + ws + wc) : (ws * s + wd * d) / (wd + ws);
      parts.set(r, [d, s, c]);
      heap.push(score, r);
    }
    const { rows: rr, scores } = heap.sorted();
    ranked = Array.from(rr, (r, i) => ({ row: r, score: scores[i], dense: parts.get(r)![0], sparse: parts.get(r)![1], colbert: parts.get(r)![2] }));
  }
  return ranked.map((x) => ({ id: ids[x.row], score: x.score, scores: { dense: x.dense, sparse: x.sparse, colbert: x.colbert }, meta: meta[x.row] }));
}
