import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHARED_DATA } from '../../tools/fixtures/paths.ts';
import { ModelFormatError } from '../errors.ts';
import { torchStateDictRecords, writeTorchStateDict, writeTorchZip } from '../../tools/fixtures/torch-writer.ts';
import { writeSafetensors } from '../../tools/fixtures/safetensors-writer.ts';
import { PickleBuilder } from '../../tests/helpers/pickle-builder.ts';
import { chunked } from '../../tests/helpers/streams.ts';
import { streamSafetensors } from './safetensors.ts';
import type { RawTensor } from './tensor.ts';
import { readTorchStateDict } from './torch.ts';
import { streamTorchStateDict, type TorchStreamStats } from './torch-stream.ts';

function f32(shape: number[], seed: number): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'f32', shape, data: new Uint8Array(Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7 + i)).buffer) };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

const tensors = new Map<string, RawTensor>([
  ['a.weight', f32([3, 5], 1)],
  ['b.bias', { dtype: 'f16', shape: [7], data: Uint8Array.from({ length: 14 }, (_, i) => (i * 37) & 0x3f) }],
  ...Array.from({ length: 11 }, (_, i) => [`layer.${i}.w`, f32([2, i + 1], i + 2)] as [string, RawTensor]),
]);

describe('streamTorchStateDict', () => {
  const file = writeTorchStateDict(tensors, 'pytorch_model');

  it.each([1, 16, 61, 4096, 1 << 20])('reads every tensor bit for bit in %i-byte chunks (storages arrive in sorted-key order)', async (size) => {
    const got = await collect(streamTorchStateDict(chunked(file, size)));
    expect(new Set(got.map((g) => g.name))).toEqual(new Set(tensors.keys()));
    // torch writes data/0, data/1, data/10, data/11, data/2, ...: storage order, not pickle order.
    expect(got.map((g) => g.name).slice(0, 4)).toEqual(['a.weight', 'b.bias', 'layer.8.w', 'layer.9.w']);
    for (const { name, tensor } of got) {
      expect(tensor.shape).toEqual(tensors.get(name)!.shape);
      expect(Buffer.compare(Buffer.from(tensor.data), Buffer.from(tensors.get(name)!.data)), name).toBe(0);
    }
  });

  const realHeads = resolve(SHARED_DATA, 'heads/bge-m3');
  it.skipIf(!existsSync(realHeads))('streams the real bge-m3 heads (torch >= 2.1: byteorder, .data/serialization_id) to what the whole-file reader gives', async () => {
    for (const file of ['colbert_linear.pt', 'sparse_linear.pt']) {
      const bytes = new Uint8Array(readFileSync(resolve(realHeads, file)));
      const whole = readTorchStateDict(bytes);
      const got = await collect(streamTorchStateDict(chunked(bytes, 4099)));
      expect(got.map((g) => g.name).sort(), file).toEqual([...whole.keys()].sort());
      for (const { name, tensor } of got) {
        const w = whole.get(name)!;
        expect([tensor.dtype, tensor.shape]).toEqual([w.dtype, w.shape]);
        expect(Buffer.compare(Buffer.from(tensor.data), Buffer.from(w.data)), name).toBe(0);
      }
    }
  });

  it('holds storages stored before data.pkl, and says how much', async () => {
    const records = torchStateDictRecords(tensors);
    const pkl = records.findIndex(([n]) => n === 'data.pkl');
    const reordered = [...records.slice(pkl + 1, pkl + 4), records[pkl], ...records.slice(pkl + 4)];
    const stats: TorchStreamStats = { heldBytes: 0, maxHeldBytes: 0 };
    const got = await collect(streamTorchStateDict(chunked(writeTorchZip('archive', reordered), 100), { stats }));
    expect(got).toHaveLength(tensors.size);
    const early = reordered.slice(0, 2).reduce((n, [, b]) => n + b.byteLength, 0); // byteorder + data/0 ... before data.pkl
    expect(stats.maxHeldBytes).toBeGreaterThanOrEqual(early - 6);
    expect(stats.heldBytes).toBe(0);
  });

  it('shares one storage between the tensors that view it (no copy) and skips int64 buffers, reporting them', async () => {
    const storage = new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer);
    const pkl = new PickleBuilder().orderedDict().mark().str('x').tensor('FloatStorage', '0', 6, [2, 2]).put(1).str('y').tensor('FloatStorage', '0', 6, [2], 4).str('embeddings.position_ids').tensor('LongStorage', '1', 3, [1, 3]).op(0x75).stop();
    const zip = writeTorchZip('archive', [
      ['data.pkl', pkl],
      ['data/0', storage],
      ['data/1', new Uint8Array(24)],
      ['version', new TextEncoder().encode('3\n')],
    ]);
    const skipped: string[] = [];
    const got = await collect(streamTorchStateDict(chunked(zip, 7), { onSkipped: (n, cls) => skipped.push(`${n}:${cls}`) }));
    expect(got.map((g) => g.name)).toEqual(['x', 'y']);
    expect(got[0].tensor.data.buffer).toBe(got[1].tensor.data.buffer);
    expect([...new Float32Array(got[1].tensor.data.slice().buffer)]).toEqual([5, 6]);
    expect(skipped).toEqual(['embeddings.position_ids:torch.LongStorage']);
  });

  it('refuses a pickle that reuses one storage under 400 keys (decoded bytes bounded by the file size)', async () => {
    const n = 65536; // 256 KiB of f32
    const b = new PickleBuilder().orderedDict().mark().str('k0').tensor('FloatStorage', '0', n, [n]).put(1);
    for (let i = 1; i < 400; i++) b.str(`k${i}`).get(1);
    const zip = writeTorchZip('archive', [
      ['data.pkl', b.op(0x75).stop()],
      ['data/0', new Uint8Array(n * 4)],
    ]);
    const e = await rejection(collect(streamTorchStateDict(chunked(zip, 1 << 16))));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect((e as Error).message).toMatch(/more tensor bytes than it could hold/);
    expect(() => readTorchStateDict(zip)).toThrow(/more tensor bytes than it could hold/);
  });

  it('a 200,000-item APPENDS and a ZIP64 field past its entry are ModelFormatErrors or values, never RangeErrors', async () => {
    const b = new PickleBuilder().op(0x5d).mark();
    for (let i = 0; i < 200_000; i++) b.op(0x4b, 1);
    const pkl = b.op(0x65, 0x30).orderedDict().stop(); // list.extend(...), POP, then the (empty) state_dict
    const zip = writeTorchZip('archive', [['data.pkl', pkl]]);
    expect(readTorchStateDict(zip).size).toBe(0);
    expect(await collect(streamTorchStateDict(chunked(zip, 4096)))).toEqual([]);

    // Central directory entry 0: sizes 0xFFFFFFFF and a 4-byte extra field claiming ZIP64 id with 40 bytes.
    const bad = writeTorchStateDict(tensors).slice();
    const view = new DataView(bad.buffer);
    let cd = -1;
    for (let i = bad.length - 22; i >= 0; i--) if (view.getUint32(i, true) === 0x02014b50) cd = i;
    view.setUint32(cd + 20, 0xffffffff, true);
    view.setUint32(cd + 24, 0xffffffff, true);
    const nameLen = view.getUint16(cd + 28, true);
    view.setUint16(cd + 30, 4, true);
    view.setUint16(cd + 46 + nameLen, 0x0001, true);
    view.setUint16(cd + 46 + nameLen + 2, 40, true);
    expect(() => readTorchStateDict(bad)).toThrow(ModelFormatError);
  });

  it('names a truncated stream, a compressed entry and a legacy file', async () => {
    for (const cut of [10, 100, 300, Math.floor(file.byteLength / 2)]) {
      const e = await rejection(collect(streamTorchStateDict(chunked(file.slice(0, cut), 64))));
      expect(e, `cut at ${cut}`).toBeInstanceOf(ModelFormatError);
    }
    const deflated = file.slice();
    deflated[8] = 8;
    expect(String(await rejection(collect(streamTorchStateDict(chunked(deflated, 64)))))).toMatch(/method 8 \(deflate\)/);
    expect(String(await rejection(collect(streamTorchStateDict(chunked(Uint8Array.from([0x80, 2, 0x8a, 0x0a]), 64)))))).toMatch(/legacy/);
  });
});

