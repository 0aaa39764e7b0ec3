/**
 * Length groups inside one padded batch. On a CPU every padded token costs as much as a real one, and
 * matmuls stay efficient at a few hundred rows, so a batch is run as sub-batches of similar lengths,
 * each padded only to its own longest row: 32 SciFact queries (8..38 tokens) pad to ~1.1× their real
 * tokens instead of 1.8×. Tiny groups are not worth their extra session calls, so a group may always
 * grow to MIN_GROUP_TOKENS padded tokens.
 */
export const GROUP_SLACK = 1.2;
export const MIN_GROUP_TOKENS = 128;

/** Row indexes per group, longest rows first; every group's padded tokens ≤ max(GROUP_SLACK × real tokens, MIN_GROUP_TOKENS). */
export function lengthGroups(lengths: readonly number[]): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const groups: number[][] = [];
  let group: number[] = [];
  let longest = 0;
  let real = 0;
  for (const i of order) {
    const n = lengths[i];
    const padded = longest * (group.length + 1);
    if (group.length && padded > Math.max(GROUP_SLACK * (real + n), MIN_GROUP_TOKENS)) {
      groups.push(group);
      group = [];
    }
    if (!group.length) {
      longest = n;
      real = 0;
    }
    group.push(i);
    real += n;
  }
  if (group.length) groups.push(group);
  return groups;
}
