// M3Client over the REAL worker service (EmbedService on Node WebGPU, across a MessageChannel): every
// output the engine has comes back through the client, rows reassembled across slices and worker calls,
// with exact token counts and truncation from the worker's tokenizer; score() is FlagEmbedding's
// compute_score; a memory budget uploads only the blocks it affords, and a deeper call uploads the rest.
import { describe, expect, it } from 'vitest';
import { memoryCache } from '../src/client/cache.ts';
import { M3Client } from '../src/client/client.ts';
import { EmbedService } from '../src/engine/service.ts';
import { InvalidInputError } from '../src/errors.ts';
import { computeScore } from '../src/search/score.ts';
import { SemanticIndex } from '../src/search/semantic-index.ts';
import type { Embedder } from '../src/search/types.ts';
import { maxAbs } from '../tools/parity/goldens.ts';
import { portWorker } from './helpers/port-worker.ts';
import { fixtureServerAndGpu } from './helpers/fixture-env.ts';

const env = fixtureServerAndGpu();

const TEXTS = ['The quick brown fox.', 'Быстрая коричневая лиса прыгает', 'a', 'green tea and black coffee ', 'Der schnelle braune Fuchs', 'zebra', 'one more sentence about foxes'];

async function clientFor(model: string, extra: object = {}) {
  const services: EmbedService[] = [];
  const m3 = await M3Client.create({
    model: model.includes('/') ? model : env.server.folderUrl(model),
    cache: memoryCache(),
    calibration: 'skip',
    backend: 'webgpu',
    chunkTexts: 2,
    maxBatchTexts: 3,
    workerFactory: () => {
      const svc = new EmbedService({ gpu: env.gpu.gpu });
      services.push(svc);
      return portWorker(svc).worker;
    },
    ...extra,
  });
  return { m3, services };
}

