// Drives the soak scenario from e2e/soak.spec.ts: many concurrent calls with random lengths and aborts,
// model reloads and worker kills interleaved. Returns every outcome as plain JSON.
import { M3Client } from '../../src/client/client.ts';
import { KILL_AT, RELOAD_AT, soakCalls, type SoakCall } from './soak-plan.ts';

export interface SoakOutcome {
  index: number;
  ok: boolean;
  values?: number[];
  error?: { name: string; message: string };
  ms: number;
}

export interface SoakReport {
  outcomes: SoakOutcome[];
  memoryAfter: Awaited<ReturnType<M3Client['memory']>>;
  memoryAgain: Awaited<ReturnType<M3Client['memory']>>;
  restarts: number;
  wallMs: number;
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
  const outcomes: SoakOutcome[] = [];
  for (let i = 0; i < calls.length; i += concurrency) {
    const wave = calls.slice(i, i + concurrency).map((c) => run(m3, c));
    for (const c of calls.slice(i, i + concurrency)) {
      if (RELOAD_AT.includes(c.index)) void m3.setModel();
      if (KILL_AT.includes(c.index)) m3.debugTerminateWorker();
    }
    outcomes.push(...(await Promise.all(wave)));
  }
  // Steady state: the same last waves again on the same worker must not grow its memory.
  const last = calls.slice(-48);
  for (let i = 0; i < last.length; i += concurrency) await Promise.all(last.slice(i, i + concurrency).map((c) => run(m3, { ...c, abortAfterMs: undefined })));
  const memoryAfter = await m3.memory();
  for (let i = 0; i < last.length; i += concurrency) await Promise.all(last.slice(i, i + concurrency).map((c) => run(m3, { ...c, abortAfterMs: undefined })));
  const memoryAgain = await m3.memory();
  const restarts = m3.stats.restarts;
  m3.dispose();
  return { outcomes, memoryAfter, memoryAgain, restarts, wallMs: performance.now() - t0 };
}

declare global {
  interface Window {
    __soak?: typeof soak;
  }
}
window.__soak = soak;
document.getElementById('status')!.textContent = 'ready';
