import { describe, expect, it } from 'vitest';
import { NumericError } from '../errors.ts';
import { combineTokenWeights as oracleCombine } from '../reference/heads.ts';
import { pool as oraclePool, truncateAndNormalize as oracleTruncate } from '../reference/pooling.ts';
import { seeded } from '../gpu/kernels/testing.ts';
import { assertFinite, combineTokenWeights, pool, truncateAndNormalize } from './postprocess.ts';

// Production's post-processing against the CPU reference's own copies (the oracle).
describe('postprocess vs the reference', () => {
  const B = 3;
  const T = 7;
  const H = 13;
  const hidden = seeded(B * T * H, 11, -2, 2);
  const mask = Uint8Array.from({ length: B * T }, (_, i) => (i % T < [7, 4, 1][Math.floor(i / T)] ? 1 : 0));
  const close = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

  it('pools (CLS, masked mean) and truncates (with and without the pre-truncation layer norm) as the oracle does', () => {
    for (const mode of ['cls', 'mean'] as const) {
      const p = pool(hidden, mask, B, T, H, mode);
      expect(close(p, oraclePool(hidden, mask, B, T, H, mode))).toBeLessThan(1e-6);
      for (const o of [
        { dims: 5, normalize: true },
        { dims: H, normalize: false },
        { dims: 4, normalize: true, layerNormBeforeTruncate: true },
      ]) {
        expect(close(truncateAndNormalize(p, B, H, o), oracleTruncate(p, B, H, o)), JSON.stringify(o)).toBeLessThan(1e-6);
      }
    }
  });

  it('combines lexical weights as the oracle does: max per id, unused ids and non-positive weights dropped', () => {
    const raw = Float32Array.from([0.5, -1, 0.25, 0.75, 0, 0.5, 9]);
    const ids = [0, 7, 7, 9, 11, 7, 1];
    const m = [1, 1, 1, 1, 1, 1, 0];
    const got = combineTokenWeights(raw, ids, m, 7, new Set([0, 1, 2, 3]));
    expect({ ids: [...got.ids], weights: [...got.weights] }).toEqual({ ids: [7, 9], weights: [0.5, 0.75] });
    const want = oracleCombine(raw, ids, m, 7, new Set([0, 1, 2, 3]));
    expect([...got.ids]).toEqual([...want.ids]);
    expect([...got.weights]).toEqual([...want.weights]);
  });

  it('assertFinite names the first non-finite value', () => {
    expect(() => assertFinite(Float32Array.from([1, 2]), 'x')).not.toThrow();
    expect(() => assertFinite(Float32Array.from([1, NaN]), 'dense embeddings')).toThrow(NumericError);
    expect(() => assertFinite(Float32Array.from([1, -Infinity]), 'dense embeddings')).toThrow(/received "-Infinity at index 1"/);
  });
});
