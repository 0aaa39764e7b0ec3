import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import { KERNEL_SCHEDULES, scheduleFor } from '../src/gpu/kernel.ts';
import { InvalidInputError } from '../src/errors.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../src/gpu/runtime.ts';
import { loadModel, type LoadedModel } from '../src/model/load.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { engineParityRows, engineThreshold } from '../tools/parity/engine-cases.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

// The WebGPU engine on Node (Dawn + SwiftShader) against the CPU reference of the f32 fixture.
let rt: GpuRuntime;
let server: ModelServer;
const models = new Map<string, LoadedModel>();
const load = async (name: string) => models.get(name) ?? models.set(name, await loadModel(server.folderUrl(name))).get(name)!;

beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
  rt = new GpuRuntime((await createNodeGpu()).device);
});
afterAll(async () => {
  rt?.device.destroy();
  await server?.close();
});

const FIXTURES: [string, 'f32' | 'f16'][] = [
  ['bert-tiny', 'f32'],
  ['bert-tiny-f16', 'f16'],
  ['xlmr-tiny', 'f32'],
  ['xlmr-tiny-f16', 'f16'],
  ['m3bert-tiny', 'f32'],
  ['m3bert-tiny-f16', 'f16'],
];

describe.each(FIXTURES)('engine parity on Node WebGPU: %s (%s weights)', (fixture, storage) => {
  it('matches the f32 CPU reference at exits 1/mid/last × dims small/mid/full on mixed-length batches', async () => {
    const model = await load(fixture);
    const reference = new ReferenceEncoder(await load(fixture.replace('-f16', '')));
    const engine = await Engine.create(rt, model, { weights: storage, maxBatchTokens: 1500 });
    const cfg = model.config;
    const rows = await engineParityRows({ family: cfg.family, fixture, backend: 'webgpu-node', dtype: engine.dtype, L: cfg.num_hidden_layers, H: cfg.hidden_size, mrlDims: cfg.mrl_dims }, engine, reference);
    const t = engineThreshold(storage);
    expect(rows).toHaveLength(9);
    for (const r of rows) {
      expect(r.cos_min, `layers=${r.layers} dims=${r.dims}`).toBeGreaterThanOrEqual(t.cos_min);
      if (t.max_abs !== undefined) expect(r.max_abs, `layers=${r.layers} dims=${r.dims}`).toBeLessThanOrEqual(t.max_abs);
    }
    engine.destroy();
  });
});

