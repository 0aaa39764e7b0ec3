/**
 * The "search" section of `npm run bench`, also runnable alone:
 *   npx tsx tools/bench/search.ts [--quick] [--1m] [--browser] [--json out.json]     (--1m / --browser: those rows in --quick too)
 *
 * - query_ms_p50 / _p95 [size][storage][dims]: one dense top-10 query on a synthetic index (seeded unit
 *   vectors), sizes 10k and 100k (--quick too) and 1m (binary+int8 only; full run). f32 and int8 are exact
 *   scans; binary+int8 is the funnel (Hamming first pass, int8 rescoring of 200 × k, the default).
 * - funnel_recall_at_10: recall@10 of the funnels against exact f32 on real text — SciFact abstracts
 *   (title + first words) and claims, embedded by public/models/m3-tiny when present, else the xlmr-tiny
 *   fixture (random weights) — and, for the 1024-d targets, on synthetic clustered vectors.
 * - build_vectors_per_s and bytes_per_doc per storage (100k × 256 and × 1024, precomputed vectors).
 * - load_ms: open a persisted 100k × 256 index (Node directory store) and import it from one file.
 * - browser (full run, or --browser): rows measured in headless Chromium (tools/bench/search-browser.ts):
 *   1m × 256 binary+int8 in the search worker with the page's frame gaps, and keystroke_to_results_ms (M3Client
 *   on its planner's backend embeds one short query, then a hybrid top-10 over a 100k in-page index).
 * - keystroke_node_ms: the same keystroke in Node + Dawn (the adapter createNodeGpu picks), kept in --quick.
 * Other timings run in this Node process on one core; Node's JIT and a page's are the same V8.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openDirStore } from '../../src/search/fs-store.ts';
import { SemanticIndex } from '../../src/search/semantic-index.ts';
import { near, overlap, randomSparse, randomUnit, rng } from '../../src/search/testing.ts';
import type { DenseStorage, FunnelOptions } from '../../src/search/types.ts';
import { DEFAULT_MULTIPLIER } from '../../src/search/query.ts';
import { REPO_ROOT } from '../fixtures/paths.ts';
import { docText, scifactAvailable, scifactCorpus } from './search-data.ts';
import type { SearchBrowserRows } from './search-browser.ts';

type Nested = Record<string, Record<string, Record<string, number>>>;
export interface SearchSection {
  query_ms_p50: Nested;
  query_ms_p95: Nested;
  /** CPU time per query (process.cpuUsage), same keys: on a shared machine the wall clock also counts others' work. */
  query_cpu_ms_p50: Nested;
  funnel_recall_at_10: Record<string, unknown>;
  build_vectors_per_s: Record<string, number>;
  bytes_per_doc: Record<string, Record<string, number>>;
  load_ms: Record<string, number>;
  /** Measured in Chromium (browser rows); null when they did not run. */
  keystroke_to_results_ms_p50: number | null;
  keystroke_to_results_ms_p95: number | null;
  keystroke_node_ms_p50: number | null;
  keystroke_node_ms_p95: number | null;
  browser: SearchBrowserRows | null;
  targets: { name: string; value: number | null; target: string; met: boolean | null }[];
  notes: string[];
}

const STORAGES: DenseStorage[] = ['f32', 'int8', 'binary+int8'];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const round = (x: number, d = 3) => +x.toFixed(d);

/** Adds `n` synthetic unit vectors in blocks of 10k (so 1M × d never exists as one f32 array). */
async function synthetic(n: number, d: number, storage: DenseStorage, withSparse = false): Promise<{ idx: SemanticIndex; ms: number }> {
  const idx = await SemanticIndex.create({ dims: d, storage, outputs: withSparse ? ['dense', 'sparse'] : ['dense'], chunkSize: 10_000 });
  const r = rng(d);
  let ms = 0;
  for (let a = 0; a < n; a += 10_000) {
    const m = Math.min(10_000, n - a);
    const v = randomUnit(m, d, 1000 + a / 10_000);
    const docs = Array.from({ length: m }, (_, i) => ({ id: `s${a + i}`, dense: v.subarray(i * d, (i + 1) * d), sparse: withSparse ? randomSparse(r, 8000, 30) : undefined }));
    const t0 = performance.now();
    await idx.add(docs);
    ms += performance.now() - t0;
  }
  return { idx, ms };
}

