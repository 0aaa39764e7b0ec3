// M3Client's queue, fairness, abort and recovery in Node: a fake EmbedService exposed with comlink over a
// MessageChannel stands in for the worker (deterministic vectors, a few ms per call, killable).
import * as Comlink from 'comlink';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { memoryCache } from './cache.ts';
import { M3Client, type ClientProgress } from './client.ts';
import { portWorker } from '../../tests/helpers/port-worker.ts';

const LAYERS = 4;
const HIDDEN = 8;

/** What the fake computes: a pure function of (text, layers, dims), so re-runs are checkable. */
function vec(text: string, layers: number, dims: number): number[] {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const v = Array.from({ length: dims }, (_, j) => Math.sin(h * 1e-6 + j * 0.37 + layers));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

class FakeService {
  calibrationRuns = 0;
  calls: string[][] = [];
  constructor(
    private delayMs: number,
    private gpu = false,
  ) {}
  async probeGpu() {
    return this.gpu ? { ok: true as const, adapter: { vendor: 'fake', architecture: 'gpu', description: '', isFallbackAdapter: false, features: [], shaderF16: false, limits: {} } } : { ok: false as const, reason: 'fake' };
  }
  async load(_model: string, _opts: unknown, onProgress?: (p: unknown) => void) {
    await onProgress?.({ phase: 'download', file: 'model.safetensors', loaded: 10, total: 10 });
    return { source: 'fake://m', family: 'bert', layers: LAYERS, hidden: HIDDEN, heads: 2, maxTokens: 64, pooling: 'cls', normalize: true, hasBgeM3Heads: false, backend: this.gpu ? 'webgpu' : 'cpu-ref', dtype: 'f32' };
  }
  modelStats() {
    return { vocab: 100, intermediate: 16, typeVocab: 2, maxPositions: 66 };
  }
  ping() {
    return { loaded: true, backend: 'cpu-ref' };
  }
  async calibrate(runs: { text: string; layers: number }[]) {
    this.calibrationRuns += runs.length;
    return runs.map((r) => ({ tokens: r.text.split(' ').length + 2, chars: r.text.length, layers: r.layers, ms: 1 + 0.01 * r.layers * (r.text.split(' ').length + 2), gpuMs: null }));
  }
  async embed(texts: string[], opts: { layers: number; dims: number }) {
    this.calls.push(texts);
    await new Promise((r) => setTimeout(r, this.delayMs));
    if (texts.includes('BAD')) throw new InvalidInputError('texts contain BAD', { expected: 'no BAD', received: 'BAD' });
    const out = new Float32Array(texts.length * opts.dims);
    texts.forEach((t, i) => out.set(vec(t, opts.layers, opts.dims), i * opts.dims));
    // Token counts come from the worker's tokenizer (here: words + CLS/SEP), as the real service reports them.
    const tokens = Uint32Array.from(texts, (t) => t.split(' ').length + 2);
    return Comlink.transfer({ embeddings: out, n: texts.length, dims: opts.dims, layers: opts.layers, truncated: 0, truncatedRows: [], tokens, backend: 'cpu-ref', dtype: 'f32', ms: this.delayMs }, [out.buffer]);
  }
}

/** A Worker look-alike: comlink on one port, the service on the other; terminate() closes both. */
function fakeWorkers(delayMs = 3, gpuPerSpawn: boolean[] = []) {
  const spawned: { service: FakeService; worker: Worker; terminated: boolean }[] = [];
  const factory = () => {
    const service = new FakeService(delayMs, gpuPerSpawn[spawned.length] ?? false);
    const w = portWorker(service);
    const entry = {
      service,
      worker: w.worker,
      get terminated() {
        return w.terminated();
      },
    };
    spawned.push(entry);
    return entry.worker;
  };
  return { factory, spawned };
}

const texts = (i: number, n = 2) => Array.from({ length: n }, (_, k) => `text ${i}.${k} ${'word '.repeat((i + k) % 5)}`.trim());

function expectVectors(r: { embeddings: Float32Array; dims: number; layers: number }, ts: string[]): void {
  ts.forEach((t, i) => {
    const want = vec(t, r.layers, r.dims);
    for (let j = 0; j < r.dims; j++) expect(Math.abs(r.embeddings[i * r.dims + j] - want[j])).toBeLessThan(1e-6);
  });
}

async function client(extra: object = {}, delayMs = 3) {
  const w = fakeWorkers(delayMs);
  const progress: ClientProgress[] = [];
  const m3 = await M3Client.create({ model: 'fake://m', cache: memoryCache(), workerFactory: w.factory, heartbeat: { intervalMs: 20, timeoutMs: 200 }, onProgress: (p) => progress.push(p), ...extra });
  return { m3, w, progress };
}

describe('M3Client (fake worker)', () => {
  it('creates, calibrates, plans and embeds with the plan', async () => {
    const { m3, progress } = await client({ budget: {} });
    expect(m3.plan.backend).toBe('cpu-ref');
    expect([m3.plan.layers, m3.plan.dims]).toEqual([LAYERS, HIDDEN]);
    expect(m3.stats.calibration).toBe('measured');
    expect(progress.map((p) => p.phase)).toContain('download');
    expect(progress.at(-1)!.phase).toBe('ready');
    const r = await m3.embed(['a b', 'c']);
    expect([r.layers, r.dims, r.n]).toEqual([LAYERS, HIDDEN, 2]);
    expectVectors(r, ['a b', 'c']);
    m3.dispose();
  });

  it('a second client with the same cache skips calibration', async () => {
    const cache = memoryCache();
    const a = await client({ cache });
    const b = await client({ cache });
    expect(a.m3.stats.calibration).toBe('measured');
    expect(b.m3.stats.calibration).toBe('cache');
    expect(b.w.spawned[0].service.calibrationRuns).toBe(0);
    a.m3.dispose();
    b.m3.dispose();
  });

  it('terminated worker with 20 requests in flight: each resolves once with the right vectors', async () => {
    const { m3, w } = await client({ maxBatchTexts: 8 });
    const ps = Array.from({ length: 20 }, (_, i) => m3.embed(texts(i), { layers: 2, dims: 4 }));
    let settled = 0;
    ps.forEach((p) => p.then(() => settled++));
    await new Promise((r) => setTimeout(r, 1)); // first call is under way
    expect(m3.stats.workerCalls).toBe(1);
    w.spawned[0].worker.terminate(); // silently: the heartbeat must notice
    const rs = await Promise.all(ps);
    rs.forEach((r, i) => expectVectors(r, texts(i)));
    expect(settled).toBe(20);
    expect(m3.stats.restarts).toBe(1);
    expect(w.spawned).toHaveLength(2);
    // Every text ran on the new worker exactly once (no duplicates, nothing dropped).
    const ran = w.spawned[1].service.calls.flat().filter((t) => t.startsWith('text '));
    expect(ran.sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => texts(i))
        .flat()
        .sort(),
    );
    m3.dispose();
  });

  it('batches fairly: small requests are not starved by a big one', async () => {
    const { m3 } = await client({ maxBatchTexts: 8, chunkTexts: 4 });
    const order: string[] = [];
    const big = m3.embed(Array.from({ length: 200 }, (_, i) => `big ${i}`)).then(() => order.push('big'));
    const small = [0, 1, 2].map((i) => m3.embed([`small ${i}`]).then(() => order.push(`small${i}`)));
    await Promise.all([big, ...small]);
    expect(order.at(-1)).toBe('big');
    m3.dispose();
  });

  it('aborting one call rejects only it, and drops its queued slices', async () => {
    const { m3, w } = await client({ maxBatchTexts: 4, chunkTexts: 2 });
    const ctrls = [0, 1, 2].map(() => new AbortController());
    const ps = ctrls.map((c, i) =>
      m3.embed(texts(i, 6), { signal: c.signal }).then(
        (r) => r,
        (e: Error) => e,
      ),
    );
    ctrls[1].abort(new Error('stop'));
    const [a, b, c] = await Promise.all(ps);
    expect((b as Error).name).toBe('AbortError');
    expectVectors(a as never, texts(0, 6));
    expectVectors(c as never, texts(2, 6));
    const ran = w.spawned[0].service.calls.flat();
    expect(ran.filter((t) => t.startsWith('text 1.')).length).toBeLessThanOrEqual(2); // at most the slice already running
    const pre = await m3.embed(['x'], { signal: AbortSignal.abort() }).catch((e: Error) => e.name);
    expect(pre).toBe('AbortError');
    m3.dispose();
  });

  it('an input error inside a shared batch fails only its own request', async () => {
    const { m3 } = await client();
    const ps = [m3.embed(['ok 1']), m3.embed(['BAD']), m3.embed(['ok 2'])].map((p) =>
      p.then(
        (r) => r,
        (e: Error) => e,
      ),
    );
    const [a, b, c] = await Promise.all(ps);
    expect((b as Error).name).toBe('InvalidInputError');
    expectVectors(a as never, ['ok 1']);
    expectVectors(c as never, ['ok 2']);
    expect(m3.stats.restarts).toBe(0);
    m3.dispose();
  });

  it('validates options on the main thread and rejects after dispose', async () => {
    const { m3 } = await client();
    await expect(m3.embed(['x'], { layers: 99 })).rejects.toThrow(/option "layers" is out of range; expected an integer in 1\.\.4/);
    await expect(m3.embed([])).rejects.toThrow(/non-empty/);
    m3.dispose();
    await expect(m3.embed(['x'])).rejects.toMatchObject({ name: 'ClientDisposedError' });
  });

  it('re-plans when measured latency drifts far from the cost model', async () => {
    // Calibration says ~1 ms a call; the fake takes 25 ms: after 5 batches the model is scaled and re-planned.
    const { m3, progress } = await client({}, 25);
    expect(m3.cost.source).toBe('measured');
    for (let i = 0; i < 6; i++) await m3.embed([`q ${i}`]);
    const replan = progress.find((p) => p.phase === 'replan');
    expect(replan).toBeDefined();
    expect((replan as { reason: string }).reason).toMatch(/measured latency .*× the model/);
    expect(m3.cost.source).toBe('drift-adjusted');
    expect(m3.stats.replans).toBe(1);
    m3.dispose();
  });

  it('re-plans and re-calibrates when a restart lands on another device (GPU → CPU)', async () => {
    const w = fakeWorkers(3, [true, false]);
    const progress: ClientProgress[] = [];
    const m3 = await M3Client.create({ model: 'fake://m', cache: memoryCache(), workerFactory: w.factory, heartbeat: { intervalMs: 20, timeoutMs: 200 }, onProgress: (p) => progress.push(p) });
    expect(m3.plan.backend).toBe('webgpu');
    const p = m3.embed(texts(1));
    w.spawned[0].worker.terminate();
    expectVectors(await p, texts(1));
    expect(m3.plan.backend).toBe('cpu-ref');
    expect(progress.filter((x) => x.phase === 'replan').map((x) => (x as { reason: string }).reason)).toEqual(['device changed']);
    expect(w.spawned[1].service.calibrationRuns).toBeGreaterThan(0); // a new device gets its own calibration
    m3.dispose();
  });

  it('an impossible budget fails create() with a BudgetError naming the cheapest plan', async () => {
    await expect(client({ budget: { latencyMs: 1e-9 } })).rejects.toMatchObject({ name: 'BudgetError', cheapest: { layers: 1 } });
  });
});
