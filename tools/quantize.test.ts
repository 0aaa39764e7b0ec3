import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/errors.ts';
import { loadModel } from '../src/node.ts';
import { dequantize, groupsPerRow, isQuantizedWeight, quantize, quantizedBytes, weightBits, wordsPerRow, zeroWordsPerRow, type QuantBits, type QuantizedMatrix } from '../src/model/quant.ts';
import { headerLength, parseHeader } from '../src/model/safetensors.ts';
import { f16ToF32, toFloat32, type RawTensor } from '../src/model/tensor.ts';
import { ensureFixtures } from './fixtures/generate.ts';
import { modelDir } from './fixtures/paths.ts';
import { quantizeFolder } from './quantize.ts';

// `npm run quantize` on the generated fixtures: the written file is read back with the layout QUANT.md documents
// (an independent reader here, not the tool's own code), dequantised, and compared with the source weights.
let tmp: string;
beforeAll(() => {
  ensureFixtures();
  tmp = mkdtempSync(join(tmpdir(), 'm3web-quantize-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every tensor of a safetensors file by name: dtype string, shape, bytes; plus its metadata. */
function readFile(path: string): { tensors: Map<string, { dtype: string; shape: number[]; data: Uint8Array }>; metadata: Record<string, string> } {
  const b = new Uint8Array(readFileSync(path));
  const n = headerLength(b);
  const h = parseHeader(b.subarray(8, 8 + n), b.byteLength);
  const tensors = new Map(h.entries.map((e) => [e.name, { dtype: e.fileDtype, shape: e.shape, data: b.slice(h.dataStart + e.begin, h.dataStart + e.end) }]));
  return { tensors, metadata: h.metadata };
}

/** QUANT.md's "Files" table, read back into a QuantizedMatrix. */
function readQuantized(t: ReturnType<typeof readFile>, module: string, bits: QuantBits): QuantizedMatrix {
  const [rows, cols] = JSON.parse(t.metadata[`${module}.shape`]) as [number, number];
  const qw = t.tensors.get(`${module}.qweight`)!;
  const sc = t.tensors.get(`${module}.scales`)!;
  expect(qw.dtype).toBe('U32');
  expect(qw.shape).toEqual([rows, wordsPerRow(bits, cols)]);
  const u32 = (d: Uint8Array) => new Uint32Array(d.buffer, d.byteOffset, d.byteLength / 4);
  if (bits === 8) {
    expect([sc.dtype, sc.shape, t.tensors.has(`${module}.qzeros`)]).toEqual(['F32', [rows], false]);
    return { bits, rows, cols, qweight: u32(qw.data).slice(), scales: new Float32Array(sc.data.slice().buffer), qzeros: null };
  }
  const qz = t.tensors.get(`${module}.qzeros`)!;
  expect([sc.dtype, sc.shape]).toEqual(['F16', [rows, groupsPerRow(cols)]]);
  expect([qz.dtype, qz.shape]).toEqual(['U32', [rows, zeroWordsPerRow(cols)]]);
  const half = new Uint16Array(sc.data.buffer, sc.data.byteOffset, sc.data.byteLength / 2);
  return { bits, rows, cols, qweight: u32(qw.data).slice(), scales: Float32Array.from(half, (h) => f16ToF32(h)), qzeros: u32(qz.data).slice() };
}

describe.each([
  ['m3bert-tiny', 8],
  ['m3bert-tiny', 4],
  ['xlmr-tiny', 8],
  ['xlmr-tiny', 4],
  ['bert-tiny-f16', 4],
] as const)('npm run quantize %s --bits %i', (fixture, bits) => {
  it('writes the documented layout with each matrix’s bits; int8 dequantises within half a step of the source, q4 within one step', async () => {
    const out = join(tmp, `${fixture}-${bits}`);
    const r = await quantizeFolder(modelDir(fixture), bits, out);
    const src = await loadModel(modelDir(fixture), { heads: true });
    const file = readFile(join(out, 'model.safetensors'));
    expect(r.outBytes).toBe(readFileSync(join(out, 'model.safetensors')).byteLength);
    expect(r.outBytes).toBeLessThan(r.sourceBytes);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg.quantization_config).toEqual(bits === 8 ? { quant_method: 'm3web', bits: 8, group_size: -1, sym: true, version: 2 } : { quant_method: 'm3web', bits: 4, group_size: 32, sym: false, version: 2 });
    expect({ ...cfg, quantization_config: undefined }).toEqual({ ...JSON.parse(readFileSync(join(modelDir(fixture), 'config.json'), 'utf8')), quantization_config: undefined });
    for (const f of ['tokenizer.json', 'modules.json', '1_Pooling/config.json']) expect(readFileSync(join(out, f)).equals(readFileSync(join(modelDir(fixture), f))), f).toBe(true);
    expect(existsSync(join(out, 'colbert_linear.pt'))).toBe(false); // the heads moved into model.safetensors
    // The file keeps the source's names (m3bert-tiny's `model.` prefix, its unprefixed lm_head), in the source's dtypes.
    const srcFile = readFile(join(modelDir(fixture), 'model.safetensors'));
    const prefix = fixture.startsWith('m3bert') ? 'model.' : '';
    const sources: [string, string, RawTensor][] = [...srcFile.tensors].map(([name, t]) => [
      name,
      name.startsWith(prefix) ? name.slice(prefix.length) : name,
      { dtype: { F32: 'f32', F16: 'f16', BF16: 'bf16' }[t.dtype] as RawTensor['dtype'], shape: t.shape, data: t.data },
    ]);
    for (const [name, t] of src.heads) if (!srcFile.tensors.has(name)) sources.push([name, name, t]); // xlmr-tiny's colbert_linear.pt / sparse_linear.pt
    let n = 0;
    let n8 = 0;
    for (const [name, canonical, t] of sources) {
      const module = name.replace(/\.weight$/, '');
      if (!isQuantizedWeight(canonical)) {
        const kept = file.tensors.get(name)!;
        expect(kept.dtype, name).toBe({ f32: 'F32', f16: 'F16', bf16: 'BF16' }[t.dtype]);
        expect(Buffer.from(kept.data).equals(Buffer.from(t.data)), name).toBe(true);
        continue;
      }
      n++;
      expect(file.tensors.has(name), name).toBe(false);
      // Layout version 2: each matrix's bits in the metadata; under --bits 4 the rule's int8 weights are 8.
      const own = weightBits(canonical, bits);
      expect(file.metadata[`${module}.bits`], name).toBe(String(own));
      if (own === 8) n8++;
      const q = readQuantized(file, module, own);
      // Stored bytes are quantizedBytes (which rounds q4's f16 scales up to whole u32 words for the upload).
      const stored = ['qweight', 'scales', 'qzeros'].reduce((s, k) => s + (file.tensors.get(`${module}.${k}`)?.data.byteLength ?? 0), 0);
      expect(quantizedBytes(own, q.rows, q.cols) - stored, name).toBeGreaterThanOrEqual(0);
      expect(quantizedBytes(own, q.rows, q.cols) - stored, name).toBeLessThanOrEqual(2);
      expect(stored, name).toBeLessThan(t.data.byteLength * (own === 8 ? 0.3 : 0.2) * (t.dtype === 'f32' ? 1 : 2));
      const w = toFloat32(t);
      // Bit-exact with the format's own quantiser on the same f32 values.
      const want = quantize(w, q.rows, q.cols, own);
      expect([...q.qweight], name).toEqual([...want.qweight]);
      expect([...q.scales], name).toEqual([...want.scales]);
      const d = dequantize(q);
      if (own === 8) {
        // round-to-nearest over the whole row's range: within ½ step.
        let worst = 0;
        for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - d[i]) / (q.scales[Math.floor(i / q.cols)] || 1));
        expect(worst, name).toBeLessThanOrEqual(0.5 + 1e-4);
      } else {
        // q4: min/max ranges rounded to nearest; the zero point is rounded too, so a clamped end code can be off by up to one step.
        let worst = 0;
        for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - d[i]) / (q.scales[Math.floor(i / q.cols) * groupsPerRow(q.cols) + Math.floor((i % q.cols) / 32)] || 1));
        expect(worst, name).toBeLessThanOrEqual(1 + 1e-4);
      }
    }
    expect(n).toBe(r.quantized);
    expect(n8).toBe(r.atInt8);
    if (bits === 8) expect(n8).toBe(n);
    expect(n).toBeGreaterThan(src.config.num_hidden_layers * 4);
  });
});

describe('npm run quantize: bad input', () => {
  it('refuses a folder that is already quantised, a folder without config.json, and --out equal to the source', async () => {
    const once = join(tmp, 'twice-int8');
    await quantizeFolder(modelDir('bert-tiny'), 8, once);
    await expect(quantizeFolder(once, 4, join(tmp, 'twice-q4'))).rejects.toThrow(/already quantised/);
    await expect(quantizeFolder(tmp, 8, join(tmp, 'x'))).rejects.toBeInstanceOf(InvalidInputError);
    await expect(quantizeFolder(modelDir('bert-tiny'), 8, modelDir('bert-tiny'))).rejects.toThrow(/--out must differ/);
  });
});
