import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { loadModel, type LoadedModel } from '../model/load.ts';
import { ReferenceEncoder } from '../reference/model.ts';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { GOLDEN_FIXTURES } from '../../tools/fixtures/specs.ts';
import { cpuParityRows } from '../../tools/parity/cpu.ts';
import { parityTexts } from '../../tools/parity/engine-cases.ts';
import { maxAbs, minRowCosine } from '../../tools/parity/goldens.ts';
import { startModelServer, type ModelServer } from '../../tests/helpers/model-server.ts';
import { chooseThreads, createCpuEngine } from './index.ts';
import { ort } from './ort.ts';

// The CPU backend (onnxruntime-web wasm sessions per block) against the CPU reference, in Node.
let server: ModelServer;
const models = new Map<string, LoadedModel>();
const load = async (name: string) => models.get(name) ?? models.set(name, await loadModel(server.folderUrl(name))).get(name)!;

beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
});
afterAll(async () => {
  await server?.close();
});

describe.each([...GOLDEN_FIXTURES])('CPU backend parity: %s', (fixture) => {
  it('dense at every exit × 3 dims, sparse and ColBERT at every exit, MCLS: cos ≥ 0.99999, max_abs ≤ 1e-4', { timeout: 300_000 }, async () => {
    const model = await load(fixture);
    const L = model.config.num_hidden_layers;
    const rows = await cpuParityRows(model, fixture, 'cpu-node');
    // Per exit: 3 dense + sparse + colbert; the last exit adds ColBERT at 8 dims; MCLS at the first and last exit.
    expect(rows).toHaveLength(L * 5 + 1 + 2);
    expect(new Set(rows.filter((r) => r.output === 'dense').map((r) => r.layers))).toEqual(new Set(Array.from({ length: L }, (_, i) => i + 1)));
    for (const r of rows) {
      const what = `${r.output} layers=${r.layers} dims=${r.dims}`;
      expect(r.max_abs, what).toBeLessThanOrEqual(1e-4);
      expect(r.cos_min, what).toBeGreaterThanOrEqual(0.99999);
    }
  });
});

