/**
 * The CPU backend runs quantised models (issue #18; src/model/QUANT.md) by dequantising every quantised matrix once at
 * load, to exactly the f32 values the format defines (quant.ts `dequantize`: f32((code − zero) · scale)), then building
 * its f32 graphs as for any checkpoint. So a pre-quantised folder loads on the CPU and its download shrinks, while the
 * encoder's memory is that of f32 weights.
 *
 * Why not quantised weights inside the graph: onnxruntime-web 1.30's wasm MatMulNBits (com.microsoft; 4 and 8 bits,
 * block 32, zero points) runs and agrees with our dequantisation (max |Δ| 7e-6), but it was slower than the f32 MatMul
 * on every shape measured (K 384 × N 1536, 1 thread, this 2-core VM at load ~18): M = 1 0.8–0.9 ms f32 vs 16–95 ms
 * (8 bit) and 21–25 ms (4 bit); M = 32 25 ms vs 63 / 36 ms; M = 128 47 ms vs 71 / 74 ms (scratch script, not kept:
 * training/runs/qcpu/nbits.mts). The fused Attention op also takes its q|k|v weight as f32.
 */
import type { LoadedModel } from '../model/load.ts';
import { dequantize, type QuantizedMatrix } from '../model/quant.ts';
import type { RawTensor } from '../model/tensor.ts';

const HEAD = /^(colbert_linear|sparse_linear)\./;

/** One quantised matrix as the f32 tensor the CPU graphs read: (rows, cols), PyTorch's (out, in) layout. */
export function dequantizedTensor(q: QuantizedMatrix): RawTensor {
  const w = dequantize(q);
  return { dtype: 'f32', shape: [q.rows, q.cols], data: new Uint8Array(w.buffer, w.byteOffset, w.byteLength) };
}

/**
 * The same model with every quantised matrix replaced by its dequantised f32 tensor (encoder weights into `weights`,
 * colbert_linear into `heads`); a model without quantised matrices (LoadedModel.quantized absent or empty, src/model/load.ts)
 * is returned as it is.
 */
export function dequantizedModel(model: LoadedModel): LoadedModel {
  if (!model.quantized?.size) return model;
  const weights = new Map(model.weights);
  const heads = new Map(model.heads);
  for (const [name, q] of model.quantized) (HEAD.test(name) ? heads : weights).set(name, dequantizedTensor(q));
  // What is left is an f32 checkpoint: no quantised matrices, no quantization_config.
  const { quantized: _q, quantization: _c, ...rest } = model;
  void [_q, _c];
  return { ...rest, weights, heads };
}
