import { KERNEL_SCHEDULES, scheduleTag } from '../kernel.ts';
import { dequantizeInt8, quantizeInt8 } from '../../model/quant.ts';
import { quantBindingData } from '../quant-wgsl.ts';
import type { MatmulAttrs, MatmulShape } from './matmul.ts';
import { matmulSpecs, matmulTolerance } from './matmul.cases.ts';
import { matmulQ8Program } from './matmul_q8.ts';
import { matmulQ8Ref } from './matmul_q8.ref.ts';
import { seeded, type KernelCase } from './testing.ts';

/**
 * matmul_q8 against its reference on the same int8 weights, dequantised alike (so the only difference is
 * f32 summation order: matmul's tolerance over the dequantised W). matmul's odd sizes (vec4 / vec2 / scalar
 * x loads, ragged M/N tiles, rows whose last code word is partly padding) plus one of 1027 columns.
 */
function q8Case(shape: MatmulShape, attrs: Omit<MatmulAttrs, 'wDtype'>): KernelCase {
  const { M, N, K } = shape;
  const tag = ` ${scheduleTag(attrs.schedule ?? 'workgroup')}${attrs.bias ? '+b' : ''}${attrs.activation === 'none' ? '' : `→${attrs.activation}`}${attrs.residual ? '+r' : ''}`;
  return {
    name: `matmul_q8 ${M}x${N}x${K}${tag}`,
    async run(rt) {
      const seed = M * 1013 + N * 37 + K;
      const x = seeded(M * K, seed);
      const W = quantizeInt8(seeded(N * K, seed + 1), N, K);
      const b = attrs.bias ? seeded(N, seed + 2) : null;
      const r = attrs.residual ? seeded(M * N, seed + 3) : null;
      const y = rt.createBuffer(M * N * 4);
      const buffers = [rt.upload(x), ...quantBindingData(W).map((a) => rt.upload(a)), ...(b ? [rt.upload(b)] : []), ...(r ? [rt.upload(r)] : []), y]; // binding order
      await rt.run(matmulQ8Program(shape, attrs), buffers);
      const got = await rt.readF32(y, M * N);
      buffers.forEach((buf) => buf.destroy());
      const want = matmulQ8Ref(shape, attrs.activation, x, W, b, r);
      return { got, want, maxAbs: matmulTolerance(shape, x, dequantizeInt8(W), want) };
    },
  };
}

const specs = [...matmulSpecs, { shape: { M: 6, N: 5, K: 1027 }, attrs: { bias: true, activation: 'none' as const, residual: true } }];
export const matmulQ8Cases: KernelCase[] = KERNEL_SCHEDULES.flatMap((schedule) => specs.map((s) => q8Case(s.shape, { ...s.attrs, schedule })));
