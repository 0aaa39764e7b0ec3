import { POOLING_MODES, type Pooling } from '../../model/config.ts';
import { poolingProgram } from './pooling.ts';
import { poolingRef } from './pooling.ref.ts';
import { seeded, type KernelCase } from './testing.ts';

// Odd T; lengths include 1, T, 0 (all padding: zeros, or -1e9 for max) and values in between.
const shapes = [
  { B: 1, T: 1, H: 13, lengths: [1] },
  { B: 3, T: 7, H: 40, lengths: [7, 1, 4] },
  { B: 4, T: 37, H: 387, lengths: [37, 1, 0, 20] },
  { B: 2, T: 129, H: 1024, lengths: [129, 64] },
];

/**
 * CLS, lasttoken and max pick values: exact. Mean: an f32 sequential sum of ≤ 129 values in [−2, 2) divided by
 * the count (WGSL f32 division: 2.5 ulp) against a double-precision reference: tolerance 1e-6 absolute
 * (measured ≤ 1.2e-7 on SwiftShader). mean_sqrt_len_tokens divides the same sum by sqrt(len) (≤ 11.4 here),
 * so its error is up to sqrt(len)× the mean's; weightedmean sums (t + 1)·x, up to 129× larger terms, divided by
 * len·(len + 1)/2: tolerance 1e-5 for both.
 */
const TOL: Record<Pooling, number> = { cls: 0, lasttoken: 0, max: 0, mean: 1e-6, mean_sqrt_len_tokens: 1e-5, weightedmean: 1e-5 };
export const poolingCases: KernelCase[] = shapes.flatMap((s) =>
  POOLING_MODES.map((mode) => ({
    name: `pooling/${mode} ${s.B}x${s.T}x${s.H} len=${s.lengths.join(',')}`,
    async run(rt) {
      const { B, T, H } = s;
      const x = seeded(B * T * H, B * 65537 + T * 31 + H, -2, 2);
      const lengths = new Uint32Array(s.lengths);
      const xb = rt.upload(x);
      const lb = rt.upload(lengths);
      const yb = rt.createBuffer(B * H * 4);
      await rt.run(poolingProgram({ B, T, H }, { mode }), [xb, lb, yb]);
      const got = await rt.readF32(yb, B * H);
      for (const b of [xb, lb, yb]) b.destroy();
      return { got, want: poolingRef(x, lengths, B, T, H, mode), maxAbs: TOL[mode] };
    },
  })),
);
