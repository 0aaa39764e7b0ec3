import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { batchDenseScores, colbertScore, computeScore, denseScore, lexicalMatchingScore, type ColbertVectors, type M3Representation, type M3Scores, type SparseVector } from './score.ts';

const f32 = (xs: number[]) => new Float32Array(xs);
const sparse = (entries: [number, number][]): SparseVector => ({
  ids: Uint32Array.from(entries.map(([id]) => id)),
  weights: Float32Array.from(entries.map(([, w]) => w)),
});
const colbert = (rows: number[][]): ColbertVectors => ({ data: f32(rows.flat()), count: rows.length, dim: rows[0]?.length ?? 2 });

// Float32 storage: 0.6, 0.8, 0.1, 0.2 ... are not exact, so values built from them are
// compared with toBeCloseTo(x, 6) (|error| < 5e-7). Dyadic values are compared exactly.
const P = 6;

describe('denseScore', () => {
  it('is the dot product', () => {
    // [0.6, 0.8] · [1, 0] = 0.6
    expect(denseScore(f32([0.6, 0.8]), f32([1, 0]))).toBeCloseTo(0.6, P);
    // [0.5, 0.5, 0.5, 0.5] · [0.5, -0.5, 0.5, 0.5] = 0.25 - 0.25 + 0.25 + 0.25 = 0.5 (exact)
    expect(denseScore(f32([0.5, 0.5, 0.5, 0.5]), f32([0.5, -0.5, 0.5, 0.5]))).toBe(0.5);
  });

  it('throws InvalidInputError naming both lengths', () => {
    expect(() => denseScore(f32([1, 0]), f32([1, 0, 0]))).toThrow(InvalidInputError);
    expect(() => denseScore(f32([1, 0]), f32([1, 0, 0]))).toThrow(/query 2, passage 3/);
  });
});

describe('batchDenseScores', () => {
  it('scores each row of an n×d matrix', () => {
    // q = [0.5, 0.5]; rows [1, 0], [0, 1], [-1, 1], [2, 2] → 0.5, 0.5, 0, 2
    expect(Array.from(batchDenseScores(f32([0.5, 0.5]), f32([1, 0, 0, 1, -1, 1, 2, 2]), 2))).toEqual([0.5, 0.5, 0, 2]);
    expect(batchDenseScores(f32([1]), f32([]), 1).length).toBe(0);
  });

  it('rejects bad shapes', () => {
    expect(() => batchDenseScores(f32([1, 0]), f32([1, 0, 0]), 2)).toThrow(InvalidInputError);
    expect(() => batchDenseScores(f32([1, 0, 0]), f32([1, 0, 0]), 2)).toThrow(InvalidInputError);
    expect(() => batchDenseScores(f32([]), f32([]), 0)).toThrow(InvalidInputError);
  });
});

describe('lexicalMatchingScore', () => {
  it('sums w_q·w_p over shared ids', () => {
    // {3: 0.5, 7: 0.2} vs {7: 0.5, 9: 1}: only id 7 is shared → 0.2 · 0.5 = 0.1
    expect(
      lexicalMatchingScore(
        sparse([
          [3, 0.5],
          [7, 0.2],
        ]),
        sparse([
          [7, 0.5],
          [9, 1],
        ]),
      ),
    ).toBeCloseTo(0.1, P);
    // {1: 1, 2: 2, 5: 3} vs {2: 4, 5: 0.5, 8: 1}: 2·4 + 3·0.5 = 9.5 (exact)
    const a = sparse([
      [1, 1],
      [2, 2],
      [5, 3],
    ]);
    const b = sparse([
      [2, 4],
      [5, 0.5],
      [8, 1],
    ]);
    expect(lexicalMatchingScore(a, b)).toBe(9.5);
    expect(lexicalMatchingScore(b, a)).toBe(9.5);
  });

  it('is 0 for disjoint or empty vectors', () => {
    expect(
      lexicalMatchingScore(
        sparse([
          [1, 1],
          [4, 1],
        ]),
        sparse([
          [2, 1],
          [3, 1],
          [5, 1],
        ]),
      ),
    ).toBe(0);
    expect(lexicalMatchingScore(sparse([]), sparse([[2, 1]]))).toBe(0);
    expect(lexicalMatchingScore(sparse([]), sparse([]))).toBe(0);
  });

  it('handles ids beyond 2^31', () => {
    // 4_000_000_000 fits Uint32; 0.5 · 0.25 = 0.125 (exact)
    expect(
      lexicalMatchingScore(
        sparse([
          [7, 1],
          [4_000_000_000, 0.5],
        ]),
        sparse([[4_000_000_000, 0.25]]),
      ),
    ).toBe(0.125);
  });

  it('rejects unsorted or duplicate ids and ids/weights length mismatch', () => {
    expect(() =>
      lexicalMatchingScore(
        sparse([
          [7, 1],
          [3, 1],
        ]),
        sparse([[3, 1]]),
      ),
    ).toThrow(InvalidInputError);
    expect(() =>
      lexicalMatchingScore(
        sparse([[3, 1]]),
        sparse([
          [3, 1],
          [3, 2],
        ]),
      ),
    ).toThrow(InvalidInputError);
    const bad: SparseVector = { ids: Uint32Array.of(1, 2), weights: Float32Array.of(1) };
    expect(() => lexicalMatchingScore(bad, sparse([[1, 1]]))).toThrow(InvalidInputError);
  });
});

