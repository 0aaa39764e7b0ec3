// The binary funnel's parts on their own: counting selection of the nearest sign codes against a full sort,
// and the SIMD rescoring of a shortlist against the exact f32-query score of every candidate.
import { describe, expect, it } from 'vitest';
import { DenseStore, nearestByCount } from './dense.ts';
import { randomUnit, rng } from './testing.ts';

/** The m accepted rows by (distance, row), by sorting everything. */
function bySort(dist: Int32Array, m: number, accept: (r: number) => boolean): number[] {
  return Array.from(dist.keys())
    .filter(accept)
    .sort((a, b) => dist[a] - dist[b] || a - b)
    .slice(0, m);
}

describe('nearestByCount', () => {
  const r = rng(11);
  const n = 2_003;
  const maxD = 96;
  // Few distinct distances, so most thresholds fall inside a run of ties.
  const dist = Int32Array.from({ length: n }, () => Math.floor(40 + r() * 20));
  dist[5] = 0;
  dist[n - 1] = maxD;

  for (const m of [1, 10, 37, 500, n, n + 50]) {
    it(`m = ${m} of ${n}: the sorted order, ties by row`, () => {
      expect(Array.from(nearestByCount(dist, n, maxD, m, () => true))).toEqual(bySort(dist, m, () => true));
    });
  }

  it('a filter that rejects most candidates still yields m rows (second collection past the threshold)', () => {
    const accept = (row: number) => row % 9 === 0;
    const got = Array.from(nearestByCount(dist, n, maxD, 100, accept));
    expect(got).toHaveLength(100);
    expect(got).toEqual(bySort(dist, 100, accept));
  });

  it('a filter that rejects everything yields nothing', () => {
    expect(nearestByCount(dist, n, maxD, 10, () => false)).toHaveLength(0);
  });
});

describe('DenseStore binary funnel', () => {
  for (const d of [37, 128, 300]) {
    it(`d = ${d}: rescore ranks a 1,000-row shortlist exactly as the f32-query int8 scores do`, () => {
      const st = new DenseStore(d, 'binary+int8');
      st.append(randomUnit(3_000, d, d));
      const q = randomUnit(1, d, 3);
      const cand = st.hammingScan(q, 1_000, () => true);
      expect(cand).toHaveLength(1_000);
      const exact = Array.from(cand)
        .map((row) => ({ row, s: st.score(q, row) }))
        .sort((a, b) => b.s - a.s || a.row - b.row)
        .slice(0, 10);
      const got = st.rescore(q, cand, 10).sorted();
      expect(Array.from(got.rows)).toEqual(exact.map((x) => x.row));
      expect(Array.from(got.scores)).toEqual(exact.map((x) => x.s));
    });
  }
});