describe('M3Client over the real EmbedService', () => {
  it('returns dense, sparse and ColBERT exactly as the service does, across slices; exact token counts', async () => {
    const { m3 } = await clientFor('xlmr-tiny');
    const opts = { outputs: ['dense', 'sparse', 'colbert'] as ('dense' | 'sparse' | 'colbert')[], layers: 2, dims: 20, colbertDims: 16, sparseTokens: true };
    const got = await m3.embed(TEXTS, opts);
    const direct = new EmbedService({ gpu: env.gpu.gpu });
    await direct.load(env.server.folderUrl('xlmr-tiny'), { backend: 'webgpu' });
    const want = await direct.embed(TEXTS, opts);
    expect(got.batches).toBeGreaterThan(1); // really sliced over several worker calls
    expect(got.dims).toBe(20);
    expect(maxAbs(got.embeddings, want.embeddings)).toBeLessThanOrEqual(1e-6);
    expect([...got.tokens]).toEqual([...want.tokens]);
    got.sparse!.forEach((s, i) => {
      expect([...s.ids]).toEqual([...want.sparse![i].ids]);
      expect(maxAbs(s.weights, want.sparse![i].weights)).toBeLessThanOrEqual(1e-6);
      expect(s.tokens).toEqual(want.sparse![i].tokens);
    });
    got.colbert!.forEach((c, i) => {
      expect([c.count, c.dim]).toEqual([want.colbert![i].count, 16]);
      expect(maxAbs(c.data, want.colbert![i].data)).toBeLessThanOrEqual(1e-6);
    });

    // score() = compute_score on the three outputs of the query and each passage.
    const scores = await m3.score(TEXTS[0], [TEXTS[4], TEXTS[5]], [0.4, 0.2, 0.4], { layers: 2 });
    const r = await direct.embed([TEXTS[0], TEXTS[4], TEXTS[5]], { outputs: ['dense', 'sparse', 'colbert'], layers: 2 });
    const part = (i: number) => ({ dense: r.embeddings.subarray(i * r.dims, (i + 1) * r.dims), sparse: r.sparse![i], colbert: r.colbert![i] });
    [1, 2].forEach((j, k) => {
      const w = computeScore(part(0), part(j), [0.4, 0.2, 0.4]);
      for (const key of Object.keys(w) as (keyof typeof w)[]) expect(scores[k][key]).toBeCloseTo(w[key], 6);
    });

    // Truncation is reported per text from the worker's tokenizer.
    const long = 'word '.repeat(3000);
    const t = await m3.embed(['short', long, 'short too']);
    expect(t.truncated).toBe(1);
    expect(t.truncatedRows).toEqual([1]);
    expect(t.tokens[1]).toBe(m3.info.maxTokens);

    await expect(m3.embed(['x'], { outputs: ['sparse'], colbertDims: 4 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(m3.embed(['x'], { foo: 1 } as never)).rejects.toBeInstanceOf(InvalidInputError);
    m3.dispose();
  });

  it('a memory budget uploads only the blocks it affords; a deeper call uploads the rest and still matches', async () => {
    const full = await clientFor('m3bert-tiny');
    const frontier = full.m3.candidates({});
    const at = (layers: number) => frontier.find((c) => c.layers === layers && c.dtype === 'f32')!.memoryMB;
    // A budget between the 1- and 2-block f32 memory figures: only 1 block is affordable in f32 (weights
    // pinned: otherwise int8 / q4 would hold more, tests/client-dtype.test.ts).
    const budget = { memoryMB: (at(1) + at(2)) / 2 };
    const small = await clientFor('m3bert-tiny', { budget, weights: 'f32' });
    expect(small.m3.info.maxLayers).toBe(1);
    expect(small.m3.plan.layers).toBe(1);
    expect(small.m3.plan.memoryMB).toBeLessThanOrEqual(budget.memoryMB);
    const deep = await small.m3.embed(TEXTS, { layers: 3 });
    expect(small.m3.info.maxLayers).toBe(3);
    const want = await full.m3.embed(TEXTS, { layers: 3 });
    expect(maxAbs(deep.embeddings, want.embeddings)).toBeLessThanOrEqual(1e-6);
    full.m3.dispose();
    small.m3.dispose();
  });
});

describe('M3Client picks the faster backend on a software WebGPU adapter', () => {
  it('calibrates WebGPU and the CPU backend and keeps the better plan for the budget, saying why', async () => {
    const { m3 } = await clientFor('m3bert-tiny', { calibration: 'auto', backend: 'auto', budget: { latencyMs: 10_000 } });
    const trials = m3.stats.backendTrials!;
    expect(trials.map((t) => t.backend).sort()).toEqual(['cpu', 'webgpu']);
    const best = [...trials].filter((t) => t.plan).sort((x, y) => y.plan!.quality - x.plan!.quality || x.plan!.latencyMs - y.plan!.latencyMs)[0];
    expect(m3.plan.backend).toBe(best.backend);
    expect(m3.info.backends).toEqual([best.backend]);
    expect(m3.plan.backendReason).toMatch(/calibrated .*cpu.* vs |calibrated .*webgpu.* vs /);
    // It embeds on the kept backend at an early exit, as the other would.
    const r = await m3.embed(TEXTS, { layers: 1 });
    expect(r.backend).toBe(best.backend);
    m3.dispose();
  });
});

describe('M3Client loads a hub id from an HF_ENDPOINT-style mirror', () => {
  it('a bge-m3-shaped repo laid out as the real one (pytorch_model.bin, .pt heads, onnx/) returns all three outputs', async () => {
    const { m3 } = await clientFor('BAAI/xlmr-tiny-bin', { hubEndpoint: env.server.endpoint, revision: 'main' });
    expect(m3.info.source).toContain('BAAI/xlmr-tiny-bin');
    expect(m3.info.hasBgeM3Heads).toBe(true);
    const r = await m3.embed(TEXTS.slice(0, 3), { outputs: ['dense', 'sparse', 'colbert'] });
    const direct = new EmbedService({ gpu: env.gpu.gpu });
    await direct.load(env.server.folderUrl('xlmr-tiny'), { backend: 'webgpu' });
    const want = await direct.embed(TEXTS.slice(0, 3), { outputs: ['dense', 'sparse', 'colbert'] });
    // The .bin twin of xlmr-tiny holds the same bits: the same vectors come back.
    expect(maxAbs(r.embeddings, want.embeddings)).toBeLessThanOrEqual(1e-6);
    r.sparse!.forEach((s, i) => expect([...s.ids]).toEqual([...want.sparse![i].ids]));
    r.colbert!.forEach((c, i) => expect(maxAbs(c.data, want.colbert![i].data)).toBeLessThanOrEqual(1e-6));
    expect(env.server.requests.some((p) => p.startsWith('/BAAI/xlmr-tiny-bin/resolve/main/pytorch_model.bin'))).toBe(true);
    m3.dispose();
  });
});

describe('SemanticIndex over M3Client', () => {
  it('M3Client is an Embedder: hybrid search over its dense, sparse and ColBERT outputs finds each document first', async () => {
    const { m3 } = await clientFor('xlmr-tiny');
    const embedder: Embedder = m3;
    const index = await SemanticIndex.create({ embedder, layers: 2, dims: 24, outputs: ['dense', 'sparse', 'colbert'] });
    await index.add(TEXTS.map((text, i) => ({ id: `d${i}`, text })));
    expect(index.stats().count).toBe(TEXTS.length);
    expect(index.stats().modelId).toBe(m3.modelId);
    for (const [i, text] of TEXTS.entries()) {
      const hits = await index.search(text, { k: 3, mode: 'hybrid' });
      expect(hits[0].id).toBe(`d${i}`);
      expect(hits[0].scores.dense).toBeCloseTo(1, 5);
    }
    m3.dispose();
  });
});
