import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import { EmbedService } from '../src/engine/service.ts';
import { InvalidInputError, WeightError } from '../src/errors.ts';
import { matmulProgram } from '../src/gpu/kernels/matmul.ts';
import { l2normProgram } from '../src/gpu/kernels/l2norm.ts';
import { seeded } from '../src/gpu/kernels/testing.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../src/gpu/runtime.ts';
import { loadModel } from '../src/model/load.ts';
import { readTorchStateDict } from '../src/model/torch.ts';
import { toFloat32, type RawTensor } from '../src/model/tensor.ts';
import { colbertVectors, combineTokenWeights, sparseWeights } from '../src/reference/heads.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { CpuReferenceBackend } from '../src/reference/backend.ts';
import { encodeWeights } from '../src/engine/gpu-weights.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { SHARED_DATA, sharedDataAvailable } from '../tools/fixtures/paths.ts';
import { bgeM3ParityRows } from '../tools/parity/engine-cases.ts';
import { maxAbs, sparseMaxAbs } from '../tools/parity/goldens.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

let rt: GpuRuntime;
let server: ModelServer;
beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
  rt = new GpuRuntime((await createNodeGpu()).device);
});
afterAll(async () => {
  rt?.device.destroy();
  await server?.close();
});

describe.each([
  ['xlmr-tiny', 'f32', 1e-4],
  ['xlmr-tiny-f16', 'f16', 1e-2],
] as const)('BGE-M3 outputs on the GPU: %s', (fixture, storage, sparseTol) => {
  it('dense, sparse and ColBERT from one pass match the f32 CPU reference at the full depth and exit 1', async () => {
    const engine = await Engine.create(rt, await loadModel(server.folderUrl(fixture)), { weights: storage, maxBatchTokens: 1500 });
    const reference = new ReferenceEncoder(await loadModel(server.folderUrl('xlmr-tiny')));
    const rows = await bgeM3ParityRows({ family: 'xlm-roberta', fixture, backend: 'webgpu-node', dtype: engine.dtype, L: 3, H: 52 }, engine, reference);
    expect(rows.map((r) => `${r.output}@${r.layers}`)).toEqual(['dense@3', 'sparse@3', 'colbert@3', 'dense@1', 'sparse@1', 'colbert@1']);
    for (const r of rows) {
      if (r.output === 'sparse') expect(r.max_abs, `sparse@${r.layers}`).toBeLessThanOrEqual(sparseTol);
      else if (storage === 'f32') {
        expect(r.cos_min, `${r.output}@${r.layers}`).toBeGreaterThanOrEqual(0.99999);
        expect(r.max_abs, `${r.output}@${r.layers}`).toBeLessThanOrEqual(1e-4);
      } else expect(r.cos_min, `${r.output}@${r.layers}`).toBeGreaterThanOrEqual(0.999);
    }
    engine.destroy();
  });
});

describe('BGE-M3 output options', () => {
  it('returns n−1 ColBERT vectors per text, truncated and re-normalised, and sparse token strings', async () => {
    const model = await loadModel(server.folderUrl('xlmr-tiny'));
    const engine = await Engine.create(rt, model, { weights: 'f32' });
    const texts = ['The quick brown fox.', 'ok'];
    const r = await engine.embed(texts, { outputs: ['colbert', 'sparse'], colbertDims: 9, sparseTokens: true });
    expect(r.embeddings.length).toBe(0);
    const ids = model.tokenizer.encode(texts, 512).ids;
    r.colbert!.forEach((c, i) => {
      expect(c.count).toBe(ids[i].length - 1);
      expect(c.dim).toBe(9);
      for (let v = 0; v < c.count; v++) expect(Math.hypot(...c.data.subarray(v * 9, v * 9 + 9))).toBeCloseTo(1, 5);
    });
    const ref = new ReferenceEncoder(model).bgeM3(texts, { colbertDims: 9 });
    expect(maxAbs(r.colbert![0].data, ref.colbert[0])).toBeLessThanOrEqual(1e-4);
    const s = r.sparse![0];
    expect(s.tokens).toEqual([...s.ids].map((id) => model.tokenizer.idToToken(id)));
    expect([...s.ids]).toEqual([...s.ids].sort((a, b) => a - b));
    expect([...s.ids].some((id) => id <= 3)).toBe(false);
    engine.destroy();
  });

  it('rejects heads outputs on a model without heads, and bad output options, with typed errors', async () => {
    const engine = await Engine.create(rt, await loadModel(server.folderUrl('m3bert-tiny')), { weights: 'f32' });
    await expect(engine.embed(['a'], { outputs: ['sparse'] })).rejects.toThrow(WeightError);
    await expect(engine.embed(['a'], { outputs: [] })).rejects.toThrow(InvalidInputError);
    await expect(engine.embed(['a'], { outputs: ['lexical' as 'sparse'] })).rejects.toThrow(/subset of dense, sparse, colbert/);
    engine.destroy();
    const m3 = await Engine.create(rt, await loadModel(server.folderUrl('xlmr-tiny')), { weights: 'f32' });
    await expect(m3.embed(['a'], { outputs: ['colbert'], colbertDims: 53 })).rejects.toThrow(/"colbertDims" is out of range; expected an integer in 1\.\.52/);
    m3.destroy();
  });
});

