import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { planBatches } from './batching.ts';

describe('planBatches', () => {
  it('sorts by length and caps padded tokens per batch', () => {
    const lengths = [5, 100, 7, 3, 100, 6];
    const b = planBatches(lengths, 210);
    expect(b).toEqual([
      [1, 4],
      [2, 5, 0, 3],
    ]);
    for (const batch of b) expect(Math.max(...batch.map((i) => lengths[i])) * batch.length).toBeLessThanOrEqual(210);
  });

  it('keeps a long document away from many short texts', () => {
    const lengths = [8192, ...Array(300).fill(12)];
    const b = planBatches(lengths, 8192);
    expect(b[0]).toEqual([0]);
    expect(
      b
        .slice(1)
        .flat()
        .sort((x, y) => x - y),
    ).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(b.slice(1).every((x) => x.length * 12 <= 8192)).toBe(true);
  });

  it('still emits a text longer than the cap, alone', () => {
    expect(planBatches([50, 9], 10)).toEqual([[0], [1]]);
  });

  it('respects the batch size cap and covers every index exactly once', () => {
    const lengths = Array.from({ length: 37 }, (_, i) => ((i * 7) % 11) + 1);
    const b = planBatches(lengths, 1e6, 8);
    expect(b.every((x) => x.length <= 8)).toBe(true);
    expect(b.flat().sort((x, y) => x - y)).toEqual([...lengths.keys()]);
  });

  it('rejects a non-positive token budget', () => {
    expect(() => planBatches([1], 0)).toThrow(InvalidInputError);
  });
});