/** Wall-clock and CPU ms per query (CPU time is what the query costs when other processes share the cores). */
async function timeQueries(idx: SemanticIndex, queries: Float32Array, d: number, runs: number): Promise<{ wall: number[]; cpu: number[] }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let j = 0; j < runs + 3; j++) {
    const q = queries.subarray((j % (queries.length / d)) * d, ((j % (queries.length / d)) + 1) * d);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await idx.search({ dense: q }, { k: 10 });
    const c = process.cpuUsage(c0);
    if (j < 3) continue; // 3 warm-up queries
    wall.push(performance.now() - t0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall, cpu };
}

async function recall(exact: SemanticIndex, approx: SemanticIndex, queries: Float32Array[], funnel: FunnelOptions | false): Promise<number> {
  let s = 0;
  for (const q of queries) {
    const truth = (await exact.search({ dense: q }, { k: 10, funnel: false })).map((h) => h.id);
    s += overlap(
      (await approx.search({ dense: q }, { k: 10, funnel })).map((h) => h.id),
      truth,
    );
  }
  return s / queries.length;
}

/** Engine on Node + Dawn over a local model folder served on loopback (the engine loads from URLs). */
async function nodeEngine(): Promise<{ engine: import('../../src/engine/engine.ts').Engine; name: string; close: () => Promise<void> }> {
  const { startModelServer } = await import('../../tests/helpers/model-server.ts');
  const { loadModel } = await import('../../src/model/load.ts');
  const { createNodeGpu } = await import('../../src/gpu/node-gpu.ts');
  const { GpuRuntime } = await import('../../src/gpu/runtime.ts');
  const { Engine } = await import('../../src/engine/engine.ts');
  const trained = resolve(REPO_ROOT, 'public/models/m3-tiny');
  const server = await startModelServer(existsSync(resolve(trained, 'config.json')) ? resolve(REPO_ROOT, 'public/models') : undefined);
  const name = existsSync(resolve(trained, 'config.json')) ? 'm3-tiny' : 'xlmr-tiny';
  const { device } = await createNodeGpu();
  const engine = await Engine.create(new GpuRuntime(device), await loadModel(server.folderUrl(name)), { weights: 'f32' });
  return { engine, name, close: async () => (engine.destroy(), device.destroy(), await server.close()) };
}

/**
 * `smoke`: every row of the section at 10k documents (clustered recall, load and keystroke included), 5 runs,
 * 100 real-text documents: what the suite's bench check runs to prove the harness end to end in seconds.
 * Its keys name the sizes it really ran ('10k'), never the quick or full ones.
 */
