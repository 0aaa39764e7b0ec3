// M3Client plans over weight dtypes (issue #18) on the REAL worker service (EmbedService on Node WebGPU,
// across a MessageChannel): a memory budget that holds the full model only in int8 loads int8 (quantised
// in the worker, with progress); a tighter one reloads as q4 without losing the call in flight; lifting
// the budget goes back to f32; `weights` pins the dtype. Every vector equals the service's own in that dtype.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryCache } from '../src/client/cache.ts';
import { M3Client, type ClientProgress } from '../src/client/client.ts';
import type { Candidate } from '../src/client/planner.ts';
import { EmbedService } from '../src/engine/service.ts';
import { modelDir } from '../tools/fixtures/paths.ts';
import { quantizeFolder } from '../tools/quantize.ts';
import { maxAbs } from '../tools/parity/goldens.ts';
import { portWorker } from './helpers/port-worker.ts';
import { fixtureServerAndGpu } from './helpers/fixture-env.ts';
import { startModelServer } from './helpers/model-server.ts';

const env = fixtureServerAndGpu();

const TEXTS = ['The quick brown fox.', 'Быстрая коричневая лиса прыгает', 'a', 'green tea and black coffee ', 'zebra'];
const MODEL = 'm3bert-tiny'; // 3 blocks, hidden 40, f32 checkpoint
// m3bert-tiny's matmul weights (3 blocks × q, k, v, o, gate, up, down) and its word table: what int8 / q4 quantise.
const QUANTISED_WEIGHTS = 3 * 7 + 1;

async function clientFor(extra: object = {}) {
  const progress: ClientProgress[] = [];
  const m3 = await M3Client.create({
    model: env.server.folderUrl(MODEL),
    cache: memoryCache(),
    calibration: 'skip',
    backend: 'webgpu',
    chunkTexts: 2,
    maxBatchTexts: 3,
    workerFactory: () => portWorker(new EmbedService({ gpu: env.gpu.gpu })).worker,
    onProgress: (p) => progress.push(p),
    ...extra,
  });
  return { m3, progress };
}

/** The service's own vectors for this model in `weights`, at full depth. */
async function direct(weights: 'f32' | 'int8' | 'q4', layers = 3): Promise<Float32Array> {
  const svc = new EmbedService({ gpu: env.gpu.gpu });
  const info = await svc.load(env.server.folderUrl(MODEL), { backend: 'webgpu', weights });
  expect(info.dtype).toBe(weights);
  return (await svc.embed(TEXTS, { layers })).embeddings;
}

const memAt = (cands: Candidate[], dtype: string, layers: number) => cands.find((c) => c.dtype === dtype && c.layers === layers && c.dims === 40)!.memoryMB;
const quantizeReports = (ps: ClientProgress[]) => ps.filter((p): p is Extract<ClientProgress, { phase: 'quantize' }> => p.phase === 'quantize');