describe('EmbedService (the worker API) returns BGE-M3 outputs on both backends', () => {
  it('CPU fallback and WebGPU agree on dense, sparse and ColBERT', async () => {
    const cpu = new EmbedService({ referenceBackend: (m) => new CpuReferenceBackend(m) });
    expect((await cpu.load(server.folderUrl('xlmr-tiny'), { backend: 'cpu-ref' })).backend).toBe('cpu-ref');
    const engine = await Engine.create(rt, await loadModel(server.folderUrl('xlmr-tiny')), { weights: 'f32' });
    const texts = ['The quick brown fox.', 'Быстрая коричневая лиса'];
    const opts = { outputs: ['dense', 'sparse', 'colbert'] as ('dense' | 'sparse' | 'colbert')[], layers: 2, colbertDims: 20, sparseTokens: true };
    const a = await cpu.embed(texts, opts);
    const b = await engine.embed(texts, opts);
    expect(maxAbs(a.embeddings, b.embeddings)).toBeLessThanOrEqual(1e-4);
    a.sparse!.forEach((s, i) => {
      expect(sparseMaxAbs(s, b.sparse![i])).toBeLessThanOrEqual(1e-4);
      expect(s.tokens).toEqual(b.sparse![i].tokens);
    });
    a.colbert!.forEach((c, i) => {
      expect([c.count, c.dim]).toEqual([b.colbert![i].count, b.colbert![i].dim]);
      expect(maxAbs(c.data, b.colbert![i].data)).toBeLessThanOrEqual(1e-4);
    });
    engine.destroy();
  });
});

describe('MCLS for long documents', () => {
  it('averages the CLS states inserted every k tokens, like the CPU reference; short texts equal plain CLS', async () => {
    const model = await loadModel(server.folderUrl('xlmr-tiny'));
    const engine = await Engine.create(rt, model, { weights: 'f32' });
    const reference = new ReferenceEncoder(model);
    const long = 'the quick brown fox jumps over the lazy dog '.repeat(30);
    const texts = [long, 'short one'];
    const got = await engine.embed(texts, { mcls: 16 });
    const want = reference.embed(texts, { mcls: 16 }).embeddings;
    expect(maxAbs(got.embeddings, want)).toBeLessThanOrEqual(1e-4);
    // With fewer than k content tokens there is only the original CLS: MCLS is CLS pooling.
    const plain = await engine.embed(['short one'], {});
    expect(maxAbs(got.embeddings.subarray(52), plain.embeddings)).toBeLessThanOrEqual(1e-6);
    // The long text really changed: its MCLS vector differs from its CLS vector.
    const longPlain = await engine.embed([long], {});
    expect(maxAbs(got.embeddings.subarray(0, 52), longPlain.embeddings)).toBeGreaterThan(1e-3);
    await expect(engine.embed([long], { mcls: 16, outputs: ['colbert'] })).rejects.toThrow(/cannot be combined with ColBERT/);
    await expect(engine.embed([long], { mcls: 0 })).rejects.toThrow(InvalidInputError);
    engine.destroy();
  });
});

const headsDir = resolve(SHARED_DATA, 'heads/bge-m3');
describe.skipIf(!sharedDataAvailable() || !existsSync(headsDir))('the real bge-m3 heads on GPU vs CPU', () => {
  it('give the same sparse weights and ColBERT vectors on seeded hidden states (fp16 weights as stored)', async () => {
    const colbert = readTorchStateDict(new Uint8Array(readFileSync(resolve(headsDir, 'colbert_linear.pt'))));
    const sparse = readTorchStateDict(new Uint8Array(readFileSync(resolve(headsDir, 'sparse_linear.pt'))));
    const H = 1024;
    const T = 7;
    const hidden = seeded(T * H, 20241, -2, 2); // (T, H) synthetic exit hidden states
    const ids = [0, 5, 9, 5, 11, 3, 2];
    const mask = [1, 1, 1, 1, 1, 1, 1];
    const head = (sd: Map<string, RawTensor>, out: number) => ({ weight: toFloat32(sd.get('weight')!), bias: toFloat32(sd.get('bias')!), out, in: H });
    const wantSparse = sparseWeights(hidden, ids, mask, T, head(sparse, 1), new Set([0, 1, 2, 3]));
    const wantColbert = colbertVectors(hidden, T, head(colbert, H));

    const x = rt.upload(hidden);
    const up = (t: RawTensor) => rt.upload(encodeWeights([t], 'f16'));
    const tokenW = rt.createBuffer(T * 4);
    await rt.run(matmulProgram({ M: T, N: 1, K: H }, { wDtype: 'f16x2', bias: true, activation: 'relu', residual: false }), [x, up(sparse.get('weight')!), up(sparse.get('bias')!), tokenW]);
    const proj = rt.createBuffer(T * H * 4);
    const vecs = rt.createBuffer(T * H * 4);
    await rt.run(matmulProgram({ M: T, N: H, K: H }, { wDtype: 'f16x2', bias: true, activation: 'none', residual: false }), [x, up(colbert.get('weight')!), up(colbert.get('bias')!), proj]);
    await rt.run(l2normProgram({ rows: T, cols: H, d: H }), [proj, vecs]);
    const w = await rt.readF32(tokenW, T);
    const gotSparse = combineTokenWeights(w, ids, mask, T, new Set([0, 1, 2, 3]));
    expect(sparseMaxAbs(gotSparse, wantSparse)).toBeLessThanOrEqual(1e-4);
    expect(gotSparse.ids.length).toBeGreaterThan(0);
    const gotColbert = (await rt.readF32(vecs, T * H)).subarray(H, T * H); // rows 1..T−1
    expect(maxAbs(gotColbert, wantColbert)).toBeLessThanOrEqual(1e-5);
  });
});
