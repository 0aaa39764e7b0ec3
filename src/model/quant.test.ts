import { describe, expect, it } from 'vitest';
import { InvalidInputError, ModelFormatError } from '../errors.ts';
import { seeded } from '../gpu/kernels/testing.ts';
import {
  dequantize,
  dequantizeInt8,
  dequantizeQ4,
  groupsPerRow,
  isQuantizedWeight,
  parseQuantizationConfig,
  quantCode,
  concatRows,
  sliceRows,
  quantTensors,
  fromQuantTensors,
  quantizationConfig,
  quantizedBytes,
  quantizeInt8,
  quantizeQ4,
  weightBits,
  Q4_CLIP_STEPS,
  quantScale,
  quantZero,
  wordsPerRow,
  zeroWordsPerRow,
} from './quant.ts';
import { f16ToF32, f32ToF16 } from './tensor.ts';

const relRmse = (w: Float32Array, d: Float32Array) => Math.sqrt(w.reduce((s, v, i) => s + (v - d[i]) ** 2, 0) / w.reduce((s, v) => s + v * v, 0));

describe('int8 per-row quantisation', () => {
  it('packs 4 two’s-complement bytes per u32, rows on word boundaries, on an odd size', () => {
    // 2 rows × 5 columns: row 0's max |w| is 1.27 → scale 0.01; row 1 is all zero.
    const w = new Float32Array([1.27, -1.27, 0.004, -0.016, 0.5, 0, 0, 0, 0, 0]);
    const q = quantizeInt8(w, 2, 5);
    expect(wordsPerRow(8, 5)).toBe(2);
    expect(q.qweight.length).toBe(4);
    expect(q.scales[0]).toBe(Math.fround(1.27 / 127));
    expect(q.scales[1]).toBe(0);
    const s = q.scales[0];
    const codes = [0, 1, 2, 3, 4].map((k) => Math.round(w[k] / s));
    expect(codes).toEqual([127, -127, 0, -2, 50]); // 0.4 → 0, −1.6 → −2: codes are two's-complement bytes
    const b = (c: number) => c & 0xff;
    expect([...q.qweight]).toEqual([(b(codes[0]) | (b(codes[1]) << 8) | (b(codes[2]) << 16) | (b(codes[3]) << 24)) >>> 0, b(codes[4]), 0, 0]);
    expect([0, 1, 2, 3, 4].map((k) => quantCode(q, 0, k))).toEqual(codes);
    expect(quantZero(q, 0, 3)).toBe(0);
    expect([...dequantizeInt8(q)]).toEqual([...codes.map((c) => Math.fround(c * s)), 0, 0, 0, 0, 0]);
  });

  it.each([
    [1, 1],
    [3, 7],
    [13, 130],
    [64, 1027],
  ])('round-trips a %i × %i matrix within half a step per element', (rows, cols) => {
    const w = seeded(rows * cols, rows * 131 + cols, -2, 2);
    const q = quantizeInt8(w, rows, cols);
    const d = dequantize(q);
    let worst = 0; // largest error in steps
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < cols; k++) worst = Math.max(worst, Math.abs(d[r * cols + k] - w[r * cols + k]) / q.scales[r]);
      // The row's largest |w| is code ±127 exactly.
      expect(Math.max(...Array.from({ length: cols }, (_, k) => Math.abs(quantCode(q, r, k))))).toBe(127);
    }
    expect(worst).toBeLessThanOrEqual(0.5 + 1e-6);
    if (rows * cols > 1000) expect(relRmse(w, d)).toBeLessThan(0.005); // uniform: step/√12 relative to the RMS
  });
});

