import { NonFiniteWeightError } from '../errors.ts';
import type { RawTensor } from './tensor.ts';

/**
 * Throws NonFiniteWeightError when a weight holds NaN or ±Inf. A NaN weight gives NaN on the GPU and may
 * give finite (wrong) output on a CPU path, so a corrupt checkpoint must stop at load. Checks the exponent
 * bits only (all ones = Inf/NaN in IEEE 754 binary32/16 and bfloat16): one pass, no decoding.
 */
export function checkFinite(name: string, t: RawTensor): void {
  const d = t.data;
  let bad = -1;
  if (t.dtype === 'f32') {
    if (d.byteOffset % 4 === 0) {
      const u = new Uint32Array(d.buffer, d.byteOffset, d.byteLength >>> 2);
      for (let i = 0; i < u.length; i++)
        if ((u[i] & 0x7f800000) === 0x7f800000) {
          bad = i;
          break;
        }
    } else {
      // Little-endian: the exponent's top 7 bits are in byte 3, its lowest bit in byte 2's top bit.
      for (let i = 0; i + 3 < d.length; i += 4)
        if ((d[i + 3] & 0x7f) === 0x7f && d[i + 2] & 0x80) {
          bad = i / 4;
          break;
        }
    }
  } else {
    // f16: exponent 0x7c00; bf16: 0x7f80 (the upper half of an f32).
    const mask = t.dtype === 'f16' ? 0x7c00 : 0x7f80;
    for (let i = 0; i + 1 < d.length; i += 2)
      if (((d[i] | (d[i + 1] << 8)) & mask) === mask) {
        bad = i / 2;
        break;
      }
  }
  if (bad >= 0) {
    throw new NonFiniteWeightError(`weight "${name}" holds a non-finite value (NaN or Inf) at element ${bad}: the checkpoint is corrupt or was converted badly`, {
      expected: 'finite values (pass checkFinite: false to skip this check)',
      received: 'NaN or Inf',
    });
  }
}
