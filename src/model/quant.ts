import { InvalidInputError, ModelFormatError } from '../errors.ts';
import { f16ToF32, f32ToF16, toFloat32, type RawTensor } from './tensor.ts';

/**
 * Weight-only quantisation (issue #18): the format every backend shares (layout in src/model/QUANT.md).
 * Activations and accumulation stay f32; a weight is dequantised as `(code − zero) · scale`, one f32
 * rounding, so a GPU kernel and a CPU reference that both compute `f32(code − zero) * scale` agree exactly.
 *
 * - int8: per-output-channel (per row) symmetric: scale = max|w_row| / 127, code ∈ [−127, 127], zero 0.
 * - q4: block-wise over each row, 32 consecutive input features per block (Q4_GROUP_SIZE), with a 4-bit zero
 *   point: scale = (max(hi, 0) − min(lo, 0)) / 15 rounded to f16, zero = round(−min(lo, 0) / scale) ∈ [0, 15],
 *   code = clamp(round(w / scale) + zero, 0, 15). A clipping search (quantizeQ4's `clip`, Q4_CLIP_STEPS: shrink the
 *   range by a ∈ 1, 0.975, …, 0.6 per block, keep the least squared error, as llama.cpp's k-quants / AWQ search
 *   ranges) cuts the weight RMSE to 0.968 × min/max's on gaussian weights, but it LOWERED the embeddings' cosine to
 *   f32 with every matrix at q4 (`npx tsx tools/quant-sensitivity.ts --rounding mse|minmax`: bert 0.9504 → 0.9485,
 *   xlm-r ColBERT 0.9717 → 0.9572, m3BERT 0.9459 → 0.9447; m3-tiny 0.9969 → 0.9976, ColBERT 0.9884 → 0.9889): it
 *   moves the error onto the largest weights. So the default stays min/max.
 * - Under q4 storage only Q4_4BIT_WEIGHTS (the FFN input projections) get 4 bits, the rest int8 (weightBits): see
 *   its comment for the measurement.
 *
 * Why a zero point for q4: relative RMSE ‖w − deq(w)‖ / ‖w‖ (`npx tsx tools/quant-error.ts`; f16 scales, blocks of 32):
 *
 *   |                                       | int8 per row | q4 sym max|w|/7 | q4 sym Q4_0 (signed max / −8) | q4 zero point | + clip search |
 *   | uniform [−1, 1), 1024 × 1024          | 0.0039       | 0.0681          | 0.0650                        | 0.0635        | 0.0612        |
 *   | gaussian, 1024 × 1024                 | 0.0079       | 0.0971          | 0.0860                        | 0.0809        | 0.0783        |
 *   | m3-tiny, its 45 2-D weights but pos   | 0.0065       | 0.0967          | 0.0856                        | 0.0806        | 0.0780        |
 *
 * The zero point cuts the error 6% below the best symmetric rule for 0.125 bit per weight (a nibble per
 * block): 4.625 bits per weight in all, with the f16 scale. int8 stays symmetric: its error is already 12×
 * smaller than q4's, and a zero point per row would buy little at the cost of a subtraction per element.
 *
 * Packing: codes are packed little-endian along each row into u32 words, 4 × int8 (two's complement bytes)
 * or 8 × 4-bit (nibbles) per word; element k of a row is in word ⌊k / per⌋ at bit (k mod per) · bits. Each
 * row starts on a word boundary (a ragged last word is zero-padded), so row r starts at word r · wordsPerRow.
 */

export type QuantBits = 8 | 4;

/** Input features per q4 scale / zero point. */
export const Q4_GROUP_SIZE = 32;

export interface QuantizedMatrix {
  bits: QuantBits;
  /** Output features (rows of the PyTorch (out, in) weight, or vocabulary rows of an embedding table). */
  rows: number;
  /** Input features. */
  cols: number;
  /** (rows, wordsPerRow(bits, cols)) packed codes. */
  qweight: Uint32Array<ArrayBuffer>;
  /** int8: (rows) f32; q4: (rows, groupsPerRow(cols)), every value exactly representable in f16. */
  scales: Float32Array<ArrayBuffer>;
  /** q4: (rows, zeroWordsPerRow(cols)) 4-bit zero points, 8 per word, packed like the codes; int8: null (zero 0). */
  qzeros: Uint32Array<ArrayBuffer> | null;
}

