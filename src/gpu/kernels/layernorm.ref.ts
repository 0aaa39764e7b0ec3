import { layerNorm } from '../../reference/ops.ts';

/**
 * CPU reference of layernorm.ts: y = LN(x) · γ + β over rows of x (M, H), biased variance
 * (torch.nn.LayerNorm). Delegates to the reference encoder's layerNorm (sums in JS doubles).
 * Pass the weights as the GPU sees them (f16-rounded for 'f16' / 'f16x2' storage).
 */
export function layernormRef(x: Float32Array, M: number, H: number, gamma: Float32Array, beta: Float32Array, eps: number): Float32Array {
  return layerNorm(x, M, H, gamma, beta, eps);
}
