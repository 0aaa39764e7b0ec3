import { linear } from '../../reference/ops.ts';
import { KERNEL_SCHEDULES, scheduleTag } from '../kernel.ts';
import { uploadWeight } from './testing.ts';
import { matmulProgram, type MatmulAttrs, type MatmulShape } from './matmul.ts';
import { matmulRef } from './matmul.ref.ts';
import { seeded, type KernelCase } from './testing.ts';

const F32_EPS = 2 ** -24; // unit roundoff of f32
const maxAbsOf = (m: number, v: number) => Math.max(m, Math.abs(v));

// Odd, ragged sizes: K % 4 == 0 (vec4 loads), K % 4 == 2 (vec2), odd K (scalar; f16x2 pairs straddle rows);
// M and N across several 64-wide tiles and partial ones; N = 3·52 is a fused QKV projection.
export const matmulSpecs: { shape: MatmulShape; attrs: Omit<MatmulAttrs, 'wDtype'> }[] = [
  { shape: { M: 1, N: 1, K: 1 }, attrs: { bias: false, activation: 'none', residual: false } },
  { shape: { M: 7, N: 13, K: 48 }, attrs: { bias: true, activation: 'gelu', residual: false } },
  { shape: { M: 37, N: 52, K: 52 }, attrs: { bias: true, activation: 'gelu_tanh', residual: true } },
  { shape: { M: 130, N: 100, K: 52 }, attrs: { bias: true, activation: 'silu', residual: false } },
  { shape: { M: 65, N: 156, K: 52 }, attrs: { bias: true, activation: 'none', residual: false } },
  // Same attributes, another shape: one pipeline (the runtime throws if the WGSL differed); 25 K tiles.
  { shape: { M: 3, N: 7, K: 388 }, attrs: { bias: true, activation: 'none', residual: false } },
  { shape: { M: 33, N: 48, K: 100 }, attrs: { bias: false, activation: 'relu', residual: true } },
  { shape: { M: 5, N: 9, K: 13 }, attrs: { bias: true, activation: 'gelu', residual: true } },
  { shape: { M: 9, N: 11, K: 18 }, attrs: { bias: true, activation: 'gelu_tanh', residual: false } },
];

function matmulCase(shape: MatmulShape, attrs: MatmulAttrs): KernelCase {
  const { M, N, K } = shape;
  const tag = ` ${scheduleTag(attrs.schedule ?? 'workgroup')}${attrs.bias ? '+b' : ''}${attrs.activation === 'none' ? '' : `→${attrs.activation}`}${attrs.residual ? '+r' : ''}`;
  return {
    name: `matmul/${attrs.wDtype} ${M}x${N}x${K}${tag}`,
    async run(rt) {
      const seed = M * 1009 + N * 31 + K;
      const x = seeded(M * K, seed);
      const r = attrs.residual ? seeded(M * N, seed + 3) : null;
      const W = uploadWeight(rt, seeded(N * K, seed + 1), attrs.wDtype);
      const b = attrs.bias ? uploadWeight(rt, seeded(N, seed + 2), attrs.wDtype) : null;
      const y = rt.createBuffer(M * N * 4);
      const buffers = [rt.upload(x), W.buf, ...(b ? [b.buf] : []), ...(r ? [rt.upload(r)] : []), y]; // binding order
      await rt.run(matmulProgram(shape, attrs), buffers);
      const got = await rt.readF32(y, M * N);
      buffers.forEach((buf) => buf.destroy());
      const want = matmulRef(shape, attrs.activation, x, W.ref, b?.ref ?? null, r);
      return { got, want, maxAbs: matmulTolerance(shape, x, W.ref, want) };
    },
  };
}

/**
 * Tolerance of a matmul against its reference over the same f32 weights `W`: the f32 dot product's rounding
 * grows like √K·u·Σ_k|x_k·W_nk| (Higham & Mary 2019, probabilistic bound; observed ≤ 0.4 of it), plus 16u·|y|
 * for the bias/residual roundings and the exp/tanh/erf approximations of the activations (erf_f32 ≤ 1.9e-7 ≈ 3u).
 */
export function matmulTolerance(shape: MatmulShape, x: Float32Array, W: Float32Array, want: Float32Array): number {
  const { M, N, K } = shape;
  const S = linear(x.map(Math.abs), M, K, W.map(Math.abs), N, null).reduce(maxAbsOf, 0);
  return (2 * Math.sqrt(K) + 16) * F32_EPS * Math.max(S, want.reduce(maxAbsOf, 0));
}

// Both schedules on every spec: the same y from different loops (and, for 'registers', unchecked vec4 loads
// with rows clamped at the M/N edges).
export const matmulCases: KernelCase[] = KERNEL_SCHEDULES.flatMap((schedule) => (['f32', 'f16x2'] as const).flatMap((wDtype) => matmulSpecs.map((s) => matmulCase(s.shape, { ...s.attrs, wDtype, schedule }))));