/** Codes per u32 word. */
export const codesPerWord = (bits: QuantBits): number => 32 / bits;
/** u32 words holding one row of `cols` codes. */
export const wordsPerRow = (bits: QuantBits, cols: number): number => Math.ceil(cols / codesPerWord(bits));
/** q4 blocks (scales, zero points) per row. */
export const groupsPerRow = (cols: number): number => Math.ceil(cols / Q4_GROUP_SIZE);
/** u32 words holding one row's q4 zero points. */
export const zeroWordsPerRow = (cols: number): number => Math.ceil(groupsPerRow(cols) / 8);

function checkShape(w: Float32Array, rows: number, cols: number, fn: string): void {
  if (!Number.isSafeInteger(rows) || rows < 1 || !Number.isSafeInteger(cols) || cols < 1) throw new InvalidInputError(`${fn}: rows and cols must be positive integers`, { expected: 'integers >= 1', received: `${rows} x ${cols}` });
  if (!(w instanceof Float32Array) || w.length !== rows * cols) throw new InvalidInputError(`${fn}: the weight does not have rows × cols elements`, { expected: `a Float32Array of ${rows * cols}`, received: w });
}

/** Per-row symmetric int8 (scale = max|w| / 127; an all-zero row gets scale 0 and codes 0). w: (rows, cols) f32. */
export function quantizeInt8(w: Float32Array, rows: number, cols: number): QuantizedMatrix {
  checkShape(w, rows, cols, 'quantizeInt8');
  const wpr = wordsPerRow(8, cols);
  const qweight = new Uint32Array(rows * wpr);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = 0;
    for (let k = 0; k < cols; k++) m = Math.max(m, Math.abs(w[o + k]));
    if (!Number.isFinite(m)) throw new InvalidInputError('quantizeInt8: the weight has a NaN or infinite value', { expected: 'finite values', received: `row ${r}` });
    const s = Math.fround(m / 127);
    scales[r] = s;
    if (s === 0) continue;
    for (let k = 0; k < cols; k++) {
      const q = Math.max(-127, Math.min(127, Math.round(w[o + k] / s)));
      qweight[r * wpr + (k >> 2)] |= (q & 0xff) << ((k & 3) * 8);
    }
  }
  return { bits: 8, rows, cols, qweight, scales, qzeros: null };
}

/** Shrink factors of a block's range for quantizeQ4's clipping search (1 = min/max): 1, 0.975, …, 0.6. */
export const Q4_CLIP_STEPS: readonly number[] = Array.from({ length: 17 }, (_, i) => 1 - 0.025 * i);

/**
 * Block-32 4-bit with a zero point per block (see the header). w: (rows, cols) f32. `clip` lists the range shrink
 * factors to try per block (default [1]: min/max, what the engine and npm run quantize use; Q4_CLIP_STEPS: the
 * clipping search, measured in the header): the one with the least squared error wins, the first on ties.
 */
export function quantizeQ4(w: Float32Array, rows: number, cols: number, clip: readonly number[] = [1]): QuantizedMatrix {
  checkShape(w, rows, cols, 'quantizeQ4');
  const wpr = wordsPerRow(4, cols);
  const G = groupsPerRow(cols);
  const zpr = zeroWordsPerRow(cols);
  const qweight = new Uint32Array(rows * wpr);
  const scales = new Float32Array(rows * G);
  const qzeros = new Uint32Array(rows * zpr);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const k0 = r * cols + g * Q4_GROUP_SIZE;
      const k1 = r * cols + Math.min(cols, g * Q4_GROUP_SIZE + Q4_GROUP_SIZE);
      let lo = 0;
      let hi = 0;
      for (let k = k0; k < k1; k++) {
        const v = w[k];
        if (!Number.isFinite(v)) throw new InvalidInputError('quantizeQ4: the weight has a NaN or infinite value', { expected: 'finite values', received: `row ${r}, column ${k - r * cols}` });
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      let best = Infinity;
      let s = 0;
      let z = 0;
      for (const a of clip) {
        // f16 scale: half the bytes of f32 at a relative rounding of 2^-11, far below the 4-bit step (1/15).
        // A range so small its scale flushes to f16 zero dequantises to 0 (|w| < 15 · 2^-25 there).
        const sa = f16ToF32(f32ToF16((a * (hi - lo)) / 15));
        const za = sa === 0 ? 0 : Math.max(0, Math.min(15, Math.round((-a * lo) / sa)));
        let e = 0;
        for (let k = k0; k < k1 && e < best; k++) {
          const d = sa === 0 ? w[k] : w[k] - (Math.max(0, Math.min(15, Math.round(w[k] / sa) + za)) - za) * sa;
          e += d * d;
        }
        if (e < best) [best, s, z] = [e, sa, za];
      }
      scales[r * G + g] = s;
      qzeros[r * zpr + (g >> 3)] |= z << ((g & 7) * 4);
      for (let k = k0; k < k1; k++) {
        const q = s === 0 ? z : Math.max(0, Math.min(15, Math.round(w[k] / s) + z));
        const c = k - r * cols;
        qweight[r * wpr + (c >> 3)] |= q << ((c & 7) * 4);
      }
    }
  }
  return { bits: 4, rows, cols, qweight, scales, qzeros };
}

