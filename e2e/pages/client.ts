// Drives M3Client from Playwright (e2e/client*.spec.ts): scenarios return plain JSON.
import { M3Client, type M3ClientOptions } from '../../src/client/client.ts';
import type { Budget, Candidate, Plan } from '../../src/client/planner.ts';
import { textFor } from './client-texts.ts';

export interface Summary {
  plan: Plan;
  backend: string;
  dtype: string;
  stats: M3Client['stats'];
  cost: M3Client['cost'];
  frontier: Candidate[];
  candidates: Candidate[];
  adapter: M3Client['adapter'];
  workerCalibrationRuns: number;
  createMs: number;
}

export interface Outcome {
  ok: boolean;
  index: number;
  values?: number[];
  layers?: number;
  dims?: number;
  restarts?: number;
  error?: { name: string; message: string };
}

const url = (model: string) => new URL(`/models/${model}/`, location.href).href;
let current: M3Client | null = null;

async function summary(m: M3Client, createMs: number): Promise<Summary> {
  return {
    plan: m.plan,
    backend: m.info.backend,
    dtype: m.info.dtype,
    stats: { ...m.stats },
    cost: m.cost,
    frontier: m.frontier(),
    candidates: m.candidates(),
    adapter: m.adapter,
    workerCalibrationRuns: await m.debugWorkerCalibrationRuns(),
    createMs,
  };
}

function outcome(i: number, p: Promise<Awaited<ReturnType<M3Client['embed']>>>): Promise<Outcome> {
  return p.then(
    (r) => ({ ok: true, index: i, values: [...r.embeddings], layers: r.layers, dims: r.dims, restarts: r.restarts }),
    (e: Error) => ({ ok: false, index: i, error: { name: e.name, message: e.message } }),
  );
}

const api = {
  async create(model: string, opts: Partial<M3ClientOptions> = {}): Promise<Summary> {
    current?.dispose();
    const t0 = performance.now();
    current = await M3Client.create({ model: url(model), ...opts });
    return summary(current, performance.now() - t0);
  },
  async createError(model: string, budget: Budget): Promise<{ name: string; message: string; cheapest?: Candidate } | null> {
    try {
      (await M3Client.create({ model: url(model), budget })).dispose();
      return null;
    } catch (e) {
      return { name: (e as Error).name, message: (e as Error).message, cheapest: (e as { cheapest?: Candidate }).cheapest };
    }
  },
  planFor(budget: Budget): Plan | { error: string; message: string } {
    try {
      return current!.planFor(budget);
    } catch (e) {
      return { error: (e as Error).name, message: (e as Error).message };
    }
  },
  async embed(texts: string[], opts: { layers?: number; dims?: number } = {}): Promise<Outcome> {
    return outcome(0, current!.embed(texts, opts));
  },
  /** Every BGE-M3 output, as plain arrays: dense rows, sparse (id, weight) pairs, ColBERT vectors per text. */
  async embedAll(texts: string[]): Promise<{ dense: number[]; sparse: [number, number][][]; colbert: number[][]; backend: string } | { error: string }> {
    try {
      const r = await current!.embed(texts, { outputs: ['dense', 'sparse', 'colbert'] });
      return { dense: [...r.embeddings], sparse: r.sparse!.map((v) => [...v.ids].map((id, j) => [id, v.weights[j]] as [number, number])), colbert: r.colbert!.map((b) => [...b.data]), backend: current!.info.backend };
    } catch (e) {
      return { error: `${(e as Error).name}: ${(e as Error).message}` };
    }
  },
  /** n concurrent requests; `disrupt` fires once the first worker call is under way. */
  async storm(n: number, disrupt: 'terminate' | 'lose-device' | 'none', opts: { layers?: number; dims?: number } = {}): Promise<{ outcomes: Outcome[]; pendingAtDisruption: number; restarts: number; workerCalls: number; lost: boolean; ms: number }> {
    const m = current!;
    const t0 = performance.now();
    const ps = Array.from({ length: n }, (_, i) => outcome(i, m.embed([textFor(i), textFor(i + 100)], opts)));
    let pendingAtDisruption = m.pending;
    let lost = false;
    if (disrupt !== 'none') {
      while (m.stats.workerCalls < 1) await new Promise((r) => setTimeout(r, 1));
      pendingAtDisruption = m.pending;
      if (disrupt === 'terminate') m.debugTerminateWorker();
      else lost = await m.debugLoseDevice();
    }
    const outcomes = await Promise.all(ps);
    return { outcomes, pendingAtDisruption, restarts: m.stats.restarts, workerCalls: m.stats.workerCalls, lost, ms: performance.now() - t0 };
  },
  /** k concurrent calls; call `abortIndex` is aborted right after it is queued. */
  async abortOne(k: number, abortIndex: number): Promise<Outcome[]> {
    const m = current!;
    const ctrls = Array.from({ length: k }, () => new AbortController());
    const ps = ctrls.map((c, i) => outcome(i, m.embed([textFor(i), textFor(i + 1), textFor(i + 2), textFor(i + 3), textFor(i + 4), textFor(i + 5)], { signal: c.signal })));
    await new Promise((r) => setTimeout(r, 0));
    ctrls[abortIndex].abort(new Error('user cancelled'));
    return Promise.all(ps);
  },
  dispose(): void {
    current?.dispose();
    current = null;
  },
};

declare global {
  interface Window {
    __client?: typeof api;
    __clientTextFor?: typeof textFor;
  }
}
window.__client = api;
window.__clientTextFor = textFor;
document.getElementById('status')!.textContent = 'ready';