describe('colbertScore', () => {
  // Query vectors q1 = [1, 0], q2 = [0, 1]; passage vectors p1 = [0.6, 0.8], p2 = [0, 1], p3 = [-1, 0].
  // q1·p = 0.6, 0, -1 → max 0.6;  q2·p = 0.8, 1, 0 → max 1.
  // score = (0.6 + 1) / N_q = 1.6 / 2 = 0.8  (dividing by N_p = 3 would give 0.5333).
  const q = colbert([
    [1, 0],
    [0, 1],
  ]);
  const p = colbert([
    [0.6, 0.8],
    [0, 1],
    [-1, 0],
  ]);

  it('averages the per-query-vector max over the number of query vectors', () => {
    expect(colbertScore(q, p)).toBeCloseTo(0.8, P);
  });

  it('is not symmetric: swapping sides divides by the other count', () => {
    // p as query: p1 → max(0.6, 0.8) = 0.8, p2 → max(0, 1) = 1, p3 → max(-1, 0) = 0; (0.8 + 1 + 0) / 3 = 0.6
    expect(colbertScore(p, q)).toBeCloseTo(0.6, P);
  });

  it('keeps negative maxima (no clamp at 0)', () => {
    // q = [1, 0] vs p = [-1, 0], [-0.5, -0.5]: dots -1, -0.5 → max -0.5 (exact)
    expect(
      colbertScore(
        colbert([[1, 0]]),
        colbert([
          [-1, 0],
          [-0.5, -0.5],
        ]),
      ),
    ).toBe(-0.5);
  });

  it('rejects dim mismatch, bad shapes and empty sets', () => {
    expect(() => colbertScore(q, colbert([[1, 0, 0]]))).toThrow(InvalidInputError);
    expect(() => colbertScore(q, colbert([[1, 0, 0]]))).toThrow(/query 2, passage 3/);
    expect(() => colbertScore({ data: f32([1, 0, 0]), count: 2, dim: 2 }, p)).toThrow(InvalidInputError);
    expect(() => colbertScore({ data: f32([]), count: 0, dim: 2 }, p)).toThrow(InvalidInputError);
    expect(() => colbertScore(q, { data: f32([]), count: 0, dim: 2 })).toThrow(InvalidInputError);
  });
});

describe('computeScore', () => {
  // dense 0.6, sparse 0.1, colbert 0.8 (the examples above).
  const query: M3Representation = {
    dense: f32([0.6, 0.8]),
    sparse: sparse([
      [3, 0.5],
      [7, 0.2],
    ]),
    colbert: colbert([
      [1, 0],
      [0, 1],
    ]),
  };
  const passage: M3Representation = {
    dense: f32([1, 0]),
    sparse: sparse([
      [7, 0.5],
      [9, 1],
    ]),
    colbert: colbert([
      [0.6, 0.8],
      [0, 1],
      [-1, 0],
    ]),
  };

  const expectScores = (got: M3Scores, want: M3Scores) => {
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const k of Object.keys(want) as (keyof M3Scores)[]) expect(got[k], k).toBeCloseTo(want[k], P);
  };

  it('default weights [1, 1, 1]', () => {
    // sparse+dense = (0.1 + 0.6) / 2 = 0.35; colbert+sparse+dense = (0.8 + 0.1 + 0.6) / 3 = 0.5
    expectScores(computeScore(query, passage), { dense: 0.6, sparse: 0.1, colbert: 0.8, 'sparse+dense': 0.35, 'colbert+sparse+dense': 0.5 });
  });

  it('README weights [0.4, 0.2, 0.4] for [dense, sparse, colbert]', () => {
    // sparse+dense = (0.2·0.1 + 0.4·0.6) / (0.2 + 0.4) = 0.26 / 0.6 = 0.43333…
    // colbert+sparse+dense = (0.4·0.8 + 0.2·0.1 + 0.4·0.6) / 1.0 = 0.32 + 0.02 + 0.24 = 0.58
    expectScores(computeScore(query, passage, [0.4, 0.2, 0.4]), {
      dense: 0.6,
      sparse: 0.1,
      colbert: 0.8,
      'sparse+dense': 0.26 / 0.6,
      'colbert+sparse+dense': 0.58,
    });
  });

  it('applies weights in the order [dense, sparse, colbert]', () => {
    // [1, 0, 3]: sparse+dense = 0.6 / 1 = 0.6; colbert+sparse+dense = (1·0.6 + 3·0.8) / 4 = 3.0 / 4 = 0.75
    // (the reversed order [colbert, sparse, dense] would give (0.8 + 1.8) / 4 = 0.65)
    const s = computeScore(query, passage, [1, 0, 3]);
    expect(s['sparse+dense']).toBeCloseTo(0.6, P);
    expect(s['colbert+sparse+dense']).toBeCloseTo(0.75, P);
  });

  it('gives NaN for sparse+dense when both of its weights are zero', () => {
    const s = computeScore(query, passage, [0, 0, 1]);
    expect(s['sparse+dense']).toBeNaN();
    expect(s['colbert+sparse+dense']).toBeCloseTo(0.8, P);
  });

  it('rejects invalid weights', () => {
    for (const w of [
      [0, 0, 0],
      [-1, 1, 1],
      [1, Number.NaN, 1],
      [1, 1, Number.POSITIVE_INFINITY],
    ] as [number, number, number][]) {
      expect(() => computeScore(query, passage, w), String(w)).toThrow(InvalidInputError);
    }
    expect(() => computeScore(query, passage, [1, 1] as unknown as [number, number, number])).toThrow(InvalidInputError);
  });

  it('propagates shape errors from the individual scores', () => {
    expect(() => computeScore(query, { ...passage, dense: f32([1, 0, 0]) })).toThrow(InvalidInputError);
    expect(() => computeScore(query, { ...passage, colbert: colbert([[1, 0, 0]]) })).toThrow(InvalidInputError);
  });
});
