import { dequantizeInt8, type QuantizedMatrix } from '../../model/quant.ts';
import type { MatmulActivation, MatmulShape } from './matmul.ts';
import { matmulRef } from './matmul.ref.ts';

/**
 * CPU reference of matmul_q8.ts: W dequantised exactly as the kernel does (quant.ts dequantizeInt8:
 * f32(code · scale)), then matmul.ts's reference. x: (M, K), W: (N, K) int8, b: (N) | null, r: (M, N) | null.
 */
export function matmulQ8Ref(shape: MatmulShape, activation: MatmulActivation, x: Float32Array, W: QuantizedMatrix, b: Float32Array | null, r: Float32Array | null): Float32Array {
  return matmulRef(shape, activation, x, dequantizeInt8(W), b, r);
}
