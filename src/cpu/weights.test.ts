import { expect, it } from 'vitest';
import { f16ToF32, toFloat32, type RawTensor } from '../model/tensor.ts';
import { transposeConcat, upcast } from './weights.ts';

it('upcasts every f16 bit pattern exactly as the loader does', () => {
  const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const got = upcast({ dtype: 'f16', shape: [65536], data: new Uint8Array(bits.buffer) });
  const wrong: string[] = [];
  for (let h = 0; h < 65536; h++) {
    const want = Math.fround(f16ToF32(h));
    if (!(Object.is(got[h], want) || (Number.isNaN(want) && Number.isNaN(got[h])))) wrong.push(`0x${h.toString(16)}: ${got[h]} != ${want}`);
  }
  expect(wrong).toEqual([]);
});

it('upcasts bf16 and copies f32 (also from an unaligned view) like toFloat32', () => {
  const bf: RawTensor = { dtype: 'bf16', shape: [4], data: new Uint8Array(new Uint16Array([0x3f80, 0xc040, 0x0001, 0x7f80]).buffer) };
  expect(Array.from(upcast(bf))).toEqual(Array.from(toFloat32(bf)));
  const bytes = new Uint8Array(13);
  new DataView(bytes.buffer).setFloat32(1, 1.5, true);
  new DataView(bytes.buffer).setFloat32(5, -2.25, true);
  new DataView(bytes.buffer).setFloat32(9, 3e-8, true);
  const f: RawTensor = { dtype: 'f32', shape: [3], data: bytes.subarray(1) };
  expect(Array.from(upcast(f))).toEqual(Array.from(toFloat32(f)));
});

it('transposes (N, K) matrices into one (K, ΣN) right operand', () => {
  // a: (2, 3), b: (1, 3) → (3, 3): column j of the result is row j of [a; b].
  const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const b = Float32Array.from([7, 8, 9]);
  expect(Array.from(transposeConcat([a, b], 3))).toEqual([1, 4, 7, 2, 5, 8, 3, 6, 9]);
});
