import { KERNEL_SCHEDULES, scheduleTag, type WeightDType } from '../kernel.ts';
import { rmsnormProgram } from './rmsnorm.ts';
import { rmsnormRef } from './rmsnorm.ref.ts';
import { uploadWeight } from './testing.ts';
import { seeded, type KernelCase } from './testing.ts';

// Odd sizes; eps 1e-5 (m3BERT / Llama rms_norm_eps) and 1e-6.
const shapes = [
  { M: 1, H: 13, eps: 1e-5 },
  { M: 7, H: 40, eps: 1e-5 },
  { M: 37, H: 52, eps: 1e-6 },
  { M: 7, H: 387, eps: 1e-5 },
  { M: 130, H: 1024, eps: 1e-5 },
];

/**
 * Tolerance 1e-5 absolute on outputs of magnitude ≲ 3.5 (x ∈ [−3, 3), w ∈ [0.5, 1.5)): a few f32 ulps
 * plus the f32 sum of squares' rounding and WGSL inverseSqrt (2 ulp); measured ≤ 4.8e-7 on SwiftShader.
 */
const TOL = 1e-5;

// Both schedules (the 'registers' one sums each row in a loop instead of a tree).
export const rmsnormCases: KernelCase[] = KERNEL_SCHEDULES.flatMap((schedule) =>
  shapes.flatMap((s) =>
    (['f32', 'f16x2'] as WeightDType[]).map((wDtype) => ({
      name: `rmsnorm/${scheduleTag(schedule)}/${wDtype} ${s.M}x${s.H} eps=${s.eps}`,
      async run(rt) {
        const n = s.M * s.H;
        const seed = s.M * 104729 + s.H;
        const x = seeded(n, seed, -3, 3);
        const w = uploadWeight(rt, seeded(s.H, seed + 1, 0.5, 1.5), wDtype);
        const xb = rt.upload(x);
        const yb = rt.createBuffer(n * 4);
        await rt.run(rmsnormProgram({ M: s.M, H: s.H }, { wDtype, eps: s.eps, schedule }), [xb, w.buf, yb]);
        const got = await rt.readF32(yb, n);
        for (const b of [xb, w.buf, yb]) b.destroy();
        return { got, want: rmsnormRef(x, s.M, s.H, w.ref, s.eps), maxAbs: TOL };
      },
    })),
  ),
);