describe('q4 block-32 quantisation with zero points', () => {
  it('packs 8 nibbles per u32 and 8 zero points per word, on an odd size', () => {
    // 1 row × 35 columns (two blocks, the second of 3 elements): w_k = k/34 for block 0, then 3 negatives.
    const w = new Float32Array(35);
    for (let k = 0; k < 32; k++) w[k] = k / 31;
    w.set([-0.3, 0, 0.15], 32);
    const q = quantizeQ4(w, 1, 35);
    expect([wordsPerRow(4, 35), groupsPerRow(35), zeroWordsPerRow(35)]).toEqual([5, 2, 1]);
    expect(q.qweight.length).toBe(5);
    expect(q.scales.length).toBe(2);
    // Block 0: lo = 0, hi = 1 → scale f16(1/15), zero 0. Block 1: lo = −0.3, hi = 0.15 → scale f16(0.03), zero round(0.3/s) = 10.
    const s0 = f16ToF32(f32ToF16(1 / 15));
    const s1 = f16ToF32(f32ToF16(0.45 / 15));
    expect([...q.scales]).toEqual([s0, s1]);
    expect(q.qzeros![0]).toBe(0 | (10 << 4));
    const want = [...Array.from({ length: 32 }, (_, k) => Math.min(15, Math.round(k / 31 / s0))), Math.max(0, Math.round(-0.3 / s1) + 10), 10, Math.round(0.15 / s1) + 10];
    expect(want.slice(32)).toEqual([0, 10, 15]);
    expect(Array.from({ length: 35 }, (_, k) => quantCode(q, 0, k))).toEqual(want);
    let word4 = 0;
    for (let k = 32; k < 35; k++) word4 |= want[k] << ((k - 32) * 4);
    expect(q.qweight[4]).toBe(word4); // the ragged last word: 3 nibbles, the rest zero
    expect(q.qweight[0]).toBe(want.slice(0, 8).reduce((a, c, j) => a | (c << (4 * j)), 0) >>> 0);
    expect([quantZero(q, 0, 31), quantZero(q, 0, 32), quantScale(q, 0, 34)]).toEqual([0, 10, s1]);
    expect([...dequantizeQ4(q)]).toEqual(want.map((c, k) => Math.fround((c - (k < 32 ? 0 : 10)) * (k < 32 ? s0 : s1))));
    // Zero stays exactly zero (the zero point is an integer code).
    expect(dequantize(q)[33]).toBe(0);
  });

  it.each([
    [1, 1],
    [3, 33],
    [5, 100],
    [17, 1027],
    [2, 300], // 10 blocks: zero points spill into a second word
  ])('min/max ranges round-trip a %i × %i matrix within half a step per element', (rows, cols) => {
    const w = seeded(rows * cols, rows * 7 + cols, -1, 3);
    const q = quantizeQ4(w, rows, cols);
    const d = dequantize(q);
    let worst = 0; // largest error in steps
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) worst = Math.max(worst, Math.abs(d[r * cols + k] - w[r * cols + k]) / quantScale(q, r, k));
    // f16 rounding of the scale can push the block's extreme past code 15 by at most 15·|Δs| ≤ 15·2^-11·s.
    expect(worst).toBeLessThanOrEqual(0.5 + 15 * 2 ** -11);
    if (rows * cols > 1000) expect(relRmse(w, d)).toBeLessThan(0.075);
  });

  it.each([
    [3, 33],
    [17, 1027],
  ])('the clipping search never raises a block’s squared error above min/max, and lowers the whole on a %i × %i gaussian', (rows, cols) => {
    // Box–Muller over the seeded uniforms: bell-shaped blocks, where clipping the rare extremes pays.
    const u = seeded(2 * rows * cols, rows + cols, 1e-6, 1);
    const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sqrt(-2 * Math.log(u[2 * i])) * Math.cos(2 * Math.PI * u[2 * i + 1]));
    const [a, b] = [dequantize(quantizeQ4(w, rows, cols, Q4_CLIP_STEPS)), dequantize(quantizeQ4(w, rows, cols))];
    for (let r = 0; r < rows; r++)
      for (let k0 = 0; k0 < cols; k0 += 32) {
        const sse = (d: Float32Array) => w.subarray(r * cols + k0, r * cols + Math.min(cols, k0 + 32)).reduce((s, v, j) => s + (v - d[r * cols + k0 + j]) ** 2, 0);
        expect(sse(a), `row ${r} block ${k0 / 32}`).toBeLessThanOrEqual(sse(b));
      }
    expect(relRmse(w, a)).toBeLessThan(relRmse(w, b));
    // Measured: 0.968 of min/max's relative RMSE on the 17 × 1027 case (blocks of 32 have few extremes to clip).
    if (rows * cols > 1000) expect(relRmse(w, a) / relRmse(w, b)).toBeLessThan(0.98);
  });

  it('picks, per block, the shrink factor with the least squared error (below 1 for some of 8 gaussian blocks)', () => {
    const u = seeded(512, 11, 1e-6, 1);
    const w = Float32Array.from({ length: 256 }, (_, i) => Math.sqrt(-2 * Math.log(u[2 * i])) * Math.cos(2 * Math.PI * u[2 * i + 1]));
    const q = quantizeQ4(w, 1, 256, Q4_CLIP_STEPS);
    const picked: number[] = [];
    for (let g = 0; g < 8; g++) {
      const b = w.subarray(32 * g, 32 * g + 32);
      const [lo, hi] = [Math.min(0, ...b), Math.max(0, ...b)];
      // Every candidate's error, computed the plain way: the search keeps the least (the first on ties).
      const cand = Q4_CLIP_STEPS.map((a) => {
        const s = f16ToF32(f32ToF16((a * (hi - lo)) / 15));
        const z = Math.max(0, Math.min(15, Math.round((-a * lo) / s)));
        return { s, z, e: [...b].reduce((e, v) => e + (v - (Math.max(0, Math.min(15, Math.round(v / s) + z)) - z) * s) ** 2, 0) };
      });
      const best = cand.reduce((m, c, i) => (c.e < cand[m].e ? i : m), 0);
      picked.push(best);
      expect([quantScale(q, 0, 32 * g), quantZero(q, 0, 32 * g)]).toEqual([cand[best].s, cand[best].z]);
    }
    expect(picked.some((i) => i > 0)).toBe(true);
    expect(Q4_CLIP_STEPS[0]).toBe(1);
  });

  it('dequantises an all-zero block to zeros', () => {
    const q = quantizeQ4(new Float32Array(40), 1, 40);
    expect([...q.scales]).toEqual([0, 0]);
    expect(dequantize(q).every((v) => v === 0)).toBe(true);
  });
});

