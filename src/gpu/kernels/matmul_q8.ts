import type { KernelProgram } from '../kernel.ts';
import { quantBindingCount, quantMatrixWgsl } from '../quant-wgsl.ts';
import { matmulVectorWidth, matmulWithWeights, type MatmulAttrs, type MatmulShape, type MatmulWeights } from './matmul.ts';

/**
 * W as int8 codes with one f32 scale per output row (src/model/QUANT.md), dequantised in the inner loop:
 * a u32 word is one quad of K, `vec4f(codes) * scale[row]`.
 */
export function q8Weights(K: number): MatmulWeights {
  return {
    // x's loads (and so the WGSL) depend on K's divisibility, as in matmul.ts.
    key: `q8/v${matmulVectorWidth(K)}`,
    enable: '',
    bindings: quantBindingCount(8),
    decl: (first) => `${quantMatrixWgsl('W', 8, first, 'u.K')}
fn load_W4(row: u32, k: u32) -> vec4f {
  if (row >= u.N || k >= u.K) { return vec4f(0.0); }
  return W_quad(row, k);
}`,
    // K % 4 == 0: word q of the row is the quad at k; the row's scale is read once.
    direct: { setup: (j, row) => `let wr${j} = ${row} * K4; let ws${j} = W_s[${row}];`, load: (j) => `W_codes(W_q[wr${j} + q]) * ws${j}` },
    bias: { type: 'array<f32>', decl: 'fn load_b(i: u32) -> f32 { return b[i]; }' },
  };
}

/**
 * y = act(x · Wᵀ + b) (+ r) with int8 W (weight-only quantisation, issue #18): matmul.ts's kernel, both
 * schedules and the fused epilogue, with W read through q8Weights. Activations and accumulation are f32.
 *
 * Bindings after the uniform block: x: (M, K) f32 · W codes: (N, ⌈K/4⌉) u32 · W scales: (N) f32
 * · [b: (N) f32] · [r: (M, N) f32] · y: (M, N) f32. M, N, K are uniforms.
 */
export function matmulQ8Program(shape: MatmulShape, attrs: Omit<MatmulAttrs, 'wDtype'>): KernelProgram {
  return matmulWithWeights('matmul_q8', shape, attrs, q8Weights(shape.K));
}
