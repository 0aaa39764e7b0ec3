import { groupsPerRow, type QuantBits, type QuantizedMatrix } from '../model/quant.ts';
import { f32ToF16 } from '../model/tensor.ts';

/**
 * How the quantised kernels (matmul_q8.ts, matmul_q4.ts, embedding_q.ts) read a (rows, cols) matrix in
 * src/model/QUANT.md's layout, and the arrays that fill its bindings. Every read dequantises as
 * `(f32(code) − f32(zero)) * scale`: the difference is an exact small integer, so the one rounding is the
 * multiply, as in quant.ts's dequantize — kernel and CPU reference see the same f32 weights.
 *
 * Bindings, in order (all `var<storage, read>`):
 *   int8: codes array<u32> (rows, ⌈cols/4⌉) · scales array<f32> (rows)
 *   q4:   codes array<u32> (rows, ⌈cols/8⌉) · scales array<u32> (rows·⌈cols/32⌉ f16, two per word, even index low)
 *         · zeros array<u32> (rows, ⌈⌈cols/32⌉/8⌉)
 * The row length `cols` is a WGSL expression (a uniform), so the WGSL is shape-free.
 */

/** Storage bindings a quantised matrix takes. */
export const quantBindingCount = (bits: QuantBits): number => (bits === 8 ? 2 : 3);

/** The binding contents for `q`, in binding order (q4 scales converted to f16 pairs; they are f16-exact). */
export function quantBindingData(q: QuantizedMatrix): Uint32Array<ArrayBuffer>[] {
  if (q.bits === 8) return [q.qweight, new Uint32Array(q.scales.buffer, q.scales.byteOffset, q.scales.length)];
  const halves = new Uint16Array(q.scales.length + (q.scales.length & 1));
  for (let i = 0; i < q.scales.length; i++) halves[i] = f32ToF16(q.scales[i]);
  return [q.qweight, new Uint32Array(halves.buffer), q.qzeros!];
}

/** Bytes of each binding of a (rows, cols) matrix (the memory plan's and the upload's sizes). */
export function quantBindingBytes(bits: QuantBits, rows: number, cols: number): number[] {
  if (bits === 8) return [rows * Math.ceil(cols / 4) * 4, rows * 4];
  const G = groupsPerRow(cols);
  return [rows * Math.ceil(cols / 8) * 4, Math.ceil((rows * G) / 2) * 4, rows * Math.ceil(G / 8) * 4];
}

/**
 * WGSL declaring matrix `p`'s bindings from `first` on, and:
 *   fn p_quad(row: u32, k: u32) -> vec4f   elements k..k+3 of a row (k % 4 == 0, row < rows, k < cols;
 *                                          elements past cols come back as zero), unchecked otherwise;
 *   fn p_elem(row: u32, k: u32) -> f32     one element (row < rows, k < cols), unchecked.
 * `cols` is the WGSL expression of the row length.
 */
export function quantMatrixWgsl(p: string, bits: QuantBits, first: number, cols: string): string {
  if (bits === 8) {
    return /* wgsl */ `@group(0) @binding(${first}) var<storage, read> ${p}_q: array<u32>;   // (rows, ⌈cols/4⌉) int8 codes, 4 per word
@group(0) @binding(${first + 1}) var<storage, read> ${p}_s: array<f32>;   // (rows) scales
// The four signed bytes of a word, low byte first (extractBits sign-extends an i32).
fn ${p}_codes(w: u32) -> vec4f {
  let v = bitcast<i32>(w);
  return vec4f(vec4i(extractBits(v, 0u, 8u), extractBits(v, 8u, 8u), extractBits(v, 16u, 8u), extractBits(v, 24u, 8u)));
}
// Rows are word-aligned and their padding codes are 0, so a quad past cols reads zeros.
fn ${p}_quad(row: u32, k: u32) -> vec4f {
  return ${p}_codes(${p}_q[row * ((${cols} + 3u) / 4u) + k / 4u]) * ${p}_s[row];
}
fn ${p}_elem(row: u32, k: u32) -> f32 {
  let w = bitcast<i32>(${p}_q[row * ((${cols} + 3u) / 4u) + k / 4u]);
  return f32(extractBits(w, (k & 3u) * 8u, 8u)) * ${p}_s[row];
}`;
  }
  return /* wgsl */ `@group(0) @binding(${first}) var<storage, read> ${p}_q: array<u32>;   // (rows, ⌈cols/8⌉) 4-bit codes, 8 per word
@group(0) @binding(${first + 1}) var<storage, read> ${p}_s: array<u32>;   // (rows·⌈cols/32⌉) f16 scales, 2 per word
@group(0) @binding(${first + 2}) var<storage, read> ${p}_z: array<u32>;   // (rows, ⌈⌈cols/32⌉/8⌉) 4-bit zero points
// Block g of a row: its scale and zero point.
fn ${p}_block(row: u32, g: u32) -> vec2f {
  let G = (${cols} + 31u) / 32u;
  let si = row * G + g;
  let s2 = unpack2x16float(${p}_s[si >> 1u]);
  let z = (${p}_z[row * ((G + 7u) / 8u) + g / 8u] >> ((g & 7u) * 4u)) & 15u;
  return vec2f(select(s2.x, s2.y, (si & 1u) == 1u), f32(z));
}
// Four codes of one block (k % 4 == 0 keeps a quad inside one word and one block); padding codes past cols
// would dequantise to −zero·scale, so they are masked.
fn ${p}_quad(row: u32, k: u32) -> vec4f {
  let w = ${p}_q[row * ((${cols} + 7u) / 8u) + k / 8u] >> ((k & 7u) * 4u);
  let c = vec4f(vec4u(w & 15u, (w >> 4u) & 15u, (w >> 8u) & 15u, (w >> 12u) & 15u));
  let sz = ${p}_block(row, k / 32u);
  return select(vec4f(0.0), (c - sz.y) * sz.x, vec4u(k, k + 1u, k + 2u, k + 3u) < vec4u(${cols}));
}
fn ${p}_elem(row: u32, k: u32) -> f32 {
  let c = (${p}_q[row * ((${cols} + 7u) / 8u) + k / 8u] >> ((k & 7u) * 4u)) & 15u;
  let sz = ${p}_block(row, k / 32u);
  return (f32(c) - sz.y) * sz.x;
}`;
}
