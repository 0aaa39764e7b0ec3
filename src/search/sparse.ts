/**
 * Inverted index over BGE-M3's lexical weights: token id → postings (row, weight).
 *
 * A query's score for a document is Σ over token ids in both of w_q · w_p, accumulated in float64 in
 * ascending query-id order — the same terms in the same order as `lexicalMatchingScore` (score.ts),
 * so the scores are bit-identical. Documents that share no token with the query score 0 and are
 * never candidates (their lexical score is exactly 0; in hybrid mode the dense shortlist covers them).
 * The forward vectors are kept too (for export, chunk rewrites and hybrid rescoring).
 */
import { InvalidInputError } from '../errors.ts';
import { TopK } from './topk.ts';
import type { SparseVector } from './types.ts';

interface Postings {
  rows: Int32Array;
  weights: Float32Array;
  len: number;
}

export function checkSparseVector(v: SparseVector, what: string): void {
  if (!v || !(v.ids instanceof Uint32Array) || !(v.weights instanceof Float32Array) || v.ids.length !== v.weights.length) {
    throw new InvalidInputError(`${what}: sparse vector must be { ids: Uint32Array, weights: Float32Array } of equal length`, { expected: '{ ids: Uint32Array, weights: Float32Array }', received: v });
  }
  for (let i = 1; i < v.ids.length; i++) {
    if (v.ids[i] <= v.ids[i - 1]) throw new InvalidInputError(`${what}: sparse ids must be strictly ascending (index ${i})`, { expected: `id > ${v.ids[i - 1]}`, received: v.ids[i] });
  }
}

export class SparseIndex {
  private post = new Map<number, Postings>();
  /** Forward vectors by row. */
  docs: SparseVector[] = [];
  private acc = new Float64Array(0);
  private seen = new Uint8Array(0);

  get n(): number {
    return this.docs.length;
  }

  get bytes(): number {
    let b = 0;
    for (const d of this.docs) b += d.ids.length * 8; // postings (row + weight); the forward copy is the same again
    return 2 * b;
  }

  append(v: SparseVector): void {
    const row = this.docs.length;
    this.docs.push(v);
    for (let i = 0; i < v.ids.length; i++) {
      let p = this.post.get(v.ids[i]);
      if (!p) this.post.set(v.ids[i], (p = { rows: new Int32Array(4), weights: new Float32Array(4), len: 0 }));
      if (p.len === p.rows.length) {
        const r = new Int32Array(p.len * 2);
        r.set(p.rows);
        const w = new Float32Array(p.len * 2);
        w.set(p.weights);
        p.rows = r;
        p.weights = w;
      }
      p.rows[p.len] = row;
      p.weights[p.len++] = v.weights[i];
    }
  }

  /** Keeps only `keep` rows (ascending), renumbered 0.. in that order; the postings are rebuilt. */
  compact(keep: Int32Array): void {
    const docs = Array.from(keep, (r) => this.docs[r]);
    this.post.clear();
    this.docs = [];
    for (const d of docs) this.append(d);
  }

  /**
   * Lexical scores of every document sharing a token with the query: calls `visit(row, score)` once per
   * such row, in ascending row order.
   */
  accumulate(q: SparseVector, visit: (row: number, score: number) => void): void {
    checkSparseVector(q, 'query');
    const n = this.n;
    if (this.acc.length < n) {
      this.acc = new Float64Array(Math.max(n, this.acc.length * 2));
      this.seen = new Uint8Array(this.acc.length);
    }
    const acc = this.acc;
    const seen = this.seen;
    const touched: number[] = [];
    for (let i = 0; i < q.ids.length; i++) {
      const p = this.post.get(q.ids[i]);
      if (!p) continue;
      const wq = q.weights[i];
      for (let j = 0; j < p.len; j++) {
        const r = p.rows[j];
        if (!seen[r]) {
          seen[r] = 1;
          touched.push(r);
        }
        acc[r] += wq * p.weights[j];
      }
    }
    touched.sort((a, b) => a - b);
    for (const r of touched) {
      visit(r, acc[r]);
      acc[r] = 0;
      seen[r] = 0;
    }
  }

  /** Top-k rows by lexical score among accepted rows. */
  search(q: SparseVector, k: number, accept: (row: number) => boolean): TopK {
    const heap = new TopK(k);
    this.accumulate(q, (r, s) => {
      if (s > heap.min && accept(r)) heap.push(s, r);
    });
    return heap;
  }
}