describe('validation, sizes and config', () => {
  it('rejects bad shapes and non-finite weights with InvalidInputError', () => {
    expect(() => quantizeInt8(new Float32Array(5), 2, 3)).toThrow(InvalidInputError);
    expect(() => quantizeQ4(new Float32Array(6), 0, 6)).toThrow(InvalidInputError);
    expect(() => quantizeQ4(new Float32Array([1, NaN]), 1, 2)).toThrow(/NaN or infinite/);
    expect(() => quantizeInt8(new Float32Array([1, Infinity]), 1, 2)).toThrow(/NaN or infinite/);
    expect(() => dequantizeQ4(quantizeInt8(new Float32Array(4), 1, 4))).toThrow(InvalidInputError);
  });

  it('counts stored bytes: bge-m3 word table int8 / q4', () => {
    expect(quantizedBytes(8, 250002, 1024)).toBe(250002 * 1024 + 250002 * 4);
    // q4: 512 B codes + 32 f16 scales + 4 words of zero points per row.
    expect(quantizedBytes(4, 250002, 1024)).toBe(250002 * (512 + 64 + 16));
    expect(quantizedBytes(4, 1, 35)).toBe(20 + 4 + 4);
  });

  it('names the quantised weights', () => {
    for (const n of [
      'encoder.layer.3.attention.self.query.weight',
      'encoder.layer.0.output.dense.weight',
      'layers.2.mlp.gate_proj.weight',
      'layers.0.self_attn.o_proj.weight',
      'embeddings.word_embeddings.weight',
      'embed_tokens.weight',
      'colbert_linear.weight',
    ])
      expect(isQuantizedWeight(n)).toBe(true);
    for (const n of ['encoder.layer.3.attention.self.query.bias', 'embeddings.position_embeddings.weight', 'embeddings.LayerNorm.weight', 'sparse_linear.weight', 'pos_embeddings.weight', 'layers.0.input_layernorm.weight', 'lm_head.weight'])
      expect(isQuantizedWeight(n)).toBe(false);
  });

  it('q4 storage stores only the FFN input projections at 4 bits; int8 storage every matrix at 8', () => {
    const four = ['encoder.layer.0.intermediate.dense.weight', 'encoder.layer.11.intermediate.dense.weight', 'layers.3.mlp.gate_proj.weight', 'layers.0.mlp.up_proj.weight'];
    const eight = [
      'encoder.layer.0.attention.self.query.weight',
      'encoder.layer.0.attention.self.key.weight',
      'encoder.layer.0.attention.self.value.weight',
      'encoder.layer.0.attention.output.dense.weight',
      'encoder.layer.0.output.dense.weight',
      'layers.1.self_attn.q_proj.weight',
      'layers.1.self_attn.v_proj.weight',
      'layers.1.self_attn.o_proj.weight',
      'layers.1.mlp.down_proj.weight',
      'embeddings.word_embeddings.weight',
      'embed_tokens.weight',
      'colbert_linear.weight',
    ];
    expect(four.map((n) => weightBits(n, 4))).toEqual([4, 4, 4, 4]);
    expect(eight.map((n) => weightBits(n, 4))).toEqual(eight.map(() => 8));
    expect([...four, ...eight].map((n) => weightBits(n, 8))).toEqual([...four, ...eight].map(() => 8));
    // q, k, v (and gate, up) share bits: the engine stacks them into one matmul.
    expect(new Set(['query', 'key', 'value'].map((x) => weightBits(`encoder.layer.2.attention.self.${x}.weight`, 4))).size).toBe(1);
  });

  it('parses quantization_config and rejects other layouts', () => {
    expect(parseQuantizationConfig(undefined)).toBeNull();
    // Version 1 folders (every matrix at the config's bits) still parse; new folders are version 2.
    expect(parseQuantizationConfig({ quant_method: 'm3web', bits: 4, group_size: 32, sym: false, version: 1 })).toEqual(quantizationConfig(4, 1));
    expect(parseQuantizationConfig(quantizationConfig(4))).toEqual({ quant_method: 'm3web', bits: 4, group_size: 32, sym: false, version: 2 });
    expect(parseQuantizationConfig(quantizationConfig(8))).toEqual({ quant_method: 'm3web', bits: 8, group_size: -1, sym: true, version: 2 });
    expect(() => parseQuantizationConfig({ quant_method: 'm3web', bits: 4, group_size: 32, sym: false, version: 3 })).toThrow(/version/);
    expect(() => parseQuantizationConfig({ quant_method: 'gptq', bits: 4 })).toThrow(ModelFormatError);
    expect(() => parseQuantizationConfig({ quant_method: 'm3web', bits: 3 })).toThrow(/bits must be 8 or 4/);
    expect(() => parseQuantizationConfig({ quant_method: 'm3web', bits: 4, group_size: 128, sym: false, version: 1 })).toThrow(/group_size/);
  });
});

