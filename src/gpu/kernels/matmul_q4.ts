import type { KernelProgram } from '../kernel.ts';
import { quantBindingCount, quantMatrixWgsl } from '../quant-wgsl.ts';
import { matmulVectorWidth, matmulWithWeights, type MatmulAttrs, type MatmulShape, type MatmulWeights } from './matmul.ts';

/**
 * W as 4-bit codes with an f16 scale and a 4-bit zero point per block of 32 input features
 * (src/model/QUANT.md), dequantised in the inner loop: a quad of K is half a u32 word,
 * `(vec4f(codes) − zero) * scale` of its block.
 */
export function q4Weights(K: number): MatmulWeights {
  return {
    // x's loads (and so the WGSL) depend on K's divisibility, as in matmul.ts.
    key: `q4/v${matmulVectorWidth(K)}`,
    enable: '',
    bindings: quantBindingCount(4),
    decl: (first) => `${quantMatrixWgsl('W', 4, first, 'u.K')}
fn load_W4(row: u32, k: u32) -> vec4f {
  if (row >= u.N || k >= u.K) { return vec4f(0.0); }
  return W_quad(row, k);
}`,
    direct: { setup: (j, row) => `let wr${j} = ${row};`, load: (j) => `W_quad(wr${j}, k)` },
    bias: { type: 'array<f32>', decl: 'fn load_b(i: u32) -> f32 { return b[i]; }' },
  };
}

/**
 * y = act(x · Wᵀ + b) (+ r) with 4-bit W (weight-only quantisation, issue #18): matmul.ts's kernel, both
 * schedules and the fused epilogue, with W read through q4Weights. Activations and accumulation are f32.
 *
 * Bindings after the uniform block: x: (M, K) f32 · W codes: (N, ⌈K/8⌉) u32 · W scales: (N·⌈K/32⌉) f16
 * pairs in u32 · W zero points: (N, ⌈⌈K/32⌉/8⌉) u32 · [b: (N) f32] · [r: (M, N) f32] · y: (M, N) f32.
 */
export function matmulQ4Program(shape: MatmulShape, attrs: Omit<MatmulAttrs, 'wDtype'>): KernelProgram {
  return matmulWithWeights('matmul_q4', shape, attrs, q4Weights(shape.K));
}