describe('M3Client chooses the weight dtype for a memory budget', () => {
  it('int8 when only int8 / q4 hold all blocks; a tighter budget reloads as q4 (the call in flight survives); no budget returns to f32', async () => {
    const ref = await clientFor();
    // No budget: the model's own dtype (f32), every dtype offered to the frontier.
    expect(ref.m3.plan.dtype).toBe('f32');
    expect(ref.m3.info.dtype).toBe('f32');
    expect(ref.m3.shape.dtypes).toEqual(['f32', 'f16', 'int8', 'q4']);
    expect(quantizeReports(ref.progress)).toHaveLength(0);
    const cands = ref.m3.candidates({});
    ref.m3.dispose();
    const [f32, f16, int8, q4] = ['f32', 'f16', 'int8', 'q4'].map((d) => memAt(cands, d, 3));
    expect(f32).toBeGreaterThan(f16);
    expect(f16).toBeGreaterThan(int8);
    expect(int8).toBeGreaterThan(q4);

    // Between int8 and f16 at full depth: f32 / f16 would drop blocks, int8 keeps all three (quality 0.99 of f32).
    const { m3, progress } = await clientFor({ budget: { memoryMB: (int8 + f16) / 2 } });
    expect(m3.plan.dtype).toBe('int8');
    expect([m3.plan.layers, m3.plan.dims]).toEqual([3, 40]);
    expect(m3.plan.memoryMB).toBeCloseTo(int8, 9);
    expect(m3.plan.dtypeReason).toMatch(/^int8: the memory budget \(.* MB\) holds 3×40 in int8 \(.* MB\), not in f32 \(.* MB\)$/);
    expect(m3.info.dtype).toBe('int8');
    expect(m3.info.maxLayers).toBe(3);
    // The first load already quantised (planned from config.json): one report per weight, in order, before 'ready'.
    const q1 = quantizeReports(progress);
    expect(q1.map((p) => p.done)).toEqual(Array.from({ length: QUANTISED_WEIGHTS }, (_, i) => i + 1));
    expect(new Set(q1.map((p) => p.total))).toEqual(new Set([QUANTISED_WEIGHTS]));
    expect(q1.every((p) => !p.prequantized)).toBe(true);
    expect(progress.findIndex((p) => p.phase === 'quantize')).toBeLessThan(progress.findIndex((p) => p.phase === 'ready'));
    expect(progress.filter((p) => p.phase === 'ready')).toHaveLength(1); // no second load
    const a = await m3.embed(TEXTS);
    expect(a.dtype).toBe('int8');
    expect(a.layers).toBe(3);
    const wantInt8 = await direct('int8');
    expect(maxAbs(a.embeddings, wantInt8)).toBeLessThanOrEqual(1e-6);

    // Tighter: only q4 holds all blocks. The call made just before setBudget comes back whole, in one dtype.
    progress.length = 0;
    const inFlight = m3.embed(TEXTS);
    const reloaded = new Promise<ClientProgress>((res) =>
      m3.addEventListener('progress', (e) => (e as CustomEvent<ClientProgress>).detail.phase === 'replan' && /weights loaded/.test((e as CustomEvent<{ reason: string }>).detail.reason) && res((e as CustomEvent<ClientProgress>).detail)),
    );
    const plan = m3.setBudget({ memoryMB: (q4 + int8) / 2 });
    expect(plan.dtype).toBe('q4');
    expect([plan.layers, plan.dims]).toEqual([3, 40]);
    expect((await reloaded) as { reason: string }).toMatchObject({ reason: 'weights loaded as q4' });
    // Its first slice was running on int8 (done there, or caught by the swap); the rest waited for q4, so
    // every slice ends up run on q4 (a call's rows come from one engine: scheduler.ts reruns the int8 one).
    const b = await inFlight;
    const wantQ4 = await direct('q4');
    expect(b.dtype).toBe('q4');
    expect(b.batches).toBeGreaterThanOrEqual(2);
    expect(maxAbs(b.embeddings, wantQ4)).toBeLessThanOrEqual(1e-6);
    expect(m3.info.dtype).toBe('q4');
    expect(m3.plan.dtype).toBe('q4');
    const q2 = quantizeReports(progress);
    expect(q2.map((p) => p.done)).toEqual(Array.from({ length: QUANTISED_WEIGHTS }, (_, i) => i + 1));
    expect(progress.map((p) => p.phase)).toContain('loaded');
    const c = await m3.embed(TEXTS);
    expect(c.dtype).toBe('q4');
    expect(maxAbs(c.embeddings, wantQ4)).toBeLessThanOrEqual(1e-6);

    // No budget: back to f32 (the most precise dtype; the first load was int8, so the checkpoint's own is not known).
    const back = new Promise<void>((res) => m3.addEventListener('progress', (e) => /weights loaded as f32/.test((e as CustomEvent<{ reason?: string }>).detail.reason ?? '') && res()));
    expect(m3.setBudget({}).dtype).toBe('f32');
    await back;
    const d = await m3.embed(TEXTS);
    expect(d.dtype).toBe('f32');
    expect(maxAbs(d.embeddings, await direct('f32'))).toBeLessThanOrEqual(1e-6);

    // Two budget changes in a row: the reload asks the budget in force when its turn comes (f32, loaded): none runs.
    progress.length = 0;
    expect(m3.setBudget({ memoryMB: (q4 + int8) / 2 }).dtype).toBe('q4');
    expect(m3.setBudget({}).dtype).toBe('f32');
    const e = await m3.embed(TEXTS); // calls wait for the reload chain
    expect([e.dtype, m3.info.dtype, m3.plan.dtype]).toEqual(['f32', 'f32', 'f32']);
    expect(quantizeReports(progress)).toHaveLength(0);
    expect(progress.filter((p) => p.phase === 'loaded')).toHaveLength(0);
    expect(m3.stats.restarts).toBe(0);
    m3.dispose();
  });

  it('weights pins the dtype: q4 without a budget; f32 under the int8 budget drops blocks instead', async () => {
    const pinned = await clientFor({ weights: 'q4' });
    expect(pinned.m3.shape.dtypes).toEqual(['q4']);
    expect(pinned.m3.plan.dtype).toBe('q4');
    expect(pinned.m3.plan.dtypeReason).toBe("q4: asked for with weights: 'q4'");
    expect(new Set(pinned.m3.candidates({}).map((c) => c.dtype))).toEqual(new Set(['q4']));
    expect(quantizeReports(pinned.progress)).toHaveLength(QUANTISED_WEIGHTS);
    const r = await pinned.m3.embed(TEXTS);
    expect(r.dtype).toBe('q4');
    expect(maxAbs(r.embeddings, await direct('q4'))).toBeLessThanOrEqual(1e-6);
    pinned.m3.dispose();

    // Between the 2- and 3-block f32 figures: unpinned, another dtype would hold all three blocks.
    const ref = await clientFor();
    const all = ref.m3.candidates({});
    const budget = { memoryMB: (memAt(all, 'f32', 2) + memAt(all, 'f32', 3)) / 2 };
    expect(ref.m3.planFor(budget)).toMatchObject({ layers: 3, dims: 40 });
    expect(ref.m3.planFor(budget).dtype).not.toBe('f32');
    ref.m3.dispose();
    const f32 = await clientFor({ weights: 'f32', budget });
    expect(f32.m3.plan.dtype).toBe('f32');
    expect(f32.m3.plan.dtypeReason).toBe("f32: asked for with weights: 'f32'");
    expect(f32.m3.info.dtype).toBe('f32');
    expect(f32.m3.plan.layers).toBe(2);
    expect(f32.m3.info.maxLayers).toBe(2);
    expect(f32.m3.plan.memoryMB).toBeLessThanOrEqual(budget.memoryMB);
    expect(quantizeReports(f32.progress)).toHaveLength(0);
    // A budget change never reloads a pinned dtype.
    expect(f32.m3.setBudget({}).dtype).toBe('f32');
    f32.m3.dispose();
  });

  it('a pre-quantised folder is served in its own bits, read from config.json before the load (a budget that buys int8 of floats gets q4)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'm3web-client-dtype-'));
    const qserver = await startModelServer(root);
    try {
      await quantizeFolder(modelDir(MODEL), 4, join(root, MODEL));
      const ref = await clientFor();
      const cands = ref.m3.candidates({});
      ref.m3.dispose();
      // This budget would buy int8 of a float checkpoint; config.json's quantization_config (inspect()) says the
      // folder holds q4 codes, so the client plans on q4 before the load and loads the folder as it is.
      const budget = { memoryMB: (memAt(cands, 'int8', 3) + memAt(cands, 'f16', 3)) / 2 };
      const asked: unknown[] = [];
      const workerFactory = () => {
        const svc = new EmbedService({ gpu: env.gpu.gpu });
        const load = svc.load.bind(svc);
        svc.load = (model, opts, onProgress) => (asked.push(opts?.weights), load(model, opts, onProgress));
        return portWorker(svc).worker;
      };
      const { m3, progress } = await clientFor({ model: qserver.folderUrl(MODEL), budget, workerFactory });
      expect(asked).toEqual(['auto']);
      expect(m3.info.dtype).toBe('q4');
      expect(m3.shape.dtypes).toEqual(['q4']);
      expect(m3.plan.dtype).toBe('q4');
      expect(m3.plan.dtypeReason).toBe('q4: the model folder is pre-quantised (q4)');
      const q = quantizeReports(progress);
      expect(q.length).toBeGreaterThan(0);
      expect(q.every((p) => p.prequantized)).toBe(true);
      const r = await m3.embed(TEXTS);
      expect(r.dtype).toBe('q4');
      // The folder's codes are quantize()'s (tools/quantize.test.ts): the same vectors as quantising at load.
      expect(maxAbs(r.embeddings, await direct('q4'))).toBeLessThanOrEqual(1e-6);
      m3.dispose();
    } finally {
      await qserver.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
