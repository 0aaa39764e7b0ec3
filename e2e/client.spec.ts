// M3Client in real Chromium WebGPU (SwiftShader): planning on a calibrated device, recovery from a
// killed worker and a destroyed GPU device, per-call abort, and the calibration cache across visits.
import { expect, test, type Page } from '@playwright/test';
import { loadModel } from '../src/model/load.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { E2E_BASE_URL } from './chromium.ts';
import { textFor } from './pages/client-texts.ts';
import type { Outcome, Summary } from './pages/client.ts';

const MODEL = 'm3bert-tiny'; // mrl_layers [1,2,3] × mrl_dims [8,16,40]
const FAST = { calibration: 'skip' as const, heartbeat: { intervalMs: 100, timeoutMs: 3000 } };

async function open(page: Page): Promise<void> {
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto('/e2e/pages/client.html');
  await page.waitForFunction(() => window.__client !== undefined);
}

/**
 * create() once more if vite's dependency optimiser reloaded the page under it (a cold dev server
 * discovers the worker's dependencies late and reloads the page once).
 */
async function create(page: Page, opts: object = {}): Promise<Summary> {
  for (let attempt = 0; ; attempt++) {
    try {
      // These scenarios are about WebGPU (device loss, timestamp calibration): pin it, since 'auto' on
      // SwiftShader would calibrate the CPU backend too and may keep that (client-nogpu.spec.ts covers it).
      return await page.evaluate((o) => window.__client!.create(o.m, o.opts), { m: MODEL, opts: { backend: 'webgpu' as const, ...opts } });
    } catch (e) {
      if (attempt > 0 || !/Execution context was destroyed/.test(String(e))) throw e;
      await page.waitForFunction(() => window.__client !== undefined);
    }
  }
}

let ref: ReferenceEncoder | null = null;
async function reference(texts: string[], layers: number, dims: number): Promise<Float32Array> {
  ref ??= new ReferenceEncoder(await loadModel(`${E2E_BASE_URL}/models/${MODEL}/`));
  return ref.embed(texts, { layers, dims }).embeddings;
}

/** Every request resolved once, with the reference's numbers (f32 threshold max |Δ| ≤ 1e-4). */
async function expectAllCorrect(outcomes: Outcome[], n: number, layers: number, dims: number): Promise<void> {
  expect(outcomes.map((o) => o.index)).toEqual(Array.from({ length: n }, (_, i) => i));
  for (const o of outcomes) {
    expect(o.error).toBeUndefined();
    expect(o.ok).toBe(true);
    const want = await reference([textFor(o.index), textFor(o.index + 100)], layers, dims);
    expect(o.values).toHaveLength(2 * dims);
    let max = 0;
    o.values!.forEach((v, i) => (max = Math.max(max, Math.abs(v - want[i]))));
    expect(max, `request ${o.index}`).toBeLessThanOrEqual(1e-4);
  }
}

test('plans per device: calibrated cost model, monotone budgets, Pareto frontier, BudgetError', async ({ page }) => {
  await open(page);
  const s = await create(page);
  console.log(
    `[client] create ${s.createMs.toFixed(0)} ms; backend ${s.backend}/${s.dtype}; cost a=${s.cost.a.toFixed(3)} b=${s.cost.b.toExponential(2)} c=${s.cost.c.toExponential(2)} (${s.cost.timer}, gpu share ${s.cost.gpuFraction?.toFixed(2)}); plan ${s.plan.layers}×${s.plan.dims}; calibration runs ${s.stats.calibrationRuns}`,
  );
  expect(s.backend).toBe('webgpu');
  expect(s.adapter!.ok).toBe(true);
  expect(s.stats.calibration).toBe('measured');
  expect(s.cost.source).toBe('measured');
  expect(s.cost.timer).toBe('wall+timestamp-query'); // SwiftShader exposes timestamp-query
  expect(s.workerCalibrationRuns).toBeGreaterThan(0);
  // No budget: the full model.
  expect([s.plan.layers, s.plan.dims]).toEqual([3, 40]);
  expect(s.plan.qualitySource).toBe('trained-grid');
  expect(s.frontier.length).toBeGreaterThan(0);

  // Tighter latency budgets → no more layers and no more dims, monotonically, ending below the full model.
  const lat = [...new Set(s.candidates.map((c) => c.latencyMs))].sort((a, b) => b - a);
  let prev = { layers: 99, dims: 9999 };
  const seen: string[] = [];
  for (const l of lat) {
    const p = (await page.evaluate((b) => window.__client!.planFor(b), { latencyMs: l })) as { layers: number; dims: number };
    expect(p.layers).toBeLessThanOrEqual(prev.layers);
    expect(p.dims).toBeLessThanOrEqual(prev.dims);
    seen.push(`${p.layers}×${p.dims}`);
    prev = p;
  }
  expect(prev.layers).toBe(1);
  // Memory with an index: dims shrink too.
  const mem = [...new Set(s.candidates.map((c) => c.memoryMB))];
  const withCorpus = await page.evaluate(() => window.__client!.planFor({ corpusSize: 200_000, memoryMB: 20 }));
  console.log(`[client] latency ladder ${seen.join(' → ')}; corpus-limited plan ${JSON.stringify(withCorpus)}; memory span ${Math.min(...mem).toFixed(2)}..${Math.max(...mem).toFixed(2)} MB`);
  expect((withCorpus as { dims: number }).dims).toBeLessThan(40);

  // A budget nothing meets: typed error naming the cheapest plan.
  const bad = await page.evaluate(() => window.__client!.planFor({ latencyMs: 1e-6 }));
  expect(bad).toMatchObject({ error: 'BudgetError' });
  expect((bad as { message: string }).message).toMatch(/cheapest plan is layers=1 dims=40/);
  const badCreate = await page.evaluate((m) => window.__client!.createError(m, { latencyMs: 1e-6 }), MODEL);
  expect(badCreate!.name).toBe('BudgetError');
  expect(badCreate!.cheapest!.layers).toBe(1);

  // embed() without layers/dims uses the plan.
  const r = await page.evaluate(() => window.__client!.embed(['planned']));
  expect([r.layers, r.dims]).toEqual([3, 40]);
});