describe('streamSafetensors', () => {
  it('is linear in the number of chunks: 16-byte chunks of 2 MB take < 4x the time of 0.5 MB', async () => {
    const time = async (n: number) => {
      const bytes = writeSafetensors([['w', { dtype: 'f32', shape: [n / 4], data: new Uint8Array(n) }]]);
      let best = Infinity;
      for (let r = 0; r < 2; r++) {
        const t0 = performance.now();
        const got = await collect(streamSafetensors(chunked(bytes, 16), bytes.byteLength));
        expect(got[0].tensor.data.byteLength).toBe(n);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    const small = await time(1 << 19);
    const large = await time(1 << 21);
    // Quadratic (the old shift()-per-chunk reader) would be 16x; linear is 4x plus noise.
    expect(large / small).toBeLessThan(8);
  });

  it('names an unknown dtype such as "toString" (not "expected NaN bytes") and reports undecoded ones', async () => {
    const st = writeSafetensors([['a', { dtype: 'f32', shape: [1], data: new Uint8Array(4) }]]);
    const header = new TextDecoder().decode(st.subarray(8, 8 + Number(new DataView(st.buffer).getBigUint64(0, true)))).replace('"F32"', '"toString"');
    const h = new TextEncoder().encode(header);
    const file = new Uint8Array(8 + h.length + 4);
    new DataView(file.buffer).setBigUint64(0, BigInt(h.length), true);
    file.set(h, 8);
    const e = await rejection(collect(streamSafetensors(chunked(file, 64), file.byteLength)));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect((e as Error).message).toMatch(/unknown dtype.*received "toString"/);

    const mixed = writeSafetensors([
      ['i32', { dtype: 'f32', shape: [1], data: new Uint8Array(4) }],
      ['ok', { dtype: 'f32', shape: [1], data: new Uint8Array(4) }],
    ]);
    // Relabel the first F32 entry as I32 (same width): it is skipped and reported, the other still read.
    const hl = Number(new DataView(mixed.buffer).getBigUint64(0, true));
    const hdr = new TextDecoder().decode(mixed.subarray(8, 8 + hl)).replace('"F32"', '"I32"');
    mixed.set(new TextEncoder().encode(hdr), 8);
    const skipped: string[] = [];
    const got = await collect(streamSafetensors(chunked(mixed, 3), mixed.byteLength, { onSkipped: (n, d) => skipped.push(`${n}:${d}`) }));
    expect(got.map((g) => g.name)).toEqual(['ok']);
    expect(skipped).toEqual(['i32:I32']);
  });
});
