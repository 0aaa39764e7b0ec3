import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import { CpuReferenceBackend } from '../src/reference/backend.ts';
import type { EmbedBackend } from '../src/engine/backend.ts';
import { AbortError, M3Error, NumericError, WeightError } from '../src/errors.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../src/gpu/runtime.ts';
import { loadModel, type LoadedModel } from '../src/model/load.ts';
import type { RawTensor } from '../src/model/tensor.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

// Issue #10 items 4, 7 (outputs), 8, 9 and #11's position ids / readback housekeeping, on Node WebGPU
// (Dawn) and on the CPU reference path, which now share one Engine.
let rt: GpuRuntime;
let server: ModelServer;
let model: LoadedModel;
beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
  rt = new GpuRuntime((await createNodeGpu()).device);
  model = await loadModel(server.folderUrl('xlmr-tiny'));
});
afterAll(async () => {
  rt?.device.destroy();
  await server?.close();
});

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/** The error a promise rejects with (or 'resolved'), as class name + message. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(M3Error);
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

describe('one validation for every backend', () => {
  it('the GPU engine and the CPU path reject the same requests with the same typed errors', async () => {
    const gpu = await Engine.create(rt, model, { weights: 'f32' });
    const cpu = new CpuReferenceBackend(model);
    const aborted = new AbortController();
    aborted.abort();
    const bad: [unknown, unknown, RegExp][] = [
      [['a'], { outputs: ['sparse'], foo: 1 }, /InvalidInputError: unknown option "foo"/],
      [['a'], { outputs: ['sparse'], dims: 0 }, /InvalidInputError: option "dims" is out of range/],
      [['a'], { outputs: ['sparse'], pooling: 'median' }, /InvalidInputError: option "pooling" is not supported/],
      [['a'], { outputs: ['dense', 'colbert'], mcls: 64 }, /InvalidInputError: option "mcls" cannot be combined with ColBERT/],
      [['a'], { mcls: 1e9 }, /InvalidInputError: option "mcls" must be the CLS interval in tokens; expected an integer in 1\.\.512/],
      [['a'], { colbertDims: 8 }, /InvalidInputError: option "colbertDims" needs ColBERT output/],
      [['a'], { signal: aborted.signal }, /AbortError: the call was aborted/],
      [['a'], { signal: 'stop' }, /InvalidInputError: option "signal" must be an AbortSignal/],
      [['a'], { onProgress: 5 }, /InvalidInputError: option "onProgress" must be a function/],
      [['a'], null, /InvalidInputError: options must be an object/],
      [['a'], { layers: 4 }, /InvalidInputError: option "layers" is out of range/],
      // eslint-disable-next-line no-sparse-arrays
      [[, 'a'], {}, /InvalidInputError: texts\[0\] is not a string; expected string; received "a hole in a sparse array"/],
      [['a', ' '], {}, /InvalidInputError: texts\[1\] has no tokens/],
      [[''], {}, /InvalidInputError: texts\[0\] is an empty string/],
    ];
    for (const [texts, opts, want] of bad) {
      const g = await outcome((gpu as EmbedBackend).embed(texts as string[], opts as never));
      const c = await outcome((cpu as EmbedBackend).embed(texts as string[], opts as never));
      expect(g, JSON.stringify(opts)).toMatch(want);
      expect(c).toBe(g);
    }
    expect(await outcome(gpu.embed(['a'], { signal: aborted.signal }))).toMatch(/AbortError/);
    const e = await gpu.embed(['a'], { signal: aborted.signal }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbortError);
    gpu.destroy();
    cpu.destroy();
    // The first Engine.create of the file compiles every pipeline (tens of seconds on a loaded SwiftShader).
  }, 240_000);

  it('MCLS + sparse is computed the same way on both: sparse from the MCLS sequence', async () => {
    const gpu = await Engine.create(rt, model, { weights: 'f32' });
    const cpu = new CpuReferenceBackend(model);
    const texts = ['one two three four five six seven eight nine ten eleven twelve thirteen', 'short'];
    const req = { outputs: ['dense', 'sparse'] as ('dense' | 'sparse')[], mcls: 4 };
    const [g, c] = [await gpu.embed(texts, req), await cpu.embed(texts, req)];
    const plain = await cpu.embed(texts, { outputs: ['sparse'] });
    expect(maxAbs(g.embeddings, c.embeddings)).toBeLessThan(1e-4);
    for (let i = 0; i < texts.length; i++) {
      expect([...g.sparse![i].ids]).toEqual([...c.sparse![i].ids]);
      expect(maxAbs(g.sparse![i].weights, c.sparse![i].weights)).toBeLessThan(1e-4);
    }
    // The long text's inserted CLS tokens change its hidden states, so its sparse weights differ from plain.
    expect(maxAbs(c.sparse![0].weights, plain.sparse![0].weights)).toBeGreaterThan(1e-6);
    gpu.destroy();
    cpu.destroy();
  });
});

describe('XLM-R position ids from input_ids != padding_idx', () => {
  it('a literal <pad> inside a text: the GPU matches the reference (itself checked against PyTorch goldens)', async () => {
    const gpu = await Engine.create(rt, model, { weights: 'f32' });
    const texts = ['before <pad> after, and a few more words', 'a second, shorter one'];
    const ids = model.tokenizer.encode(texts, 512).ids[0];
    expect([...ids]).toContain(model.tokenizer.padId);
    const want = new ReferenceEncoder(model).embed(texts).embeddings;
    const got = (await gpu.embed(texts)).embeddings;
    expect(maxAbs(got, want)).toBeLessThan(1e-5);
    gpu.destroy();
  });
});

describe('outputs are checked for NaN/Inf', () => {
  const poisoned = (value: number): LoadedModel => {
    const weights = new Map(model.weights);
    const t = weights.get('embeddings.LayerNorm.weight')!;
    const v = new Float32Array(t.shape[0]).fill(1);
    v[3] = value;
    weights.set('embeddings.LayerNorm.weight', { dtype: 'f32', shape: t.shape, data: new Uint8Array(v.buffer) } satisfies RawTensor);
    return { ...model, weights };
  };
  it('a NaN or Inf weight makes the call reject with NumericError on the GPU and on the CPU path', async () => {
    for (const bad of [NaN, Infinity]) {
      const m = poisoned(bad);
      const gpu = await Engine.create(rt, m, { weights: 'f32' });
      for (const backend of [gpu, new CpuReferenceBackend(m)]) {
        const e = await backend.embed(['some text'], { outputs: ['dense', 'sparse'] }).catch((x: unknown) => x);
        expect(e, `${backend.kind} ${bad}`).toBeInstanceOf(NumericError);
        expect(String(e)).toMatch(/non-finite value/);
        backend.destroy();
      }
    }
  });
});

describe('the CPU path batches by length', () => {
  it('1000 short texts and one 512-token text: no forward pass holds more than maxBatchTokens padded tokens', async () => {
    const ref = new ReferenceEncoder(model, 2048);
    const padded: number[] = [];
    const forward = ref.forward.bind(ref);
    ref.forward = (batch, layers, keep) => {
      padded.push(batch.B * batch.T);
      return forward(batch, layers, keep);
    };
    const long = 'word '.repeat(2000);
    const texts = [...Array.from({ length: 1000 }, (_, i) => `short text ${i}`), long];
    const r = ref.embed(texts, { layers: 1 });
    expect(r.truncated).toBe(1);
    expect(Math.max(...padded)).toBeLessThanOrEqual(2048);
    // Padding everything to the longest would be 1001 × 512 = 512,512 tokens; by length it stays near the real count.
    const real = texts.map((t) => model.tokenizer.encode([t], 512).ids[0].length).reduce((a, b) => a + b, 0);
    expect(padded.reduce((a, b) => a + b, 0)).toBeLessThan(1.5 * real);
    // Same vectors as one call per text.
    for (const i of [0, 999, 1000]) expect(maxAbs(r.embeddings.subarray(i * r.dims, (i + 1) * r.dims), ref.embed([texts[i]], { layers: 1 }).embeddings)).toBeLessThan(1e-6);
  });
});

describe('GPU buffers', () => {
  it('a failed readback still returns its scratch buffers to the pool; destroy() frees the idle ones', async () => {
    const gpu = await Engine.create(rt, model, { weights: 'f32' });
    await gpu.embed(['warm the pool up']);
    const created = rt.pool.created;
    const read = rt.readF32.bind(rt);
    rt.readF32 = () => Promise.reject(new WeightError('readback failed (test)'));
    await expect(gpu.embed(['warm the pool up'])).rejects.toThrow(/readback failed/);
    rt.readF32 = read;
    await gpu.embed(['warm the pool up']);
    expect(rt.pool.created).toBe(created); // every buffer came back: the retry allocated none
    gpu.destroy();
    expect(rt.pool.idleBytes).toBe(0);
    expect(rt.pool.allocatedBytes).toBe(0);
  });
});