export async function runSearchBench(opts: { quick: boolean; smoke?: boolean; million?: boolean; browser?: boolean; log?: (s: string) => void }): Promise<SearchSection> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const notes: string[] = [];
  const p50: Nested = {};
  const p95: Nested = {};
  const cpu50: Nested = {};
  const put = (t: Nested, size: string, st: string, d: number, v: number) => (((t[size] ??= {})[st] ??= {})[String(d)] = round(v));
  const smoke = opts.smoke === true;
  const runs = smoke ? 5 : opts.quick ? 30 : 100;
  const sizes: [string, number, DenseStorage[]][] = smoke
    ? [['10k', 10_000, STORAGES]]
    : [
        ['10k', 10_000, STORAGES],
        ['100k', 100_000, STORAGES],
      ];
  /** The size the build, clustered-recall, load and keystroke rows use: 100k, or 10k in smoke mode. */
  const big = smoke ? 10_000 : 100_000;
  const bigLabel = smoke ? '10k' : '100k';
  const million = !smoke && (!opts.quick || opts.million); // 1m rows: binary+int8 only (1M × 256 f32 alone would be 1 GB)
  const build: Record<string, number> = {};
  const bytes: Record<string, Record<string, number>> = {};
  const recallOut: Record<string, unknown> = {};
  for (const d of [256, 1024]) {
    const queries = randomUnit(64, d, 4242);
    for (const [label, n, storages] of [...sizes, ...(million && (d === 256 || !opts.quick) ? [['1m', 1_000_000, ['binary+int8']] as [string, number, DenseStorage[]]] : [])]) {
      for (const st of storages) {
        const { idx, ms } = await synthetic(n, d, st);
        const { wall: t, cpu } = await timeQueries(idx, queries, d, runs);
        put(p50, label, st, d, pct(t, 50));
        put(p95, label, st, d, pct(t, 95));
        put(cpu50, label, st, d, pct(cpu, 50));
        if (label === bigLabel) {
          build[`${st}/${d}`] = Math.round(n / (ms / 1000));
          (bytes[st] ??= {})[String(d)] = idx.stats().bytesPerDoc;
        }
        log(`  search ${label} × ${d} ${st}: p50 ${pct(t, 50).toFixed(2)} ms, p95 ${pct(t, 95).toFixed(2)} ms, cpu p50 ${pct(cpu, 50).toFixed(2)} ms (build ${(n / (ms / 1000)).toFixed(0)} vectors/s)`);
      }
    }
  }
  notes.push(
    `machine load average when the latency rows ran: ${loadavg()
      .map((x) => x.toFixed(1))
      .join(', ')} on ${cpus().length} cores`,
  );
  notes.push(`query_ms: dense top-10 over seeded random unit vectors, ${runs} queries after 3 warm-up; f32/int8 exact scans, binary+int8 the default funnel (Hamming first pass, int8 rescoring of 200 × k)`);

  // Synthetic clustered vectors at 100k × 1024: what the 1024-d target's recall means on data with neighbours.
  {
    const d = 1024;
    const r = rng(5);
    const centres = randomUnit(2000, d, 6);
    const exact = await SemanticIndex.create({ dims: d, storage: 'f32' });
    const bin = await SemanticIndex.create({ dims: d, storage: 'binary+int8' });
    for (let a = 0; a < big; a += 10_000) {
      const docs = Array.from({ length: 10_000 }, (_, i) => ({ id: `c${a + i}`, dense: near(centres.subarray(((a + i) % 2000) * d, (((a + i) % 2000) + 1) * d), 1.5, r) }));
      await exact.add(docs);
      await bin.add(docs);
    }
    const qs = Array.from({ length: 50 }, (_, j) => near(centres.subarray(j * 37 * d, (j * 37 + 1) * d), 1.5, r));
    const res: Record<string, number> = {};
    for (const m of [4, 10, 20]) res[`binary_x${m}`] = round(await recall(exact, bin, qs, { first: 'binary', multiplier: m }));
    res.binary_default = round(await recall(exact, bin, qs, { first: 'binary' }));
    recallOut[`synthetic_clustered_${bigLabel}_1024`] = res;
    const t: number[] = [];
    for (const q of qs) {
      const t0 = performance.now();
      await bin.search({ dense: q }, { k: 10 });
      t.push(performance.now() - t0);
    }
    recallOut[`synthetic_clustered_${bigLabel}_1024_query_ms_p50`] = round(pct(t, 50));
    log(`  clustered ${bigLabel} × 1024 binary funnel recall@10: ${JSON.stringify(res)}`);
    notes.push(`funnel_recall_at_10.synthetic_clustered_${bigLabel}_1024: 2,000 random centres, each document = centre + Gaussian noise (norm 1.5 before normalising, cosine ≈ 0.55 to its centre); queries drawn the same way`);
  }

  let loadMs: Record<string, number>;
  // load_ms: a persisted 100k × 256 int8 index, reopened from its directory store and imported from one file.
  {
    const dir = mkdtempSync(join(tmpdir(), 'm3bench-'));
    const idx = await SemanticIndex.open(await openDirStore(dir), { dims: 256, storage: 'int8', chunkSize: 4096 });
    const v = randomUnit(big, 256, 77);
    await idx.add(Array.from({ length: big }, (_, i) => ({ id: `p${i}`, dense: v.subarray(i * 256, (i + 1) * 256) })));
    const t0 = performance.now();
    const back = await SemanticIndex.open(await openDirStore(dir), { dims: 256, storage: 'int8' });
    const t1 = performance.now();
    const file = idx.toBytes();
    const t2 = performance.now();
    await SemanticIndex.fromBytes(file);
    const t3 = performance.now();
    if (back.stats().count !== big) throw new Error('reopened index lost documents');
    rmSync(dir, { recursive: true, force: true });
    loadMs = { [`${bigLabel}_int8_256_dir_store`]: round(t1 - t0, 1), [`${bigLabel}_int8_256_from_file`]: round(t3 - t2, 1), file_bytes: file.length };
    log(`  load ${bigLabel} × 256 int8: store ${loadMs[`${bigLabel}_int8_256_dir_store`]} ms, file ${loadMs[`${bigLabel}_int8_256_from_file`]} ms (${(file.length / 2 ** 20).toFixed(1)} MiB)`);
  }

  // Real text: SciFact through the engine (Node + Dawn), recall of each funnel against exact f32.
  const keystroke: number[] = [];
  if (!scifactAvailable()) {
    notes.push('skipped real-text recall and keystroke timing: ../shared/data/datasets/scifact is absent');
  } else {
    const { engine, name, close } = await nodeEngine();
    try {
      const all = scifactCorpus();
      const docs = smoke ? all.docs.slice(0, 100) : opts.quick ? all.docs.slice(0, 1000) : all.docs;
      const queries = all.queries;
      const words = 16;
      const nq = smoke ? 20 : opts.quick ? 100 : 1109;
      const t0 = performance.now();
      const texts = docs.map((x) => docText(x, words));
      const emb = await engine.embed(texts, { outputs: ['dense'] });
      const qemb = await engine.embed(queries.slice(0, nq), { outputs: ['dense'] });
      const embedS = (performance.now() - t0) / 1000;
      const d = emb.dims;
      const byStorage: Record<string, SemanticIndex> = {};
      for (const st of STORAGES) {
        byStorage[st] = await SemanticIndex.create({ dims: d, storage: st, modelId: name });
        await byStorage[st].add(docs.map((x, i) => ({ id: x.id, dense: emb.embeddings.subarray(i * d, (i + 1) * d) })));
      }
      const qs = Array.from({ length: nq }, (_, j) => qemb.embeddings.subarray(j * d, (j + 1) * d));
      const res: Record<string, number> = {};
      res.int8_exact = round(await recall(byStorage.f32, byStorage.int8, qs, false));
      // binary+int8 takes sign codes against the first chunk's mean (the default); `raw` is the v > 0 code it replaced.
      const raw = await SemanticIndex.create({ dims: d, storage: 'binary+int8', modelId: name, centre: false });
      await raw.add(docs.map((x, i) => ({ id: x.id, dense: emb.embeddings.subarray(i * d, (i + 1) * d) })));
      for (const m of [4, 10, 40, 100]) res[`binary+int8_x${m}`] = round(await recall(byStorage.f32, byStorage['binary+int8'], qs, { first: 'binary', multiplier: m }));
      for (const m of [10, 40]) res[`binary+int8_raw_signs_x${m}`] = round(await recall(byStorage.f32, raw, qs, { first: 'binary', multiplier: m }));
      for (const p of [Math.round(d / 4), Math.round(d / 2)]) res[`f32_prefix${p}_x10`] = round(await recall(byStorage.f32, byStorage.f32, qs, { first: 'prefix', prefixDims: p, multiplier: 10 }));
      // The default funnel's shortlist (DEFAULT_MULTIPLIER.binary × 10) covers a small corpus whole: then its recall is the rescoring's ceiling, not a funnel's.
      const covers = DEFAULT_MULTIPLIER.binary * 10 >= docs.length;
      res['binary+int8_default'] = round(await recall(byStorage.f32, byStorage['binary+int8'], qs, { first: 'binary' }));
      if (covers)
        notes.push(`funnel_recall_at_10.scifact: ${docs.length} documents, so the default ×${DEFAULT_MULTIPLIER.binary} shortlist holds them all (the real-text target row is left out); the full run and tools/bench/search-recall.ts use the whole corpus`);
      recallOut.scifact_default_covers_corpus = covers;
      recallOut.scifact = { model: name, dims: d, docs: docs.length, queries: nq, doc_text: `title + first ${words} words of the abstract`, embed_s: round(embedS, 1), ...res };
      log(`  scifact (${name}, ${d} dims, ${docs.length} docs, ${nq} queries; embedded in ${embedS.toFixed(1)} s): ${JSON.stringify(res)}`);
      if (name !== 'm3-tiny') notes.push('funnel_recall_at_10.scifact uses the xlmr-tiny fixture (random weights, 52 dims): 52 sign bits make a weak first pass; the trained model (public/models/m3-tiny) replaces it when present');

      // Keystroke: a short query embedded (dense + sparse) and a hybrid search over 100k documents of the model's width.
      const { idx } = await synthetic(big, d, 'binary+int8', true);
      const probe = ['cancer risk', 'gene expression in mice', 'vitamin d', 'blood pressure', 'stem cells'];
      for (let j = 0; j < runs + 3; j++) {
        const t1 = performance.now();
        const r = await engine.embed([probe[j % probe.length]], { outputs: ['dense', 'sparse'] });
        await idx.search({ dense: r.embeddings.subarray(0, r.dims), sparse: r.sparse![0] }, { k: 10, mode: 'hybrid' });
        if (j >= 3) keystroke.push(performance.now() - t1);
      }
      log(`  keystroke_node (Node + Dawn, ${name}): p50 ${pct(keystroke, 50).toFixed(1)} ms, p95 ${pct(keystroke, 95).toFixed(1)} ms`);
      notes.push(`keystroke_node_ms: Node + Dawn (not a page), ${name} embeds one short query (dense + sparse), then a hybrid top-10 over ${bigLabel} binary+int8 documents of ${d} dims with random sparse weights`);
    } finally {
      await close();
    }
  }

  let browser: SearchBrowserRows | null = null;
  if (opts.browser ?? (!opts.quick && !smoke)) {
    browser = await (await import('./search-browser.ts')).runSearchBrowserBench({ n: 1_000_000, runs, log });
    notes.push(...browser.notes);
  }

  const q = (size: string, st: string, d: number) => p50[size]?.[st]?.[String(d)] ?? null;
  const rec1024 = (recallOut['synthetic_clustered_100k_1024'] as Record<string, number>)?.binary_default ?? null;
  const targets = [
    { name: '100k × 1024 binary+int8 funnel p50 (ms)', value: q('100k', 'binary+int8', 1024), target: '≤ 10', met: null as boolean | null },
    { name: '  … its recall@10 vs f32 (synthetic clustered, default funnel)', value: rec1024, target: '≥ 0.95', met: null as boolean | null },
    {
      name: "  … recall@10 on real text (SciFact, default funnel, the model's width)",
      value: recallOut.scifact_default_covers_corpus === false ? (((recallOut.scifact as Record<string, number> | undefined)?.['binary+int8_default'] ?? null) as number | null) : null,
      target: '≥ 0.95',
      met: null as boolean | null,
    },
    { name: '100k × 256 int8 exact p50 (ms)', value: q('100k', 'int8', 256), target: '≤ 20', met: null as boolean | null },
    { name: '1m × 256 binary+int8 funnel p50 (ms)', value: q('1m', 'binary+int8', 256), target: '≤ 60', met: null as boolean | null },
    { name: '1m × 256 binary+int8 in a worker (Chromium) p50 (ms)', value: browser?.worker.query_ms_p50 ?? null, target: '≤ 60', met: null as boolean | null },
    { name: '  … page frame gap max while it queries (ms)', value: browser?.worker.raf_gap_ms_max ?? null, target: '≤ 50', met: null as boolean | null },
    { name: 'keystroke to results p50 (ms, Chromium)', value: browser?.keystroke?.total_ms_p50 ?? null, target: '≤ 16', met: null as boolean | null },
  ];
  for (const t of targets) if (t.value !== null) t.met = t.target.startsWith('≤') ? t.value <= Number(t.target.slice(2)) : t.value >= Number(t.target.slice(2));
  return {
    query_ms_p50: p50,
    query_ms_p95: p95,
    query_cpu_ms_p50: cpu50,
    funnel_recall_at_10: recallOut,
    build_vectors_per_s: build,
    bytes_per_doc: bytes,
    load_ms: loadMs,
    keystroke_to_results_ms_p50: browser?.keystroke?.total_ms_p50 ?? null,
    keystroke_to_results_ms_p95: browser?.keystroke?.total_ms_p95 ?? null,
    keystroke_node_ms_p50: keystroke.length ? round(pct(keystroke, 50)) : null,
    keystroke_node_ms_p95: keystroke.length ? round(pct(keystroke, 95)) : null,
    browser,
    targets,
    notes,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const j = args.indexOf('--json');
  const t0 = Date.now();
  const search = await runSearchBench({ quick: args.includes('--quick') || args.includes('--smoke'), smoke: args.includes('--smoke'), million: args.includes('--1m'), browser: args.includes('--browser') || undefined });
  for (const t of search.targets) console.log(`${t.name}: ${t.value ?? 'n/a'} (target ${t.target}) ${t.met === null ? '' : t.met ? 'met' : 'NOT met'}`);
  if (j >= 0) {
    const path = resolve(args[j + 1] ?? 'bench-search.json');
    writeFileSync(path, JSON.stringify({ date: new Date().toISOString(), quick: args.includes('--quick'), wall_s: Math.round((Date.now() - t0) / 1000), search }, null, 1) + '\n');
    console.error(`wrote ${path}`);
  }
}
