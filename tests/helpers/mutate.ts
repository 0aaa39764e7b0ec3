import { Rng } from '../../tools/fixtures/rng.ts';

/**
 * Seeded mutators for fuzzing file parsers (tests/loader-fuzz.test.ts). Each takes the bytes of a valid file
 * and returns a damaged copy; `mutate` picks one to three of them. They aim at what parsers trust: lengths
 * and offsets (u32/u64 fields set to 0, -1, 2^31, the file size ± 1), structure (truncation, a duplicated
 * or deleted range, inserted bytes) and contents (bit flips, bytes from a small set of interesting values).
 */
export type Mutator = (bytes: Uint8Array, rng: Rng) => Uint8Array;

const INTERESTING_U8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x28, 0x2e, 0x50, 0x4b, 0x22, 0x7b, 0x7d];

function int(rng: Rng, n: number): number {
  return Math.floor(rng.uniform() * n);
}

export const MUTATORS: Record<string, Mutator> = {
  flipBit(b, rng) {
    const out = b.slice();
    out[int(rng, out.length)] ^= 1 << int(rng, 8);
    return out;
  },
  interestingByte(b, rng) {
    const out = b.slice();
    out[int(rng, out.length)] = INTERESTING_U8[int(rng, INTERESTING_U8.length)];
    return out;
  },
  interestingU32(b, rng) {
    const out = b.slice();
    if (out.length < 4) return out;
    const values = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, b.length, b.length + 1, b.length - 1, 0xfffffffe];
    new DataView(out.buffer).setUint32(int(rng, out.length - 3), values[int(rng, values.length)], true);
    return out;
  },
  interestingU64(b, rng) {
    const out = b.slice();
    if (out.length < 8) return out;
    const values = [0n, 1n, 0xffffffffffffffffn, 2n ** 53n, 2n ** 32n, BigInt(b.length), BigInt(b.length * 64)];
    new DataView(out.buffer).setBigUint64(int(rng, out.length - 7), values[int(rng, values.length)], true);
    return out;
  },
  truncate(b, rng) {
    return b.slice(0, int(rng, b.length));
  },
  deleteRange(b, rng) {
    const at = int(rng, b.length);
    const n = 1 + int(rng, Math.min(64, b.length - at));
    const out = new Uint8Array(b.length - n);
    out.set(b.subarray(0, at));
    out.set(b.subarray(at + n), at);
    return out;
  },
  duplicateRange(b, rng) {
    const at = int(rng, b.length);
    const n = 1 + int(rng, Math.min(256, b.length - at));
    const out = new Uint8Array(b.length + n);
    out.set(b.subarray(0, at + n));
    out.set(b.subarray(at), at + n);
    return out;
  },
  insertRandom(b, rng) {
    const at = int(rng, b.length + 1);
    const n = 1 + int(rng, 16);
    const out = new Uint8Array(b.length + n);
    out.set(b.subarray(0, at));
    for (let i = 0; i < n; i++) out[at + i] = int(rng, 256);
    out.set(b.subarray(at), at + n);
    return out;
  },
};

const NAMES = Object.keys(MUTATORS);

/** One to three mutations of `bytes`, chosen by `rng`; returns the result and the mutators' names. */
export function mutate(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; ops: string[] } {
  let out = bytes;
  const ops: string[] = [];
  const k = 1 + int(rng, 3);
  for (let i = 0; i < k && out.length > 0; i++) {
    const name = NAMES[int(rng, NAMES.length)];
    ops.push(name);
    out = MUTATORS[name](out, rng);
  }
  return { bytes: out, ops };
}