describe('CPU backend behaviour', () => {
  it('upcasts f16 checkpoints at load: f16 fixtures match the reference on the same weights at f32 precision', { timeout: 300_000 }, async () => {
    const texts = parityTexts();
    for (const fixture of ['bert-tiny-f16', 'xlmr-tiny-f16', 'm3bert-tiny-f16']) {
      const model = await load(fixture);
      const engine = await createCpuEngine(model);
      const H = model.config.hidden_size;
      const got = (await engine.embed(texts, { layers: 2 })).embeddings;
      const want = new ReferenceEncoder(model).embed(texts, { layers: 2 }).embeddings;
      expect(minRowCosine(got, want, texts.length, H), fixture).toBeGreaterThanOrEqual(0.99999);
      expect(maxAbs(got, want), fixture).toBeLessThanOrEqual(1e-5);
      engine.destroy();
    }
  });

  it('early exit at k runs exactly k block sessions (+1 for the ColBERT head)', async () => {
    const engine = await createCpuEngine(await load('xlmr-tiny'));
    // Every session is an instance of onnxruntime-web's InferenceSession class (the typings only expose its factory).
    const run = vi.spyOn((ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype, 'run');
    try {
      for (const k of [1, 2, 3]) {
        run.mockClear();
        await engine.embed(['a short text', 'another one'], { layers: k });
        expect(run).toHaveBeenCalledTimes(k);
        run.mockClear();
        await engine.embed(['a short text'], { layers: k, outputs: ['dense', 'sparse', 'colbert'] });
        expect(run).toHaveBeenCalledTimes(k + 1);
      }
    } finally {
      run.mockRestore();
      engine.destroy();
    }
  });

  it('maxLayers builds only the first k blocks: deeper requests are refused, shallower ones are unchanged', async () => {
    const model = await load('m3bert-tiny');
    const full = await createCpuEngine(model);
    const two = await createCpuEngine(model, { maxLayers: 2 });
    expect(two.maxLayers).toBe(2);
    const texts = ['the quick brown fox', 'jumps'];
    expect(Array.from((await two.embed(texts, { layers: 2, dims: 16 })).embeddings)).toEqual(Array.from((await full.embed(texts, { layers: 2, dims: 16 })).embeddings));
    await expect(two.embed(texts, { layers: 3 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(createCpuEngine(model, { maxLayers: 4 })).rejects.toBeInstanceOf(InvalidInputError);
    full.destroy();
    two.destroy();
  });

  it('batching does not change results: small length-sorted batches equal one batch of all', async () => {
    const model = await load('bert-tiny');
    const texts = parityTexts();
    const big = await createCpuEngine(model);
    const small = await createCpuEngine(model, { maxBatchTokens: 512 });
    const a = await big.embed(texts, { layers: 3 });
    const b = await small.embed(texts, { layers: 3 });
    expect(a.batches).toBeLessThan(b.batches);
    expect(maxAbs(a.embeddings, b.embeddings)).toBeLessThanOrEqual(1e-6);
    big.destroy();
    small.destroy();
  });

  it('applies a pre-truncation layer norm (nomic-style pooling config) as the reference does', async () => {
    const base = await load('bert-tiny');
    const model: LoadedModel = { ...base, pooling: { ...base.pooling, layerNormBeforeTruncate: true } };
    const engine = await createCpuEngine(model);
    const texts = parityTexts();
    const got = (await engine.embed(texts, { layers: 2, dims: 16 })).embeddings;
    const want = new ReferenceEncoder(model).embed(texts, { layers: 2, dims: 16 }).embeddings;
    expect(minRowCosine(got, want, texts.length, 16)).toBeGreaterThanOrEqual(0.99999);
    expect(maxAbs(got, want)).toBeLessThanOrEqual(1e-4);
    engine.destroy();
  });

  it('caps sequence length by attention memory: a text at the cap matches the reference, a longer one is refused', { timeout: 300_000 }, async () => {
    const model = await load('xlmr-long');
    const engine = await createCpuEngine(model);
    // onnxruntime's Attention holds (heads, T, T) f32 scores: 256 MiB allow √(2²⁶ / 2) tokens with 2 heads.
    const cap = Math.floor(Math.sqrt(2 ** 26 / 2));
    expect(engine.maxBatchTokens).toBe(cap);
    const words = (n: number) => Array.from({ length: n }, (_, i) => ['alpha', 'beta', 'gamma', 'delta'][i % 4]).join(' ');
    const tokens = (t: string) => model.tokenizer.encode([t], model.config.max_tokens).ids[0].length;
    let n = 1;
    while (tokens(words(n * 2)) <= cap) n *= 2;
    for (let step = n >> 1; step >= 1; step >>= 1) if (tokens(words(n + step)) <= cap) n += step;
    const text = words(n);
    expect(tokens(text)).toBeGreaterThan(cap - 8);
    const got = (await engine.embed([text])).embeddings;
    const want = new ReferenceEncoder(model).embed([text]).embeddings;
    expect(minRowCosine(got, want, 1, model.config.hidden_size)).toBeGreaterThanOrEqual(0.99999);
    expect(maxAbs(got, want)).toBeLessThanOrEqual(1e-4);
    await expect(engine.embed([words(9000)])).rejects.toBeInstanceOf(InvalidInputError);
    engine.destroy();
  });

  it('reports its backend and threads; rejects bad thread counts and calls after destroy', async () => {
    const engine = await createCpuEngine(await load('bert-tiny'));
    expect(engine.kind).toBe('cpu');
    expect(engine.dtype).toBe('f32');
    expect(Number.isInteger(engine.encoder.threads) && engine.encoder.threads >= 1).toBe(true);
    expect(engine.encoder.threadReason).toMatch(/thread/);
    expect(() => chooseThreads(0)).toThrow(InvalidInputError);
    expect(() => chooseThreads(1.5)).toThrow(InvalidInputError);
    // Node has SharedArrayBuffer and no isolation to ask for: an explicit count is honoured.
    expect(chooseThreads(3).threads).toBe(3);
    await expect(engine.embed(['x'], { layers: 0 })).rejects.toBeInstanceOf(InvalidInputError);
    engine.destroy();
    await expect(engine.embed(['x'])).rejects.toThrow(/destroyed/);
  });
});