/** The signed code of element (r, k) (int8: −127..127; q4: 0..15). */
export function quantCode(q: QuantizedMatrix, r: number, k: number): number {
  const word = q.qweight[r * wordsPerRow(q.bits, q.cols) + Math.floor(k / codesPerWord(q.bits))];
  if (q.bits === 8) return ((word >>> ((k & 3) * 8)) << 24) >> 24;
  return (word >>> ((k & 7) * 4)) & 15;
}

/** The zero point of element (r, k): 0 for int8, its block's nibble for q4. */
export function quantZero(q: QuantizedMatrix, r: number, k: number): number {
  if (q.bits === 8) return 0;
  const g = Math.floor(k / Q4_GROUP_SIZE);
  return (q.qzeros![r * zeroWordsPerRow(q.cols) + (g >> 3)] >>> ((g & 7) * 4)) & 15;
}

/** The scale of element (r, k). */
export function quantScale(q: QuantizedMatrix, r: number, k: number): number {
  return q.bits === 8 ? q.scales[r] : q.scales[r * groupsPerRow(q.cols) + Math.floor(k / Q4_GROUP_SIZE)];
}

/** Rows [row0, row0 + n) dequantised: f32((code − zero) · scale), exactly what the kernels compute. (n, cols) f32. */
export function dequantizeRows(q: QuantizedMatrix, row0: number, n: number): Float32Array {
  const out = new Float32Array(n * q.cols);
  for (let r = 0; r < n; r++) for (let k = 0; k < q.cols; k++) out[r * q.cols + k] = (quantCode(q, row0 + r, k) - quantZero(q, row0 + r, k)) * quantScale(q, row0 + r, k);
  return out;
}

/** The whole matrix dequantised, (rows, cols) f32. */
export function dequantize(q: QuantizedMatrix): Float32Array {
  return dequantizeRows(q, 0, q.rows);
}
export const dequantizeInt8 = (q: QuantizedMatrix): Float32Array => (assertBits(q, 8), dequantize(q));
export const dequantizeQ4 = (q: QuantizedMatrix): Float32Array => (assertBits(q, 4), dequantize(q));
function assertBits(q: QuantizedMatrix, bits: QuantBits): void {
  if (q.bits !== bits) throw new InvalidInputError(`expected a ${bits}-bit quantised matrix`, { expected: `bits ${bits}`, received: q.bits });
}

/** Quantises with `bits` (q4 with min/max ranges). */
export function quantize(w: Float32Array, rows: number, cols: number, bits: QuantBits): QuantizedMatrix {
  return bits === 8 ? quantizeInt8(w, rows, cols) : quantizeQ4(w, rows, cols);
}

/** Bytes a quantised (rows, cols) matrix occupies as stored and uploaded: codes, scales (int8 f32, q4 f16) and q4 zero points. */
export function quantizedBytes(bits: QuantBits, rows: number, cols: number): number {
  const codes = rows * wordsPerRow(bits, cols) * 4;
  if (bits === 8) return codes + rows * 4;
  return codes + 4 * Math.ceil((rows * groupsPerRow(cols)) / 2) + rows * zeroWordsPerRow(cols) * 4;
}

/**
 * Which weights are quantised (canonical names, after prefix stripping): every matmul weight of the
 * encoder blocks, the word-embedding table and bge-m3's colbert_linear. Biases, norms, position and
 * token-type tables and the one-row sparse_linear stay float (they are < 2% of bge-m3's bytes).
 */
