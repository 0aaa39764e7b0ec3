import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError, ModelFormatError } from '../errors.ts';
import { EmbedService } from '../engine/service.ts';
import { loadModel } from '../model/load.ts';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { MODELS_DIR } from '../../tools/fixtures/paths.ts';
import { parityTexts } from '../../tools/parity/engine-cases.ts';
import { minRowCosine } from '../../tools/parity/goldens.ts';
import { startModelServer, type ModelServer } from '../../tests/helpers/model-server.ts';
import { createCpuEngine, createOrtGraphEngine } from './index.ts';

// Backend 'ort-wasm': the PyTorch ONNX export of xlmr-tiny (bge-m3's hub layout: pytorch_model.bin, onnx/,
// colbert_linear.pt, sparse_linear.pt) against the CPU backend on the same weights, every output.
const FIXTURE = 'xlmr-tiny-bin';
let server: ModelServer;

beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
});
afterAll(async () => {
  await server?.close();
});

describe('backend ort-wasm (a whole exported ONNX graph)', () => {
  it('returns dense, sparse and ColBERT equal to the CPU backend (cos ≥ 0.9999, same sparse ids), full depth only', { timeout: 120_000 }, async () => {
    const graphModel = await loadModel(server.folderUrl(FIXTURE), { heads: true, encoderWeights: false });
    expect(graphModel.weights.size).toBe(0); // no encoder weight file fetched
    expect(graphModel.heads.size).toBe(4);
    const onnx = readFileSync(resolve(MODELS_DIR, FIXTURE, 'onnx/model.onnx'));
    const graph = await createOrtGraphEngine(graphModel, onnx);
    const cpu = await createCpuEngine(await loadModel(server.folderUrl(FIXTURE)));
    const L = graphModel.config.num_hidden_layers;
    const texts = parityTexts();
    const opts = { outputs: ['dense', 'sparse', 'colbert'] as ('dense' | 'sparse' | 'colbert')[], dims: 16 };
    const [a, b] = [await graph.embed(texts, opts), await cpu.embed(texts, opts)];
    expect(a.layers).toBe(L);
    expect(minRowCosine(a.embeddings, b.embeddings, texts.length, 16)).toBeGreaterThanOrEqual(0.9999);
    for (let i = 0; i < texts.length; i++) {
      expect([...a.sparse![i].ids]).toEqual([...b.sparse![i].ids]);
      a.sparse![i].weights.forEach((w, j) => expect(Math.abs(w - b.sparse![i].weights[j])).toBeLessThan(1e-3));
      const [ca, cb] = [a.colbert![i], b.colbert![i]];
      expect(ca.count).toBe(cb.count);
      expect(minRowCosine(ca.data, cb.data, ca.count, ca.dim)).toBeGreaterThanOrEqual(0.9999);
    }
    // The graph has no exits: another depth is a typed error before any work.
    await expect(graph.embed(['x'], { layers: 1 })).rejects.toBeInstanceOf(InvalidInputError);
    graph.destroy();
    cpu.destroy();
  });

  it('a file that is not ONNX is a ModelFormatError', async () => {
    const graphModel = await loadModel(server.folderUrl(FIXTURE), { heads: true, encoderWeights: false });
    await expect(createOrtGraphEngine(graphModel, new TextEncoder().encode('<html>not a model</html>'))).rejects.toBeInstanceOf(ModelFormatError);
  });

  it('EmbedService.load(backend "ort-wasm") finds onnx/model.onnx in the model folder and serves every output', { timeout: 120_000 }, async () => {
    const svc = new EmbedService();
    const info = await svc.load(server.folderUrl(FIXTURE), { backend: 'ort-wasm' });
    expect(info).toMatchObject({ backend: 'ort-wasm', hasBgeM3Heads: true, maxLayers: info.layers });
    const r = await svc.embed(['hello world'], { outputs: ['dense', 'sparse', 'colbert'] });
    expect(r.backend).toBe('ort-wasm');
    expect(r.sparse![0].ids.length).toBeGreaterThan(0);
    expect(r.colbert![0].count).toBe(r.tokens[0] - 1);
    await expect(svc.load(server.folderUrl(FIXTURE), { backend: 'cpu', onnx: 'onnx/model.onnx' })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(svc.load(server.folderUrl(FIXTURE), { backend: 'ort-wasm', onnx: 'onnx/missing.onnx' })).rejects.toMatchObject({ name: 'ModelFetchError' });
    // The failed load left the working one serving.
    expect((await svc.embed(['hello world'])).backend).toBe('ort-wasm');
  });
});
