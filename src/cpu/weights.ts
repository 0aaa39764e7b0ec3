/**
 * f32 weights for the CPU backend: every checkpoint dtype (f32, f16, bf16) is upcast once at load, and
 * PyTorch's (out, in) linear layout is transposed to the (in, out) right operand ONNX MatMul / Attention take.
 */
import { encoderWeightSpecs, headWeightSpecs, pickWeight } from '../model/weights.ts';
import { toFloat32, type RawTensor } from '../model/tensor.ts';
import type { EncoderConfig } from '../model/config.ts';

/** binary16 → f32 for all 65536 bit patterns (f16ToF32 per element is ~10× slower on a 500 MB table). */
let F16: Float32Array | null = null;
function f16Table(): Float32Array {
  if (F16) return F16;
  const t = new Float32Array(65536);
  const u = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const s = (h & 0x8000) << 16;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = (s ? -1 : 1) * m * 2 ** -24;
    else if (e === 31) u[h] = s | 0x7f800000 | (m << 13);
    else u[h] = s | ((e - 15 + 127) << 23) | (m << 13);
  }
  return (F16 = t);
}

/** One tensor as f32 (a fresh array: the checkpoint's bytes are never aliased). */
export function upcast(t: RawTensor): Float32Array {
  const n = t.data.byteLength / (t.dtype === 'f32' ? 4 : 2);
  if (!Number.isInteger(n) || n !== t.shape.reduce((a, b) => a * b, 1)) return toFloat32(t); // throws ModelFormatError with the sizes
  const aligned = t.data.byteOffset % (t.dtype === 'f32' ? 4 : 2) === 0;
  if (!aligned) return toFloat32(t);
  if (t.dtype === 'f32') return new Float32Array(t.data.buffer, t.data.byteOffset, n).slice();
  const half = new Uint16Array(t.data.buffer, t.data.byteOffset, n);
  const out = new Float32Array(n);
  if (t.dtype === 'f16') {
    const table = f16Table();
    for (let i = 0; i < n; i++) out[i] = table[half[i]];
  } else {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = half[i] << 16; // bf16 is the top half of an f32
  }
  return out;
}

/** W: (N, K) row-major → Wᵀ: (K, N); several (N_i, K) matrices become one (K, ΣN_i) (fused q|k|v, gate|up). */
export function transposeConcat(mats: Float32Array[], K: number): Float32Array {
  const Ns = mats.map((m) => m.length / K);
  const total = Ns.reduce((a, b) => a + b, 0);
  const out = new Float32Array(K * total);
  let col = 0;
  mats.forEach((m, j) => {
    const N = Ns[j];
    for (let n = 0; n < N; n++) {
      const row = n * K;
      for (let k = 0; k < K; k++) out[k * total + col + n] = m[row + k];
    }
    col += N;
  });
  return out;
}

export function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Validated f32 lookup of the family's encoder weights (names and shapes from src/model/weights.ts). */
export function weightReader(cfg: EncoderConfig, tensors: Map<string, RawTensor>, layers: number): (name: string) => Float32Array {
  const specs = new Map(encoderWeightSpecs(cfg, layers).map((s) => [s.name, s]));
  return (name) => upcast(pickWeight(tensors, specs.get(name)!));
}

/** BGE-M3's heads as f32: colbert_linear (Hc, H) + bias, sparse_linear (1, H) + bias. */
export function headWeights(hidden: number, heads: Map<string, RawTensor>): { colbertW: Float32Array; colbertB: Float32Array; sparseW: Float32Array; sparseB: number; Hc: number } {
  const specs = headWeightSpecs(hidden, heads.get('colbert_linear.weight')?.shape[0] ?? hidden);
  const [cw, cb, sw, sb] = specs.map((s) => upcast(pickWeight(heads, s)));
  return { colbertW: cw, colbertB: cb, sparseW: sw, sparseB: sb[0], Hc: specs[0].shape[0] };
}
