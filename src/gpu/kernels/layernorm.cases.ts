import { KERNEL_SCHEDULES, scheduleTag, type KernelSchedule, type WeightDType } from '../kernel.ts';
import { layernormProgram } from './layernorm.ts';
import { layernormRef } from './layernorm.ref.ts';
import { seeded, uploadWeight, type KernelCase } from './testing.ts';

interface LnShape {
  M: number;
  H: number;
  eps: number;
  /** Common offset added to x (checks the shifted two-pass mean/variance). */
  offset?: number;
}

// Odd sizes: rows 1/7/37/130, H 13/40/48/52/387/1024; eps 1e-12 (BERT) and 1e-5 (XLM-R, torch default).
const shapes: LnShape[] = [
  { M: 1, H: 13, eps: 1e-12 },
  { M: 7, H: 48, eps: 1e-5 },
  { M: 37, H: 387, eps: 1e-12 },
  { M: 130, H: 1024, eps: 1e-5 },
];
const extra: (LnShape & { wDtype: WeightDType })[] = [
  { M: 7, H: 40, eps: 1e-12, wDtype: 'f32' },
  { M: 37, H: 52, eps: 1e-5, wDtype: 'f16x2' },
  { M: 7, H: 387, eps: 1e-12, offset: 100, wDtype: 'f32' },
];

/**
 * Tolerance 1e-5 absolute on outputs of magnitude ≲ 4 (x ∈ [−3, 3), γ ∈ [0.5, 1.5),
 * β ∈ [−0.5, 0.5)): a few f32 ulps of the result plus the f32 reductions' rounding (≈ 1e-6 relative at
 * H = 1024); measured ≤ 7.2e-7 on SwiftShader. The offset-100 case (measured 4.8e-7) is held to the
 * same bound thanks to the shifted two-pass algorithm.
 */
const TOL = 1e-5;

function lnCase(s: LnShape, wDtype: WeightDType, schedule: KernelSchedule): KernelCase {
  const seed = s.M * 7919 + s.H * 31;
  return {
    name: `layernorm/${scheduleTag(schedule)}/${wDtype} ${s.M}x${s.H} eps=${s.eps}${s.offset ? ` offset=${s.offset}` : ''}`,
    async run(rt) {
      const n = s.M * s.H;
      const x = seeded(n, seed, -3, 3);
      if (s.offset) for (let i = 0; i < n; i++) x[i] += s.offset;
      const gamma = uploadWeight(rt, seeded(s.H, seed + 2, 0.5, 1.5), wDtype);
      const beta = uploadWeight(rt, seeded(s.H, seed + 3, -0.5, 0.5), wDtype);
      const xb = rt.upload(x);
      const yb = rt.createBuffer(n * 4);
      const p = layernormProgram({ M: s.M, H: s.H }, { wDtype, eps: s.eps, schedule });
      await rt.run(p, [xb, gamma.buf, beta.buf, yb]);
      const got = await rt.readF32(yb, n);
      for (const b of [xb, gamma.buf, beta.buf, yb]) b.destroy();
      return { got, want: layernormRef(x, s.M, s.H, gamma.ref, beta.ref, s.eps), maxAbs: TOL };
    },
  };
}

// Both schedules (the 'registers' one sums each row in a loop instead of a tree).
export const layernormCases: KernelCase[] = KERNEL_SCHEDULES.flatMap((schedule) => [...shapes.flatMap((s) => (['f32', 'f16x2'] as const).map((d) => lnCase(s, d, schedule))), ...extra.map((e) => lnCase(e, e.wDtype, schedule))]);