export function isQuantizedWeight(name: string): boolean {
  return (
    /^(encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)|layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)|colbert_linear)\.weight$/.test(name) ||
    name === 'embeddings.word_embeddings.weight' ||
    name === 'embed_tokens.weight'
  );
}

/**
 * The only weights q4 storage stores at 4 bits: the FFN's input projections (BERT / XLM-R `intermediate.dense`,
 * m3BERT `mlp.gate_proj` / `mlp.up_proj`); every other quantised weight stays int8 (weightBits). Why (issue #18's bound,
 * q4 cos ≥ 0.99 vs f32 for every family at every exit; `npx tsx tools/quant-sensitivity.ts`, CPU reference on the
 * dequantised weights, worst cosine over exits × dims and ColBERT tokens): one class at a time at q4 (rest f32), the
 * random-weight fixtures bert / xlm-r (ColBERT) / m3BERT and the trained m3-tiny (ColBERT):
 *
 *   | class at q4   | bert   | xlm-r  | xlm-r ColBERT | m3BERT | m3-tiny | m3-tiny ColBERT |
 *   | word table    | 0.9980 | 0.9913 | 0.9933        | 0.9814 | 0.9972  | 0.9938          |
 *   | q             | 0.9986 | 0.9862 | 0.9971        | 0.9952 | 1.0000  | 1.0000          |
 *   | k             | 0.9991 | 0.9957 | 0.9958        | 0.9815 | 1.0000  | 1.0000          |
 *   | v             | 0.9915 | 0.9916 | 0.9950        | 0.9870 | 0.9999  | 1.0000          |
 *   | o             | 0.9919 | 0.9910 | 0.9940        | 0.9907 | 0.9999  | 1.0000          |
 *   | ffn_in        | 0.9967 | 0.9971 | 0.9934        | 0.9934 | 1.0000  | 1.0000          |
 *   | ffn_out       | 0.9965 | 0.9945 | 0.9951        | 0.9966 | 1.0000  | 1.0000          |
 *   | colbert       | 1.0000 | 1.0000 | 0.9951        | 1.0000 | 1.0000  | 0.9930          |
 *
 * (min/max rounding, the default: see the header on the clipping search.) On random weights nearly every
 * class alone costs 0.003–0.019 of cosine and the drops add up, so only ffn_in fits under 0.01 on all three
 * families; on the trained m3-tiny the block matmuls cost ≤ 1e-4 and only the word table and colbert_linear matter.
 */
export const Q4_4BIT_WEIGHTS = /^(encoder\.layer\.\d+\.intermediate\.dense|layers\.\d+\.mlp\.(gate|up)_proj)\.weight$/;

/** The bits weight `name` (canonical, isQuantizedWeight) is stored with under `bits` storage: int8 8; q4 4 for Q4_4BIT_WEIGHTS, else 8. */
export function weightBits(name: string, bits: QuantBits): QuantBits {
  return bits === 4 && !Q4_4BIT_WEIGHTS.test(name) ? 8 : bits;
}

/**
 * Weight `name` (canonical, a (rows, cols) float tensor) quantised under `bits` storage with its own weightBits:
 * the one rule the GPU upload, the worker's quantise-at-load (quant-cache.ts), `npm run quantize` and the tests share,
 * so a cached or written copy holds exactly the matrices the engine would make itself.
 */
export function quantizeWeight(name: string, t: RawTensor, bits: QuantBits): QuantizedMatrix {
  return quantize(toFloat32(t), t.shape[0], t.shape[1], weightBits(name, bits));
}

/** Layout versions this code reads: 1 (every matrix has the config's bits) and 2 (each matrix's bits in `__metadata__`). */
export const QUANT_LAYOUT_VERSIONS = [1, 2] as const;
export type QuantLayoutVersion = (typeof QUANT_LAYOUT_VERSIONS)[number];

/** `quantization_config` in config.json of a pre-quantised folder (src/model/QUANT.md). */
export interface QuantizationConfig {
  quant_method: 'm3web';
  /** The storage: 8 (every matrix int8) or 4 (q4: version 2 stores only Q4_4BIT_WEIGHTS at 4 bits, the rest at 8). */
  bits: QuantBits;
  /** 32 for q4; −1 (one group per row, the GPTQ convention for per-channel) for int8. */
  group_size: number;
  /** int8: true; q4: false (zero points). */
  sym: boolean;
  /** Layout version: quantizationConfig writes 2; 1 is still read. */
  version: QuantLayoutVersion;
}