test('second visit uses the cached calibration (no calibration dispatches)', async ({ page }) => {
  await open(page);
  const first = await create(page);
  expect(first.stats.calibration).toBe('measured');
  await page.evaluate(() => window.__client!.dispose());
  await page.reload();
  await page.waitForFunction(() => window.__client !== undefined);
  const second = await create(page);
  console.log(`[client] create: first ${first.createMs.toFixed(0)} ms (${first.stats.calibrationRuns} calibration embeds), second ${second.createMs.toFixed(0)} ms (cache)`);
  expect(second.stats.calibration).toBe('cache');
  expect(second.stats.calibrationRuns).toBe(0);
  expect(second.workerCalibrationRuns).toBe(0);
  expect(second.cost.source).toBe('cache');
  expect(second.cost.a).toBe(first.cost.a);
  expect(second.plan.layers).toBe(first.plan.layers);
});

test('worker terminated with 20 requests in flight: all 20 resolve once, correctly', async ({ page }) => {
  await open(page);
  await create(page, FAST);
  const r = await page.evaluate(() => window.__client!.storm(20, 'terminate', { layers: 2, dims: 16 }));
  console.log(`[client] terminate: ${r.pendingAtDisruption} pending at kill, ${r.restarts} restart(s), ${r.workerCalls} worker calls, ${r.ms.toFixed(0)} ms`);
  expect(r.pendingAtDisruption).toBeGreaterThanOrEqual(15);
  expect(r.restarts).toBeGreaterThanOrEqual(1); // 1 unless a loaded machine made a ping time out too
  await expectAllCorrect(r.outcomes, 20, 2, 16);
  expect(r.outcomes.some((o) => o.restarts! > 0)).toBe(true);
  // The client keeps working afterwards.
  const after = await page.evaluate(() => window.__client!.storm(3, 'none', { layers: 2, dims: 16 }));
  await expectAllCorrect(after.outcomes, 3, 2, 16);
});

test('GPU device destroyed mid-batch: all 20 resolve once, correctly', async ({ page }) => {
  await open(page);
  await create(page, FAST);
  const r = await page.evaluate(() => window.__client!.storm(20, 'lose-device', { layers: 3, dims: 8 }));
  console.log(`[client] device.destroy(): lost=${r.lost}, ${r.pendingAtDisruption} pending, ${r.restarts} restart(s), ${r.workerCalls} worker calls, ${r.ms.toFixed(0)} ms`);
  expect(r.lost).toBe(true);
  expect(r.pendingAtDisruption).toBeGreaterThanOrEqual(15);
  expect(r.restarts).toBeGreaterThanOrEqual(1);
  await expectAllCorrect(r.outcomes, 20, 3, 8);
});

test('aborting one of several concurrent calls rejects only that call', async ({ page }) => {
  await open(page);
  await create(page, { ...FAST, chunkTexts: 2 });
  const out = await page.evaluate(() => window.__client!.abortOne(4, 2));
  expect(out.map((o) => o.ok)).toEqual([true, true, false, true]);
  expect(out[2].error!.name).toBe('AbortError');
  expect(out[2].error!.message).toMatch(/aborted.*user cancelled/);
  for (const o of out.filter((x) => x.ok)) expect(o.values).toHaveLength(6 * 40);
});