describe('engine behaviour', () => {
  it('picks its kernel schedule by adapter, and both schedules match the CPU reference', async () => {
    const model = await load('m3bert-tiny');
    const auto = await Engine.create(rt, model, { weights: 'f32' });
    expect(auto.encoder.schedule).toBe(scheduleFor(rt.fallbackAdapter));
    auto.destroy();
    const texts = ['the first of three texts', 'a second', 'and a third text, a little longer than the others'];
    const want = new ReferenceEncoder(model).embed(texts, { layers: 3 }).embeddings;
    for (const schedule of KERNEL_SCHEDULES) {
      const engine = await Engine.create(rt, model, { weights: 'f32', schedule });
      expect(engine.encoder.schedule).toBe(schedule);
      const got = (await engine.embed(texts, { layers: 3 })).embeddings;
      expect(Math.max(...want.map((v, i) => Math.abs(v - got[i]))), schedule).toBeLessThanOrEqual(1e-5);
      engine.destroy();
    }
    await expect(Engine.create(rt, model, { schedule: 'tiled' as never })).rejects.toThrow(InvalidInputError);
  });

  it('early exit records exactly k blocks of dispatches', async () => {
    const engine = await Engine.create(rt, await load('xlmr-tiny'), { weights: 'f32' });
    const counts: number[] = [];
    for (const layers of [1, 2, 3]) {
      rt.dispatchCounts.clear();
      await engine.embed(['one text', 'and another one'], { layers });
      counts.push([...rt.dispatchCounts.values()].reduce((a, b) => a + b, 0));
      expect(rt.dispatchCounts.get('attention')).toBe(layers);
    }
    // Each block adds the same number of dispatches; the fixed part (embeddings, pooling) stays.
    expect(counts[1] - counts[0]).toBe(counts[2] - counts[1]);
    expect(counts[1] - counts[0]).toBe(7);
    engine.destroy();
  });

  it('uploads only maxLayers blocks and matches the full engine at those exits', async () => {
    const model = await load('m3bert-tiny');
    const full = await Engine.create(rt, model, { weights: 'f32' });
    const small = await Engine.create(rt, model, { weights: 'f32', maxLayers: 1 });
    const texts = ['early exit saves memory too'];
    expect([...(await small.embed(texts, { layers: 1 })).embeddings]).toEqual([...(await full.embed(texts, { layers: 1 })).embeddings]);
    await expect(small.embed(texts, { layers: 2 })).rejects.toThrow(/exceeds the blocks this engine loaded; expected at most 1/);
    await expect(Engine.create(rt, model, { maxLayers: 4 })).rejects.toThrow(/maxLayers is out of range; expected an integer in 1\.\.3/);
    full.destroy();
    small.destroy();
  });

  it('compiles no pipeline after warm-up, whatever the batch size and lengths, and reuses pooled buffers', async () => {
    const engine = await Engine.create(rt, await load('m3bert-tiny'), { weights: 'f16' });
    const before = rt.pipelinesCreated;
    const texts = Array.from({ length: 9 }, (_, i) => 'word '.repeat(i * 13 + 1));
    await engine.embed(['a'], {});
    await engine.embed(texts, { layers: 2, dims: 8 });
    await engine.embed(['x y z'], { pooling: 'cls', normalize: false });
    expect(rt.pipelinesCreated).toBe(before);
    const buffers = rt.pool.created;
    await engine.embed(texts, { layers: 3, dims: 40 });
    expect(rt.pool.created).toBe(buffers);
    engine.destroy();
  });

  it("applies a model's pre-truncation LayerNorm module (nomic-style) before Matryoshka truncation", async () => {
    const base = await load('xlmr-tiny');
    const model = { ...base, pooling: { ...base.pooling, layerNormBeforeTruncate: true } };
    const engine = await Engine.create(rt, model, { weights: 'f32' });
    const texts = ['one text', 'and a second, longer text'];
    const got = await engine.embed(texts, { dims: 13 });
    const want = new ReferenceEncoder(model).embed(texts, { dims: 13 }).embeddings;
    for (let i = 0; i < want.length; i++) expect(Math.abs(got.embeddings[i] - want[i])).toBeLessThanOrEqual(1e-4);
    const plain = new ReferenceEncoder(base).embed(texts, { dims: 13 }).embeddings;
    expect(Math.max(...want.map((v, i) => Math.abs(v - plain[i])))).toBeGreaterThan(1e-3);
    engine.destroy();
  });

  it('returns results in input order and reports truncation', async () => {
    const engine = await Engine.create(rt, await load('xlmr-tiny'), { weights: 'f32', maxBatchTokens: 600 });
    const texts = ['short', 'word '.repeat(700), 'a bit longer text here', 'mid '.repeat(40)];
    const all = await engine.embed(texts, { dims: 20 });
    expect(all.truncated).toBe(1);
    expect(all.batches).toBeGreaterThan(1);
    for (let i = 0; i < texts.length; i++) {
      const one = await engine.embed([texts[i]], { dims: 20 });
      const row = all.embeddings.subarray(i * 20, (i + 1) * 20);
      for (let j = 0; j < 20; j++) expect(Math.abs(row[j] - one.embeddings[j])).toBeLessThanOrEqual(1e-5);
    }
    engine.destroy();
  });

  it('splits a word-embedding table larger than one binding into chunks with identical results', async () => {
    const model = await loadModel(server.folderUrl('xlmr-tiny'));
    const whole = await Engine.create(rt, model, { weights: 'f32' });
    // 8002 × 52 × 4 B = 1.66 MB of word embeddings; a 100 kB binding limit forces 17 chunks.
    const split = await Engine.create(rt, model, { weights: 'f32', maxBindingBytes: 100_000 });
    expect(split.encoder.bindingLimit).toBe(100_000);
    const texts = ['the quick brown fox', 'Быстрая лиса', '敏捷的棕色狐狸'];
    const a = await whole.embed(texts, {});
    rt.dispatchCounts.clear();
    const b = await split.embed(texts, {});
    expect(rt.dispatchCounts.get('gather_add')).toBe(16);
    // Only the order of the f32 additions word + position + type differs.
    for (let i = 0; i < a.embeddings.length; i++) expect(Math.abs(b.embeddings[i] - a.embeddings[i])).toBeLessThanOrEqual(1e-6);
    // The same limit caps padded tokens per batch (widest activation row 3H = 156 floats = 624 B).
    expect(split.maxBatchTokens).toBe(Math.floor(100_000 / 624));
    await expect(split.embed(['word '.repeat(400)], {})).rejects.toThrow(/too long for this GPU's storage binding limit; expected at most 160 tokens per sequence on the webgpu backend/);
    whole.destroy();
    split.destroy();
  });

  it('rejects bad input with typed errors naming expected and received', async () => {
    const engine = await Engine.create(rt, await load('xlmr-tiny'), { weights: 'f32' });
    await expect(engine.embed([], {})).rejects.toThrow(InvalidInputError);
    await expect(engine.embed([''], {})).rejects.toThrow(/texts\[0\] is an empty string/);
    await expect(engine.embed([3 as unknown as string], {})).rejects.toThrow(/texts\[0\] is not a string; expected string; received 3/);
    await expect(engine.embed(['a'], { layers: 0 })).rejects.toThrow(/"layers" is out of range; expected an integer in 1\.\.3; received 0/);
    await expect(engine.embed(['a'], { dims: 53 })).rejects.toThrow(/"dims" is out of range; expected an integer in 1\.\.52; received 53/);
    await expect(engine.embed(['a'], { pooling: 'median' as 'cls' })).rejects.toThrow(/pooling/);
    await expect(engine.embed(['a'], { colour: 1 } as object)).rejects.toThrow(/unknown option "colour"/);
    engine.destroy();
  });

  it('rejects a tokenizer whose ids exceed the model vocabulary', async () => {
    const xlmr = await load('xlmr-tiny');
    // bert-tiny's WordPiece tokenizer has 30,522 ids; xlmr-tiny's embedding table has 8,002 rows.
    const mismatched = { ...xlmr, tokenizer: (await load('bert-tiny')).tokenizer };
    const engine = await Engine.create(rt, mismatched, { weights: 'f32' });
    await expect(engine.embed(['zymurgy xylophone'], {})).rejects.toThrow(/outside the model vocabulary .*; expected ids < vocab_size 8002/);
    engine.destroy();
  });
});