/** The config a folder written now carries (layout version 2). */
export function quantizationConfig(bits: QuantBits, version: QuantLayoutVersion = 2): QuantizationConfig {
  return bits === 8 ? { quant_method: 'm3web', bits: 8, group_size: -1, sym: true, version } : { quant_method: 'm3web', bits: 4, group_size: Q4_GROUP_SIZE, sym: false, version };
}

/** Validates config.json's `quantization_config` (undefined → not quantised). */
export function parseQuantizationConfig(v: unknown): QuantizationConfig | null {
  if (v === undefined || v === null) return null;
  const c = v as Record<string, unknown>;
  if (typeof v !== 'object' || c.quant_method !== 'm3web')
    throw new ModelFormatError('config.json: quantization_config is not one m3web reads', { expected: '{ "quant_method": "m3web", "bits": 8 | 4, ... } (src/model/QUANT.md)', received: typeof v === 'object' ? JSON.stringify(v) : v });
  if (c.bits !== 8 && c.bits !== 4) throw new ModelFormatError('config.json: quantization_config.bits must be 8 or 4', { expected: '8 | 4', received: c.bits });
  if (!QUANT_LAYOUT_VERSIONS.includes(c.version as QuantLayoutVersion)) throw new ModelFormatError('config.json: quantization_config.version is not a layout m3web reads', { expected: QUANT_LAYOUT_VERSIONS.join(' | '), received: c.version });
  const want = quantizationConfig(c.bits, c.version as QuantLayoutVersion);
  for (const k of ['group_size', 'sym'] as const) {
    if (c[k] !== want[k]) throw new ModelFormatError(`config.json: quantization_config.${k} is not the m3web layout for ${c.bits} bits`, { expected: JSON.stringify(want[k]), received: c[k] });
  }
  return want;
}

/** One stored tensor of a quantised module, as safetensors holds it (little-endian bytes). */
export interface QuantFileTensor {
  dtype: 'u32' | 'f32' | 'f16';
  shape: number[];
  data: Uint8Array;
}

