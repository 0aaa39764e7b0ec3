// Drives the soak scenario from e2e/soak.spec.ts: many concurrent calls with random lengths and aborts,
// model reloads and worker kills interleaved. Returns every outcome as plain JSON, with the worker's GPU memory
// (the client's memory()) and its JS heap (performance.measureUserAgentSpecificMemory: the page is cross-origin
// isolated, and the spec launches Chromium with eager measurement) at the start and twice at the end.
import { M3Client } from '../../src/client/client.ts';
import { KILL_AT, RELOAD_AT, soakCalls, type SoakCall } from './soak-plan.ts';

export interface SoakOutcome {
  index: number;
  ok: boolean;
  values?: number[];
  error?: { name: string; message: string };
  ms: number;
}

/** JS heap of the page's dedicated workers, from one measureUserAgentSpecificMemory() (it measures during a full GC). */
export interface WorkerHeap {
  bytes: number;
  /** Dedicated workers alive: terminated ones must not linger. */
  workers: number;
}

export interface SoakReport {
  outcomes: SoakOutcome[];
  /** After the first worker ran the steady workload once, before the soak. */
  heapStart: WorkerHeap;
  heapAfter: WorkerHeap;
  heapAgain: WorkerHeap;
  memoryAfter: Awaited<ReturnType<M3Client['memory']>>;
  memoryAgain: Awaited<ReturnType<M3Client['memory']>>;
  restarts: number;
  wallMs: number;
}

interface MemoryBreakdown {
  bytes: number;
  attribution: { scope?: string; url?: string }[];
  types: string[];
}

async function workerHeap(): Promise<WorkerHeap> {
  const measure = (performance as unknown as { measureUserAgentSpecificMemory(): Promise<{ breakdown: MemoryBreakdown[] }> }).measureUserAgentSpecificMemory;
  if (!crossOriginIsolated || !measure) throw new Error('measureUserAgentSpecificMemory needs a cross-origin isolated page');
  const { breakdown } = await measure.call(performance);
  let bytes = 0;
  let workers = 0;
  for (const b of breakdown) {
    const n = b.attribution.filter((a) => a.scope === 'DedicatedWorkerGlobalScope').length;
    if (n) bytes += b.bytes;
    workers += n;
  }
  return { bytes, workers };
}

async function run(m3: M3Client, c: SoakCall): Promise<SoakOutcome> {
  const t0 = performance.now();
  const ctl = new AbortController();
  if (c.abortAfterMs !== undefined) setTimeout(() => ctl.abort(new Error('soak abort')), c.abortAfterMs);
  try {
    const r = await m3.embed(c.texts, { layers: c.layers, dims: c.dims, signal: ctl.signal });
    return { index: c.index, ok: true, values: [...r.embeddings], ms: performance.now() - t0 };
  } catch (e) {
    return { index: c.index, ok: false, error: { name: (e as Error).name, message: (e as Error).message }, ms: performance.now() - t0 };
  }
}

/** Issues calls in waves of `concurrency`, with the reloads and kills at their call indices. */
async function soak(model: string, concurrency = 12): Promise<SoakReport> {
  const t0 = performance.now();
  const m3 = await M3Client.create({ model: new URL(`/models/${model}/`, location.href).href, backend: 'webgpu', calibration: 'skip', heartbeat: { intervalMs: 200, timeoutMs: 4000 }, maxRestarts: 5 });
  const calls = soakCalls();
  // The steady workload: the last two waves' calls without aborts, run once before the soak and twice after it.
  const steady = calls.slice(-2 * concurrency).map((c) => ({ ...c, abortAfterMs: undefined }));
  const runSteady = async () => {
    for (let i = 0; i < steady.length; i += concurrency) await Promise.all(steady.slice(i, i + concurrency).map((c) => run(m3, c)));
  };
  await runSteady();
  const heapStart = await workerHeap();
  const outcomes: SoakOutcome[] = [];
  for (let i = 0; i < calls.length; i += concurrency) {
    const wave = calls.slice(i, i + concurrency).map((c) => run(m3, c));
    for (const c of calls.slice(i, i + concurrency)) {
      if (RELOAD_AT.includes(c.index)) void m3.setModel();
      if (KILL_AT.includes(c.index)) m3.debugTerminateWorker();
    }
    outcomes.push(...(await Promise.all(wave)));
  }
  // Steady state: the same workload twice on one worker must not grow its memory.
  await runSteady();
  const memoryAfter = await m3.memory();
  const heapAfter = await workerHeap();
  await runSteady();
  const memoryAgain = await m3.memory();
  const heapAgain = await workerHeap();
  const restarts = m3.stats.restarts;
  m3.dispose();
  return { outcomes, heapStart, heapAfter, heapAgain, memoryAfter, memoryAgain, restarts, wallMs: performance.now() - t0 };
}

declare global {
  interface Window {
    __soak?: typeof soak;
  }
}
window.__soak = soak;
document.getElementById('status')!.textContent = 'ready';
