import { mclsPoolProgram } from './mcls_pool.ts';
import { mclsPoolRef } from './mcls_pool.ref.ts';
import { seeded, type KernelCase } from './testing.ts';

// CLS id 0 at position 0 and every k-th position; one row with a single CLS, one with none past padding.
const shapes = [
  { B: 1, T: 1, H: 13, lengths: [1], every: 4 },
  { B: 2, T: 37, H: 52, lengths: [37, 9], every: 8 },
  { B: 3, T: 130, H: 48, lengths: [130, 1, 65], every: 17 },
];

export const mclsPoolCases: KernelCase[] = shapes.map((s) => ({
  name: `mcls_pool ${s.B}x${s.T}x${s.H} every ${s.every}`,
  async run(rt) {
    const { B, T, H, lengths } = s;
    const ids = Uint32Array.from({ length: B * T }, (_, i) => ((i % T) % s.every === 0 ? 0 : 5 + (i % 11)));
    const x = seeded(B * T * H, B * T + H, -2, 2);
    const y = rt.createBuffer(B * H * 4);
    await rt.run(mclsPoolProgram({ B, T, H, clsId: 0 }), [rt.upload(x), rt.upload(ids), rt.upload(Uint32Array.from(lengths)), y]);
    return { got: await rt.readF32(y, B * H), want: mclsPoolRef(x, ids, lengths, B, T, H, 0), maxAbs: 1e-6 };
  },
}));