describe('file tensors', () => {
  it.each([8, 4] as const)('%i bits: quantTensors → fromQuantTensors is the identity, and a misshapen tensor is a ModelFormatError', (bits) => {
    const w = seeded(7 * 45, bits, -1, 1);
    const q = bits === 8 ? quantizeInt8(w, 7, 45) : quantizeQ4(w, 7, 45);
    const { tensors, metadata } = quantTensors('encoder.layer.0.output.dense', q);
    expect(tensors.map(([n, t]) => `${n} ${t.dtype} [${t.shape}]`)).toEqual(
      bits === 8
        ? ['encoder.layer.0.output.dense.qweight u32 [7,12]', 'encoder.layer.0.output.dense.scales f32 [7]']
        : ['encoder.layer.0.output.dense.qweight u32 [7,6]', 'encoder.layer.0.output.dense.scales f16 [7,2]', 'encoder.layer.0.output.dense.qzeros u32 [7,1]'],
    );
    expect(metadata).toEqual({ 'encoder.layer.0.output.dense.shape': '[7,45]', 'encoder.layer.0.output.dense.bits': String(bits) });
    // Stored bytes at an odd offset, as inside a file buffer.
    const map = new Map(tensors.map(([n, t]) => [n, { ...t, data: new Uint8Array([0, ...t.data]).subarray(1) }]));
    const back = fromQuantTensors('encoder.layer.0.output.dense', bits, (n) => map.get(n), metadata);
    expect(back).toEqual(q);
    // The matrix's own bits win over the folder's (a q4 folder's int8 matrices); a version-1 entry without bits takes the folder's.
    expect(fromQuantTensors('encoder.layer.0.output.dense', bits === 8 ? 4 : 8, (n) => map.get(n), metadata)).toEqual(q);
    expect(fromQuantTensors('encoder.layer.0.output.dense', bits, (n) => map.get(n), { 'encoder.layer.0.output.dense.shape': '[7,45]' })).toEqual(q);
    expect(() => fromQuantTensors('encoder.layer.0.output.dense', bits, (n) => map.get(n), { ...metadata, 'encoder.layer.0.output.dense.bits': '3' })).toThrow(/bits the layout does not define/);
    expect(quantizedBytes(bits, 7, 45)).toBe(tensors.reduce((s, [, t]) => s + t.data.byteLength + (t.data.byteLength % 4), 0));
    expect(() => fromQuantTensors('encoder.layer.0.output.dense', bits, (n) => map.get(n), {})).toThrow(ModelFormatError);
    map.set('encoder.layer.0.output.dense.qweight', { dtype: 'u32', shape: [7, 3], data: new Uint8Array(84) });
    expect(() => fromQuantTensors('encoder.layer.0.output.dense', bits, (n) => map.get(n), metadata)).toThrow(/qweight" is missing or misshapen/);
  });
});

describe('row slices and stacks', () => {
  it.each([8, 4] as const)('%i bits: stacking quantised parts equals quantising the stacked weights; slices invert it', (bits) => {
    const a = seeded(3 * 45, 1, -1, 1);
    const b = seeded(5 * 45, 2, -2, 2);
    const both = new Float32Array([...a, ...b]);
    const q = (w: Float32Array, rows: number) => (bits === 8 ? quantizeInt8(w, rows, 45) : quantizeQ4(w, rows, 45));
    const cat = concatRows([q(a, 3), q(b, 5)]);
    expect(cat).toEqual(q(both, 8));
    expect(sliceRows(cat, 3, 5)).toEqual(q(b, 5));
    expect(dequantize(sliceRows(cat, 0, 3))).toEqual(dequantize(cat).subarray(0, 3 * 45));
    expect(() => concatRows([quantizeInt8(a, 3, 45), quantizeQ4(b, 5, 45)])).toThrow(InvalidInputError);
  });
});
