// Issue #10's soak: 500 calls of random lengths and options in waves of 12, ~10% aborted at random
// times, 3 model reloads and 2 worker kills interleaved, on WebGPU (SwiftShader). Every call either
// resolves with the CPU reference's vectors (cos ≥ 0.9999) or rejects with a typed error (an abort or a
// crash the client gave up on); none hangs; the worker's GPU memory is steady afterwards, and its JS heap
// (performance.measureUserAgentSpecificMemory, which counts dedicated workers) is back at its starting level.
import { expect, test } from '@playwright/test';
import { chromiumWebGpuLaunchOptions, E2E_BASE_URL } from './chromium.ts';
import { loadModel } from '../src/model/load.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { soakCalls } from './pages/soak-plan.ts';
import type { SoakReport } from './pages/soak.ts';

const MODEL = 'm3bert-tiny';
const TYPED = new Set(['AbortError', 'WorkerCrashedError', 'EngineReplacedError', 'EngineDestroyedError']);
/** Heap tolerance: the end may exceed the start by 10% plus 1 MiB (GC timing, lazily compiled code and caches). */
const HEAP_SLACK = (start: number) => start * 0.1 + 2 ** 20;

// Measure memory now (with a full GC), not at the next GC within 20 s: Chromium's switch for measureUserAgentSpecificMemory.
test.use({ launchOptions: { ...chromiumWebGpuLaunchOptions, args: [...(chromiumWebGpuLaunchOptions.args ?? []), '--enable-blink-features=ForceEagerMeasureMemory'] } });

test('soak: 500 calls with aborts, reloads and worker kills: each resolves correctly or rejects typed; memory steady', async ({ page }) => {
  test.setTimeout(900_000);
  await page.goto('/e2e/pages/soak.html');
  await page.waitForFunction(() => window.__soak !== undefined);
  const report: SoakReport = await page.evaluate((m) => window.__soak!(m), MODEL);
  const calls = soakCalls();
  expect(report.outcomes.map((o) => o.index)).toEqual(calls.map((c) => c.index));

  const ref = new ReferenceEncoder(await loadModel(`${E2E_BASE_URL}/models/${MODEL}/`));
  let resolved = 0,
    aborted = 0,
    worstCos = 1;
  const rejected: Record<string, number> = {};
  for (const o of report.outcomes) {
    const c = calls[o.index];
    if (!o.ok) {
      expect(TYPED.has(o.error!.name), `call ${o.index}: ${o.error!.name}: ${o.error!.message}`).toBe(true);
      if (o.error!.name !== 'AbortError') expect(c.abortAfterMs, `call ${o.index} was not aborted but got ${o.error!.name}`).toBeUndefined();
      rejected[o.error!.name] = (rejected[o.error!.name] ?? 0) + 1;
      if (o.error!.name === 'AbortError') aborted++;
      continue;
    }
    resolved++;
    const want = ref.embed(c.texts, { layers: c.layers, dims: c.dims }).embeddings;
    expect(o.values).toHaveLength(want.length);
    for (let t = 0; t < c.texts.length; t++) {
      let dot = 0,
        na = 0,
        nb = 0;
      for (let j = 0; j < c.dims; j++) {
        const x = o.values![t * c.dims + j],
          y = want[t * c.dims + j];
        dot += x * y;
        na += x * x;
        nb += y * y;
      }
      const cos = dot / Math.sqrt(na * nb);
      worstCos = Math.min(worstCos, cos);
      expect(cos, `call ${o.index} text ${t}`).toBeGreaterThanOrEqual(0.9999);
    }
  }
  const aborts = calls.filter((c) => c.abortAfterMs !== undefined).length;
  console.log(
    `[soak] ${resolved} resolved (worst cos ${worstCos.toFixed(7)}), rejected ${JSON.stringify(rejected)} (${aborts} calls had an abort timer); restarts ${report.restarts}; ${(report.wallMs / 1000).toFixed(1)} s; GPU ${JSON.stringify(report.memoryAfter)} → ${JSON.stringify(report.memoryAgain)}; worker heap start ${mib(report.heapStart.bytes)} → after ${mib(report.heapAfter.bytes)} → again ${mib(report.heapAgain.bytes)} MiB (workers ${report.heapStart.workers} → ${report.heapAgain.workers})`,
  );
  expect(resolved + Object.values(rejected).reduce((s, n) => s + n, 0)).toBe(500);
  expect(resolved).toBeGreaterThan(400);
  expect(aborted).toBeLessThanOrEqual(aborts);
  expect(report.restarts).toBeGreaterThanOrEqual(2); // the two kills were noticed and survived
  // No growth in steady state: the same workload twice on one worker allocates nothing new.
  expect(report.memoryAgain!.gpuBuffers).toBe(report.memoryAfter!.gpuBuffers);
  expect(report.memoryAgain!.gpuBytes).toBe(report.memoryAfter!.gpuBytes);
  // The JS heap: one worker alive at each point (the killed ones are gone), and the last worker, after the soak, holds
  // no more than the first did after the same steady workload, nor grows when that workload runs again.
  expect([report.heapStart.workers, report.heapAfter.workers, report.heapAgain.workers]).toEqual([1, 1, 1]);
  expect(report.heapAgain.bytes).toBeLessThanOrEqual(report.heapStart.bytes + HEAP_SLACK(report.heapStart.bytes));
  expect(report.heapAgain.bytes).toBeLessThanOrEqual(report.heapAfter.bytes + HEAP_SLACK(report.heapAfter.bytes));
});

const mib = (b: number) => (b / 2 ** 20).toFixed(2);
