import { describe, expect, it } from 'vitest';
import { GROUP_SLACK, lengthGroups, MIN_GROUP_TOKENS } from './groups.ts';

describe('lengthGroups', () => {
  it('covers every row once, longest first, within the padding bound', () => {
    const lengths = [12, 38, 9, 21, 30, 8, 17, 25, 33, 14, 11, 36, 19, 27, 10, 22];
    const groups = lengthGroups(lengths);
    expect(groups.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    for (const g of groups) {
      const ls = g.map((i) => lengths[i]);
      expect(ls).toEqual([...ls].sort((a, b) => b - a));
      const real = ls.reduce((a, b) => a + b, 0);
      expect(ls[0] * ls.length).toBeLessThanOrEqual(Math.max(GROUP_SLACK * real, MIN_GROUP_TOKENS));
    }
    expect(groups.length).toBeGreaterThan(1);
  });

  it('keeps short rows together up to MIN_GROUP_TOKENS and splits a long row from short ones', () => {
    expect(lengthGroups([3, 5, 4, 8])).toEqual([[3, 1, 2, 0]]);
    expect(lengthGroups([512, 3])).toEqual([[0], [1]]);
    expect(lengthGroups([7])).toEqual([[0]]);
  });
});