const bytesOf = (a: Uint32Array | Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * The tensors and the `__metadata__` entry that store `q` as module `<module>` (the weight name without
 * `.weight`): `<module>.qweight` U32, `<module>.scales` (int8 F32 [rows], q4 F16 [rows, groups]), q4
 * `<module>.qzeros` U32, and `"<module>.shape": "[rows, cols]"`. The inverse is fromQuantTensors.
 */
export function quantTensors(module: string, q: QuantizedMatrix): { tensors: [string, QuantFileTensor][]; metadata: Record<string, string> } {
  const tensors: [string, QuantFileTensor][] = [[`${module}.qweight`, { dtype: 'u32', shape: [q.rows, wordsPerRow(q.bits, q.cols)], data: bytesOf(q.qweight) }]];
  if (q.bits === 8) tensors.push([`${module}.scales`, { dtype: 'f32', shape: [q.rows], data: bytesOf(q.scales) }]);
  else {
    tensors.push([`${module}.scales`, { dtype: 'f16', shape: [q.rows, groupsPerRow(q.cols)], data: bytesOf(Uint16Array.from(q.scales, f32ToF16)) }]);
    tensors.push([`${module}.qzeros`, { dtype: 'u32', shape: [q.rows, zeroWordsPerRow(q.cols)], data: bytesOf(q.qzeros!) }]);
  }
  return { tensors, metadata: { [`${module}.shape`]: JSON.stringify([q.rows, q.cols]), [`${module}.bits`]: String(q.bits) } };
}

/** Copies little-endian bytes into a fresh aligned typed array (file bytes may sit at any offset). */
function aligned<T extends Uint32Array<ArrayBuffer> | Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>>(data: Uint8Array, make: (b: ArrayBuffer) => T): T {
  return make(data.slice().buffer);
}

/**
 * Rebuilds module `<module>`'s matrix from its stored tensors (`get` looks a name up; `metadata` is the
 * safetensors `__metadata__`), checking every dtype and shape against QUANT.md: ModelFormatError otherwise.
 * Its bits are `"<module>.bits"` in the metadata (layout version 2) or, without that entry (version 1), `folderBits`.
 */
export function fromQuantTensors(module: string, folderBits: QuantBits, get: (name: string) => QuantFileTensor | undefined, metadata: Record<string, string>): QuantizedMatrix {
  const stated = metadata[`${module}.bits`];
  if (stated !== undefined && stated !== '8' && stated !== '4') throw new ModelFormatError(`quantised weight "${module}" has bits the layout does not define`, { expected: `"${module}.bits": "8" | "4"`, received: stated });
  const bits: QuantBits = stated === undefined ? folderBits : (Number(stated) as QuantBits);
  let shape: unknown;
  try {
    shape = JSON.parse(metadata[`${module}.shape`] ?? 'null');
  } catch {
    shape = null;
  }
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((s) => Number.isSafeInteger(s) && s > 0)) {
    throw new ModelFormatError(`quantised weight "${module}" has no valid shape in the safetensors __metadata__`, { expected: `"${module}.shape": "[rows, cols]"`, received: metadata[`${module}.shape`] });
  }
  const [rows, cols] = shape as [number, number];
  const want = (name: string, dtype: QuantFileTensor['dtype'], dims: number[]): Uint8Array => {
    const t = get(`${module}.${name}`);
    if (!t || t.dtype !== dtype || t.shape.length !== dims.length || t.shape.some((s, i) => s !== dims[i])) {
      throw new ModelFormatError(`quantised weight "${module}.${name}" is missing or misshapen`, {
        expected: `${dtype.toUpperCase()} [${dims.join(', ')}] (src/model/QUANT.md, ${bits} bits)`,
        received: t ? `${t.dtype.toUpperCase()} [${t.shape.join(', ')}]` : 'nothing',
      });
    }
    return t.data;
  };
  const qweight = aligned(want('qweight', 'u32', [rows, wordsPerRow(bits, cols)]), (b) => new Uint32Array(b));
  if (bits === 8) return { bits, rows, cols, qweight, scales: aligned(want('scales', 'f32', [rows]), (b) => new Float32Array(b)), qzeros: null };
  const halves = aligned(want('scales', 'f16', [rows, groupsPerRow(cols)]), (b) => new Uint16Array(b));
  return { bits, rows, cols, qweight, scales: Float32Array.from(halves, f16ToF32), qzeros: aligned(want('qzeros', 'u32', [rows, zeroWordsPerRow(cols)]), (b) => new Uint32Array(b)) };
}

/** Rows [row0, row0 + n) as a matrix of their own (every row is self-contained: codes, scales and zero points). */
export function sliceRows(q: QuantizedMatrix, row0: number, n: number): QuantizedMatrix {
  const cut = <T extends Uint32Array<ArrayBuffer> | Float32Array<ArrayBuffer>>(a: T): T => a.slice((row0 * a.length) / q.rows, ((row0 + n) * a.length) / q.rows) as T;
  return { ...q, rows: n, qweight: cut(q.qweight), scales: cut(q.scales), qzeros: q.qzeros && cut(q.qzeros) };
}

/** Matrices of the same bits and cols stacked along rows (q;k;v → (3H, H)): equal to quantising the stacked weights. */
export function concatRows(parts: QuantizedMatrix[]): QuantizedMatrix {
  const [p0] = parts;
  if (parts.some((p) => p.bits !== p0.bits || p.cols !== p0.cols)) throw new InvalidInputError('concatRows: parts differ in bits or columns', { expected: `${p0.bits} bits × ${p0.cols} columns`, received: parts.map((p) => `${p.bits}×${p.cols}`).join(', ') });
  if (parts.length === 1) return p0;
  const cat = <T extends Uint32Array<ArrayBuffer> | Float32Array<ArrayBuffer>>(arrays: T[], make: (n: number) => T): T => {
    const out = make(arrays.reduce((s, a) => s + a.length, 0));
    let o = 0;
    for (const a of arrays) {
      out.set(a, o);
      o += a.length;
    }
    return out;
  };
  return {
    bits: p0.bits,
    rows: parts.reduce((s, p) => s + p.rows, 0),
    cols: p0.cols,
    qweight: cat(
      parts.map((p) => p.qweight),
      (n) => new Uint32Array(n),
    ),
    scales: cat(
      parts.map((p) => p.scales),
      (n) => new Float32Array(n),
    ),
    qzeros: p0.qzeros
      ? cat(
          parts.map((p) => p.qzeros!),
          (n) => new Uint32Array(n),
        )
      : null,
  };
}
