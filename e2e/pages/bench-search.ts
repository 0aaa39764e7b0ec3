// Browser rows of the search benchmark (tools/bench/search-browser.ts drives them; plain-JSON results):
// - worker(): a binary+int8 index in the search worker (workers/search.worker.ts), queried from the page while
//   a requestAnimationFrame loop records the gaps between frames, so "without freezing the page" is measured.
// - keystroke(): what a search-as-you-type user feels: M3Client (the planner picks the backend) embeds one
//   short query, then a hybrid top-10 over an in-page index; embed and search times are kept apart.
import { M3Client } from '../../src/client/client.ts';
import { SearchWorker } from '../../src/search/search-worker.ts';
import { SemanticIndex } from '../../src/search/semantic-index.ts';
import { randomSparse, randomUnit, rng } from '../../src/search/testing.ts';

const BLOCK = 10_000;
const PROBES = ['cancer risk', 'gene expression in mice', 'vitamin d', 'blood pressure', 'stem cells', 'obesity', 'dna repair', 'insulin'];
const frame = () => new Promise<number>((r) => requestAnimationFrame(r));

/** Gaps (ms) between animation frames while `work` runs. */
async function framesDuring<T>(work: () => Promise<T>): Promise<{ result: T; gaps: number[] }> {
  const gaps: number[] = [];
  let on = true;
  let last = await frame();
  const loop = (t: number) => {
    gaps.push(t - last);
    last = t;
    if (on) requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  try {
    return { result: await work(), gaps };
  } finally {
    on = false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const api = {
  /** n × d synthetic unit vectors (seeded as tools/bench/search.ts) in the search worker; `runs` dense top-10 queries after 3 warm-up. */
  async worker(n: number, d: number, runs: number): Promise<{ buildMs: number; wall: number[]; inWorker: number[]; idleGaps: number[]; busyGaps: number[]; count: number }> {
    const sw = SearchWorker.start();
    try {
      await sw.create({ dims: d, storage: 'binary+int8', chunkSize: BLOCK });
      const t0 = performance.now();
      let count = 0;
      for (let a = 0; a < n; a += BLOCK) {
        const m = Math.min(BLOCK, n - a);
        const v = randomUnit(m, d, 1000 + a / BLOCK);
        count = (await sw.add(Array.from({ length: m }, (_, i) => ({ id: `s${a + i}`, dense: v.subarray(i * d, (i + 1) * d) })))).count;
      }
      const buildMs = performance.now() - t0;
      const queries = randomUnit(64, d, 4242);
      const q = (j: number) => queries.slice((j % 64) * d, ((j % 64) + 1) * d);
      const idle = await framesDuring(() => sleep(1000));
      const wall: number[] = [];
      const inWorker: number[] = [];
      const busy = await framesDuring(async () => {
        for (let j = 0; j < runs + 3; j++) {
          const t1 = performance.now();
          const r = await sw.search({ dense: q(j) }, { k: 10 });
          if (j < 3) continue;
          wall.push(performance.now() - t1);
          inWorker.push(r.ms);
        }
      });
      return { buildMs, wall, inWorker, idleGaps: idle.gaps, busyGaps: busy.gaps, count };
    } finally {
      sw.terminate();
    }
  },

  /** Keystroke to results over an n-document in-page index of the model's width (binary+int8, dense + sparse). */
  async keystroke(model: string, n: number, runs: number): Promise<{ backend: string; plan: string; loadMs: number; dims: number; total: number[]; embed: number[]; search: number[] }> {
    const t0 = performance.now();
    const client = await M3Client.create({ model: new URL(model, location.href).href });
    try {
      const loadMs = performance.now() - t0;
      const probe = await client.embed(['probe'], { outputs: ['dense', 'sparse'] });
      const d = probe.dims;
      const idx = await SemanticIndex.create({ dims: d, storage: 'binary+int8', outputs: ['dense', 'sparse'], chunkSize: BLOCK });
      const r = rng(1);
      for (let a = 0; a < n; a += BLOCK) {
        const m = Math.min(BLOCK, n - a);
        const v = randomUnit(m, d, a);
        await idx.add(Array.from({ length: m }, (_, i) => ({ id: `k${a + i}`, dense: v.subarray(i * d, (i + 1) * d), sparse: randomSparse(r, 8000, 30) })));
      }
      const total: number[] = [];
      const embed: number[] = [];
      const search: number[] = [];
      for (let j = 0; j < runs + 2; j++) {
        const t1 = performance.now();
        const e = await client.embed([PROBES[j % PROBES.length]], { outputs: ['dense', 'sparse'] });
        const t2 = performance.now();
        await idx.search({ dense: e.embeddings.subarray(0, e.dims), sparse: e.sparse![0] }, { k: 10, mode: 'hybrid' });
        const t3 = performance.now();
        if (j < 2) continue;
        total.push(t3 - t1);
        embed.push(t2 - t1);
        search.push(t3 - t2);
      }
      const p = client.plan;
      return { backend: p.backend, plan: `${p.backend} ${p.dtype}, ${p.layers} layers, ${p.dims} dims${p.backendReason ? ` (${p.backendReason})` : ''}`, loadMs, dims: d, total, embed, search };
    } finally {
      client.dispose();
    }
  },
};

export type SearchBenchPage = typeof api;
declare global {
  interface Window {
    __searchBench?: SearchBenchPage;
  }
}
window.__searchBench = api;
document.getElementById('status')!.textContent = 'ready';
