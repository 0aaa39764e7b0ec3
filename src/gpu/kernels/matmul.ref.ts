import { addInPlace, gelu, geluTanh, linear, mapInPlace, relu, silu } from '../../reference/ops.ts';
import type { MatmulActivation, MatmulShape } from './matmul.ts';

const ACTIVATIONS: Record<Exclude<MatmulActivation, 'none'>, (v: number) => number> = { gelu, gelu_tanh: geluTanh, silu, relu };

/**
 * CPU reference of matmul.ts: y = act(x · Wᵀ + b) (+ r), by src/reference/ops.ts.
 * x: (M, K), W: (N, K), b: (N) | null, r: (M, N) | null → y: (M, N). W and b are the values the GPU
 * sees (already rounded to f16 for f16 storage).
 */
export function matmulRef(shape: MatmulShape, activation: MatmulActivation, x: Float32Array, W: Float32Array, b: Float32Array | null, r: Float32Array | null): Float32Array {
  const y = linear(x, shape.M, shape.K, W, shape.N, b);
  if (activation !== 'none') mapInPlace(y, ACTIVATIONS[activation]);
  return r ? addInPlace(y, r) : y;
}
