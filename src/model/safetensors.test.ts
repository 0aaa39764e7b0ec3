import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../errors.ts';
import { writeSafetensors } from '../../tools/fixtures/safetensors-writer.ts';
import { chunked } from '../../tests/helpers/streams.ts';
import { readSafetensors, streamSafetensors } from './safetensors.ts';
import { f32ToF16, toFloat32, type RawTensor } from './tensor.ts';

function f32(shape: number[], values: number[]): RawTensor {
  return { dtype: 'f32', shape, data: new Uint8Array(Float32Array.from(values).buffer) };
}

const tensors: [string, RawTensor][] = [
  ['a.weight', f32([2, 3], [1, -2, 3.5, 0, 1e-8, -7])],
  ['b.bias', { dtype: 'f16', shape: [3], data: new Uint8Array(Uint16Array.from([f32ToF16(1.5), f32ToF16(-0.333), f32ToF16(65504)]).buffer) }],
  // bf16 of 1.0, -2.0, 0.15625 are the upper halves of their f32 bits.
  ['c', { dtype: 'bf16', shape: [1, 3], data: new Uint8Array(Uint16Array.from([0x3f80, 0xc000, 0x3e20]).buffer) }],
];

describe('safetensors', () => {
  const file = writeSafetensors(tensors);

  it('round-trips f32, f16 and bf16 with exact values', () => {
    const read = readSafetensors(file);
    expect([...read.keys()]).toEqual(['a.weight', 'b.bias', 'c']);
    expect([...toFloat32(read.get('a.weight')!)]).toEqual([...Float32Array.from([1, -2, 3.5, 0, 1e-8, -7])]);
    expect([...toFloat32(read.get('b.bias')!)]).toEqual([1.5, -0.3330078125, 65504]);
    expect([...toFloat32(read.get('c')!)]).toEqual([1, -2, 0.15625]);
  });

  it.each([1, 3, 7, 64, 1 << 20])('streams the same tensors in %i-byte chunks', async (size) => {
    const out: [string, number[]][] = [];
    for await (const { name, tensor } of streamSafetensors(chunked(file, size), file.byteLength)) out.push([name, [...toFloat32(tensor)]]);
    const whole = [...readSafetensors(file)].map(([n, t]) => [n, [...toFloat32(t)]]);
    expect(out).toEqual(whole);
  });

  it('rejects a truncated stream with a typed error', async () => {
    const it = streamSafetensors(chunked(file.slice(0, file.byteLength - 3), 16));
    await expect(async () => {
      for await (const _ of it) void _;
    }).rejects.toThrow(/ended early.*tensor "c"/);
  });

  it('rejects non-safetensors bytes: HTML, absurd header length, bad JSON, bad offsets', () => {
    const html = new TextEncoder().encode('<!doctype html><html><body>index</body></html>');
    expect(() => readSafetensors(html)).toThrow(ModelFormatError);
    const bad = file.slice();
    new DataView(bad.buffer).setUint32(0, 7, true);
    expect(() => readSafetensors(bad)).toThrow(/not valid UTF-8 JSON|implausible|header/);
    const header = (obj: unknown) => {
      const j = new TextEncoder().encode(JSON.stringify(obj));
      const b = new Uint8Array(8 + j.byteLength + 16);
      new DataView(b.buffer).setUint32(0, j.byteLength, true);
      b.set(j, 8);
      return b;
    };
    expect(() => readSafetensors(header({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 12] } }))).toThrow(/do not match its shape/);
    expect(() => readSafetensors(header({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }))).toThrow(/overlap/);
    expect(() => readSafetensors(header({ x: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }))).toThrow(/past the end/);
    expect(() => readSafetensors(header({ x: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }))).toThrow(/unknown dtype/);
  });

  it('skips tensors of dtypes the encoder never needs (e.g. I64 position_ids)', () => {
    const ids: RawTensor = { dtype: 'f32', shape: [2], data: new Uint8Array(8) };
    const f = writeSafetensors([['w', ids]]);
    // Rewrite the dtype in the header to I32 (same width) and check it is skipped, not an error.
    const text = new TextDecoder().decode(f).replace('"F32"', '"I32"');
    expect(readSafetensors(new TextEncoder().encode(text)).size).toBe(0);
  });
});
