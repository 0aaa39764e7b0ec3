import { dequantizeQ4, type QuantizedMatrix } from '../../model/quant.ts';
import type { MatmulActivation, MatmulShape } from './matmul.ts';
import { matmulRef } from './matmul.ref.ts';

/**
 * CPU reference of matmul_q4.ts: W dequantised exactly as the kernel does (quant.ts dequantizeQ4:
 * f32((code − zero) · scale)), then matmul.ts's reference. x: (M, K), W: (N, K) q4, b: (N) | null, r: (M, N) | null.
 */
export function matmulQ4Ref(shape: MatmulShape, activation: MatmulActivation, x: Float32Array, W: QuantizedMatrix, b: Float32Array | null, r: Float32Array | null): Float32Array {
  return matmulRef(shape, activation, x, dequantizeQ4(W), b, r);
}
