import type { WeightDType } from '../gpu/kernel.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { QuantBits } from '../model/quant.ts';
import { f32ToF16, toFloat32, type RawTensor } from '../model/tensor.ts';

/**
 * How weights are stored on the GPU: f32, f16 (native with shader-f16, else packed pairs in u32), or
 * weight-only quantised (issue #18, src/model/QUANT.md): 'int8' / 'q4' matmul weights and word embeddings,
 * every other tensor (biases, norms, position and token-type tables) in f32.
 */
export type WeightStorage = 'f32' | 'f16' | 'int8' | 'q4';
export const WEIGHT_STORAGES: readonly WeightStorage[] = ['f32', 'f16', 'int8', 'q4'];

/** The quantisation of a storage choice, or null for the float ones. */
export function quantBitsOf(storage: WeightStorage): QuantBits | null {
  return storage === 'int8' ? 8 : storage === 'q4' ? 4 : null;
}

/** The float storage of the tensors a choice does not quantise. */
export function floatStorage(storage: WeightStorage): 'f32' | 'f16' {
  return storage === 'f16' ? 'f16' : 'f32';
}

/** The shader-side dtype of the float tensors for a storage choice on this device. */
export function shaderDType(storage: WeightStorage, hasShaderF16: boolean): WeightDType {
  return storage !== 'f16' ? 'f32' : hasShaderF16 ? 'f16' : 'f16x2';
}

/**
 * Encodes tensors (concatenated along their first axis, e.g. q;k;v → (3H, H)) in the storage dtype.
 * f16 data is byte-identical for native array<f16> and for u32-packed pairs (little-endian, even
 * element in the low half), so one upload serves both shaders. Padded to 4 bytes.
 */
export function encodeWeights(parts: RawTensor[], storage: 'f32' | 'f16'): Uint8Array {
  const n = parts.reduce((a, t) => a + t.data.byteLength / (t.dtype === 'f32' ? 4 : 2), 0);
  if (storage === 'f32') {
    const out = new Float32Array(n);
    let o = 0;
    for (const t of parts) {
      const v = toFloat32(t);
      out.set(v, o);
      o += v.length;
    }
    return new Uint8Array(out.buffer);
  }
  const out = new Uint16Array(n + (n % 2));
  let o = 0;
  for (const t of parts) {
    if (t.dtype === 'f16') {
      out.set(new Uint16Array(t.data.slice().buffer), o);
      o += t.data.byteLength / 2;
    } else {
      const v = toFloat32(t);
      for (let i = 0; i < v.length; i++) out[o + i] = f32ToF16(v[i]);
      o += v.length;
    }
  }
  return new Uint8Array(out.buffer);
}

/** Uploads the concatenation of `parts` as one storage buffer. */
export function uploadWeights(rt: GpuRuntime, parts: RawTensor[], storage: 'f32' | 'f16', label: string): GPUBuffer {
  return rt.upload(encodeWeights(parts, storage), label);
}
