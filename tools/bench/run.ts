/**
 * `npm run bench -- [--quick] [--json bench.json]`: m3web against its peers in headless Chromium, on
 * one adapter, with the same inputs, interleaved runs (A B C … A B C …), warm-up excluded; median and
 * min–max per row. Prints a markdown table and writes one JSON file (schema: tools/bench/report.ts).
 *
 *   full:    the bert-base-shaped fixture (12 × 384, FFN 1536) and its ONNX export (made on demand by
 *            tools/bench/export_onnx.py with /usr/bin/python3 + torch; without torch the peer rows are
 *            skipped and the JSON says so), 5 runs per configuration.
 *   --quick: the bert-tiny fixture (3 × 48) and its committed ONNX export, 3 runs, fewer sizes (< 3 min).
 *   --smoke: --quick's two headline configurations and a 10k-document search section (the suite's check).
 *
 * Inputs are real text: SciFact abstracts and queries from ../shared/data/datasets/scifact; the
 * fixed-length sweeps use single-token words so every text is exactly seq_len tokens. SwiftShader is
 * a CPU emulation of a GPU: its numbers compare engines on this adapter and say nothing about real GPUs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Browser } from '@playwright/test';
import { ensureFixtures } from '../fixtures/generate.ts';
import { MODELS_DIR, REPO_ROOT, SHARED_DATA } from '../fixtures/paths.ts';
import { FIXTURES } from '../fixtures/specs.ts';
import { openPage, withBrowserServer } from '../parity/run-browser.ts';
import type * as Bench from './browser.ts';
import type { EngineId } from './browser.ts';
import { runNodeConfigs, type NodeAdapter } from './node.ts';
import { runCpuBench } from './cpu.ts';
import { parseCsv } from './csv.ts';
import { markdown, median, type BenchReport, type BenchRow } from './report.ts';

type BenchApi = import('comlink').Remote<typeof Bench>;
declare global {
  interface Window {
    __bench?: BenchApi;
  }
}

/** One timed configuration: SciFact abstracts or queries (as they are, or clipped to about `tokens` tokens each), or fixed-length texts. */
interface ConfigSpec {
  input: 'scifact-abstracts' | 'scifact-queries' | 'fixed';
  batch: number;
  /** Clip each text to about this many tokens, estimated from its words (rows report the real lengths); fixed: exactly this many. Absent: the real texts, truncated only at the model's limit. */
  tokens?: number;
  /** 'all' five engines, 'core' (m3web f32, transformers.js webgpu and wasm) where the rest would cost too long, or a list. */
  engines: 'all' | 'core' | EngineId[];
  /** Also time m3web f32, f16, int8 and q4 on these texts in Node + webgpu (rows node-*). */
  node?: boolean;
}

interface Plan {
  fixture: string;
  runs: number;
  configs: ConfigSpec[];
  /** The input whose batch-1 and batch-32 rows give the headline ratios. */
  ratioInput: 'scifact-abstracts' | 'scifact-queries';
  earlyExit: { batch: number; tokens: number; layers: number[] };
  coldRuns: number;
  profileBatch: number;
}

export const QUICK: Plan = {
  fixture: 'bert-tiny',
  runs: 3,
  configs: [
    { input: 'scifact-abstracts', batch: 1, tokens: 24, engines: 'all' },
    { input: 'scifact-abstracts', batch: 32, tokens: 12, engines: 'all', node: true },
    { input: 'fixed', batch: 8, tokens: 32, engines: 'all' },
    { input: 'scifact-queries', batch: 8, engines: ['m3web-f32', 'm3web-int8', 'm3web-q4', 'ort-webgpu', 'ort-webgpu-gpubuf'] },
  ],
  ratioInput: 'scifact-abstracts',
  earlyExit: { batch: 4, tokens: 24, layers: [1, 2, 3] },
  coldRuns: 3,
  profileBatch: 4,
};

/**
 * Every size the benchmark names, within what SwiftShader can run in about an hour: the base-shaped
 * model there costs 11–38 ms per real token in m3web and 71–145 ms in the ONNX Runtime WebGPU peers.
 * Queries run as they are at batch 1, 8 and 32 (they give the headline ratios); abstracts run whole at
 * batch 1 and clipped at batch 8 and 32; the fixed sweep runs 32, 128 and 512 tokens. Four of the
 * larger configurations time the 'core' engines only. On a real GPU, raise the sizes with --plan.
 */
export const FULL: Plan = {
  fixture: 'bert-base-shaped',
  runs: 5,
  configs: [
    { input: 'scifact-queries', batch: 1, engines: 'all' },
    // Also onnxruntime-web with its output left on the GPU (IO binding), to give the peer its best configuration.
    { input: 'scifact-queries', batch: 8, engines: ['m3web-f32', 'm3web-f16', 'm3web-int8', 'm3web-q4', 'transformers-webgpu', 'transformers-wasm', 'ort-webgpu', 'ort-webgpu-gpubuf'] },
    { input: 'scifact-queries', batch: 32, engines: 'core', node: true },
    { input: 'scifact-abstracts', batch: 1, engines: 'core', node: true },
    { input: 'scifact-abstracts', batch: 8, tokens: 48, engines: 'core' },
    { input: 'scifact-abstracts', batch: 32, tokens: 16, engines: 'all' },
    { input: 'fixed', batch: 1, tokens: 32, engines: 'all' },
    { input: 'fixed', batch: 1, tokens: 128, engines: 'all' },
    { input: 'fixed', batch: 1, tokens: 512, engines: 'core', node: true },
  ],
  ratioInput: 'scifact-queries',
  earlyExit: { batch: 1, tokens: 128, layers: [1, 3, 6, 9, 12] },
  coldRuns: 5,
  profileBatch: 4,
};

const ENGINE_META: Record<EngineId, { backend: string; dtype: string }> = {
  'm3web-f32': { backend: 'webgpu', dtype: 'f32' },
  'm3web-f16': { backend: 'webgpu', dtype: 'f16' },
  'm3web-int8': { backend: 'webgpu', dtype: 'int8' },
  'm3web-q4': { backend: 'webgpu', dtype: 'q4' },
  'transformers-webgpu': { backend: 'webgpu', dtype: 'fp32' },
  'transformers-wasm': { backend: 'wasm', dtype: 'fp32' },
  'ort-webgpu': { backend: 'webgpu', dtype: 'fp32' },
  'ort-webgpu-gpubuf': { backend: 'webgpu', dtype: 'fp32' },
};

// ---- inputs ---------------------------------------------------------------------------------------

export { parseCsv } from './csv.ts';

export function scifact(): { abstracts: string[]; queries: string[] } {
  const dir = resolve(SHARED_DATA, 'datasets/scifact');
  const csv = execFileSync('unzip', ['-p', resolve(dir, 'scifact.zip'), 'corpus_train.csv'], { maxBuffer: 64 << 20 }).toString('utf8');
  const [head, ...rows] = parseCsv(csv);
  const col = head.indexOf('abstract');
  const abstracts = rows.map((r) => r[col]).filter((t) => t && t.trim().length > 0);
  const queries = readFileSync(resolve(dir, 'queries.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).text as string);
  return { abstracts, queries };
}

/** `batch` texts of exactly `tokens` WordPiece tokens each ([CLS] + single-token words + [SEP]). */
export function fixedLengthTexts(tokens: number, batch: number): string[] {
  const words = ['cell', 'protein', 'gene', 'patients', 'study', 'expression', 'data', 'model', 'effect', 'risk', 'blood', 'human'];
  return Array.from({ length: batch }, (_, b) => Array.from({ length: tokens - 2 }, (_, i) => words[(i * 7 + b) % words.length]).join(' '));
}

/** Cuts a text to about `tokens` WordPiece tokens (specials included): ~1.3 tokens per English word here. */
const clip = (t: string, tokens: number) =>
  t
    .split(/\s+/)
    .slice(0, Math.max(1, Math.round((tokens - 2) / 1.3)))
    .join(' ');

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** A row from its description and its per-run times (ms); time_vs_m3web is filled in per group. */
function timedRow(d: Omit<BenchRow, 'tokens_per_s_median' | 'ms_median' | 'ms_min' | 'ms_max' | 'runs' | 'time_vs_m3web'>, ms: number[]): BenchRow {
  const m = median(ms);
  return { ...d, tokens_per_s_median: d.tokens / (m / 1000), ms_median: m, ms_min: Math.min(...ms), ms_max: Math.max(...ms), runs: ms.length, time_vs_m3web: null };
}

// ---- model preparation ------------------------------------------------------------------------------

/** Makes sure the fixture and its ONNX export are in fixtures/models/<fixture>/; returns why peers must be skipped, if so. */
function prepareModel(fixture: string): string | null {
  ensureFixtures({ only: [fixture], log: (s) => console.error(s) });
  if (!existsSync(resolve(MODELS_DIR, fixture, 'config.json'))) throw new Error(`fixture ${fixture} is missing (its tokenizer needs ${SHARED_DATA})`);
  const onnx = resolve(MODELS_DIR, fixture, 'onnx/model.onnx');
  if (existsSync(onnx)) return null;
  const committed = resolve(REPO_ROOT, 'fixtures/onnx', fixture, 'model.onnx');
  if (existsSync(committed)) {
    mkdirSync(dirname(onnx), { recursive: true });
    copyFileSync(committed, onnx);
    return null;
  }
  const py = spawnSync('/usr/bin/python3', [resolve(REPO_ROOT, 'tools/bench/export_onnx.py'), fixture], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (py.status === 0 && existsSync(onnx)) return null;
  return `the ONNX export of ${fixture} could not be made (/usr/bin/python3 tools/bench/export_onnx.py: ${(py.error?.message ?? py.stderr ?? '').trim().split('\n').pop()}); transformers.js and onnxruntime-web rows skipped`;
}

// ---- the run --------------------------------------------------------------------------------------

interface Config {
  input: string;
  texts: string[];
  engines: EngineId[];
  layerSweep?: number[];
  node?: boolean;
  /** Token lengths of `texts` and the rows timed on them (filled in when the configuration runs). */
  lens?: number[];
  rows?: BenchRow[];
}

/**
 * `--smoke` (the suite's check of this harness, tests/bench-quick.test.ts): the quick plan's two headline
 * configurations only, every other section as in --quick, and the search section at 10k documents.
 */
export const SMOKE_CONFIGS: ConfigSpec[] = [
  { input: 'scifact-abstracts', batch: 1, tokens: 24, engines: 'all' },
  { input: 'scifact-abstracts', batch: 32, tokens: 12, engines: ['m3web-f32', 'm3web-f16', 'm3web-int8', 'm3web-q4', 'transformers-webgpu', 'transformers-wasm', 'ort-webgpu', 'ort-webgpu-gpubuf'], node: true },
];

export async function runBench(opts: { quick: boolean; smoke?: boolean; plan?: Partial<Plan>; log?: (s: string) => void }): Promise<BenchReport> {
  const t0 = Date.now();
  const log = opts.log ?? ((s: string) => console.error(s));
  const plan: Plan = { ...(opts.quick || opts.smoke ? QUICK : FULL), ...(opts.smoke ? { configs: SMOKE_CONFIGS } : {}), ...opts.plan };
  const spec = FIXTURES.find((f) => f.name === plan.fixture)!;
  const skipped: string[] = [];
  const noPeers = prepareModel(plan.fixture);
  if (noPeers) skipped.push(noPeers);
  const peers: EngineId[] = noPeers ? [] : ['transformers-webgpu', 'transformers-wasm', 'ort-webgpu'];
  const all: EngineId[] = ['m3web-f32', 'm3web-f16', ...peers];
  // Engines named only in explicit lists (e.g. ort-webgpu-gpubuf) load too, peers only when the ONNX export exists.
  const listed = plan.configs.flatMap((c) => (Array.isArray(c.engines) ? c.engines : []));
  const extra = [...new Set(listed)].filter((e) => !all.includes(e) && (!noPeers || e.startsWith('m3web')));
  const loaded: EngineId[] = [...all, ...extra];
  const { abstracts, queries } = scifact();

  const port = process.env.M3WEB_E2E_PORT ? Number(process.env.M3WEB_E2E_PORT) : 0;
  return withBrowserServer(
    async (browser: Browser, base: string) => {
      const page = await openPage(browser, base, 'e2e/pages/bench.html', () => window.__bench !== undefined);
      page.on('pageerror', (e) => log(`page error: ${e.message}`));
      const origin = base.replace(/\/$/, '');
      log(`bench: ${plan.fixture}, engines ${loaded.join(', ')}`);
      const setup = await page.evaluate(([o, f, e]) => window.__bench!.setup(o, f, e), [origin, plan.fixture, loaded] as const);
      const notes = [...setup.notes];
      const lengths = (texts: string[]) => page.evaluate((t) => window.__bench!.tokenLengths(t), texts);

      const core: EngineId[] = all.filter((e) => e === 'm3web-f32' || e === 'transformers-webgpu' || e === 'transformers-wasm');
      const configs: Config[] = plan.configs.map((c, i) => ({
        input: c.input === 'fixed' ? `fixed-${c.tokens ?? 32}` : c.input,
        texts: c.input === 'fixed' ? fixedLengthTexts(c.tokens ?? 32, c.batch) : (c.input === 'scifact-queries' ? queries : abstracts).slice(i * 40, i * 40 + c.batch).map((t) => (c.tokens ? clip(t, c.tokens) : t)),
        engines: c.engines === 'all' ? all : c.engines === 'core' ? core : c.engines.filter((e) => loaded.includes(e)),
        node: c.node,
      }));
      const ee = plan.earlyExit;
      configs.push({ input: 'early-exit', texts: abstracts.slice(1000, 1000 + ee.batch).map((t) => clip(t, ee.tokens)), engines: ['m3web-f32'], layerSweep: ee.layers });
      const rows: BenchRow[] = [];
      const L = spec.layers;
      for (const c of configs) {
        const lens = (c.lens = await lengths(c.texts));
        const tokens = lens.reduce((a, b) => a + b, 0);
        const seq = Math.max(...lens);
        log(`  ${c.input} batch ${c.texts.length} × ≤${seq} tokens (${tokens} real): ${c.layerSweep ? `layers ${c.layerSweep.join(',')}` : c.engines.join(', ')} × ${plan.runs} runs`);
        const times = await page.evaluate((cfg) => window.__bench!.runConfig(cfg), { texts: c.texts, engines: c.engines, runs: plan.runs, layerSweep: c.layerSweep });
        const group: BenchRow[] = [];
        for (const [key, ms] of Object.entries(times)) {
          const [engine, k] = key.split('@') as [EngineId, string | undefined];
          group.push(timedRow({ name: engine, backend: ENGINE_META[engine].backend, dtype: setup.dtypes[engine] ?? ENGINE_META[engine].dtype, batch: c.texts.length, seq_len: seq, layers: k ? Number(k) : L, dims: spec.hidden, input: c.input, tokens }, ms));
        }
        const ref = group.find((r) => r.name === 'm3web-f32' && r.layers === L);
        for (const r of group) r.time_vs_m3web = ref ? r.ms_median / ref.ms_median : null;
        rows.push(...group);
        c.rows = group;
        log('    ' + group.map((r) => `${r.name}${c.layerSweep ? '@' + r.layers : ''} ${r.ms_median.toFixed(0)} ms`).join(', '));
      }

      const allLens = await lengths([...abstracts.slice(0, 200), ...queries.slice(0, 200)]);
      const absLens = allLens.slice(0, 200);
      const qLens = allLens.slice(200);
      const inputs = {
        source: 'SciFact (corpus_train.csv abstracts, queries.jsonl) from ../shared/data/datasets/scifact',
        note: 'p50/p95 of the unclipped texts (first 200 of each; truncated at the model limit); rows give the clipped lengths actually run',
        abstract_tokens: { p50: percentile(absLens, 50), p95: percentile(absLens, 95), sample: absLens.length },
        query_tokens: { p50: percentile(qLens, 50), p95: percentile(qLens, 95), sample: qLens.length },
        configs: plan.configs,
      };
      notes.push(`configurations with "tokens" in inputs.configs ran clipped texts (so the run finishes on SwiftShader), the others the real texts; 'core' configurations time m3web f32 and transformers.js webgpu + wasm only`);

      log('  kernel profile');
      const profTexts = abstracts.slice(2000, 2000 + plan.profileBatch).map((t) => clip(t, ee.tokens));
      const prof = await page.evaluate((t) => window.__bench!.kernelProfile(t), profTexts);
      const profLens = await lengths(profTexts);
      await page.evaluate(() => window.__bench!.teardown());
      await page.close();

      log('  cpu backend (m3web-cpu vs transformers.js wasm and onnxruntime-web wasm)');
      const cpuConfigs = configs.filter((c) => (c.input === plan.ratioInput && [1, 32].includes(c.texts.length)) || c.layerSweep);
      const cpu = await runCpuBench(browser, base, { fixture: plan.fixture, layers: L, hidden: spec.hidden, runs: plan.runs, peers: !noPeers, configs: cpuConfigs, log });
      rows.push(...cpu.rows);
      notes.push(...cpu.notes);

      log('  cold starts');
      const cold: Record<string, { ready: number[]; first: number[] }> = {};
      const coldEngines = (noPeers ? ['m3web-f32'] : ['m3web-f32', 'transformers-webgpu']) as ('m3web-f32' | 'transformers-webgpu')[];
      for (let r = 0; r < plan.coldRuns; r++) {
        for (const e of coldEngines) {
          const p = await openPage(browser, base, 'e2e/pages/bench.html', () => window.__bench !== undefined);
          const res = await p.evaluate(([o, f, eng, q]) => window.__bench!.coldStart(o, f, eng, performance.timeOrigin, q), [origin, plan.fixture, e, queries[0]] as const);
          await p.context().close();
          (cold[e] ??= { ready: [], first: [] }).ready.push(res.ready_ms);
          cold[e].first.push(res.first_ms);
        }
      }
      notes.push('cold start: fresh browser context (empty HTTP cache, transformers.js browser cache off), ms from navigation start of the page to model ready and to the first embedding of one query; weights served by the local vite server');

      let nodeAdapter: NodeAdapter | null = null;
      const nodeCfgs = configs.filter((c) => c.node);
      if (nodeCfgs.length) {
        log('  node + webgpu');
        const res = await runNodeConfigs(
          `${origin}/models/${plan.fixture}/`,
          nodeCfgs.map((c) => ({ input: c.input, texts: c.texts })),
          plan.runs,
        );
        nodeAdapter = res.adapter;
        for (const [k, c] of nodeCfgs.entries()) {
          const lens = c.lens!;
          const tokens = lens.reduce((a, b) => a + b, 0);
          const group = Object.entries(res.times[k]).map(([engine, ms]) =>
            timedRow({ name: `node-${engine}`, backend: 'webgpu-node', dtype: res.dtypes[engine], batch: c.texts.length, seq_len: Math.max(...lens), layers: L, dims: spec.hidden, input: c.input, tokens }, ms),
          );
          const ref = group.find((r) => r.name === 'node-m3web-f32')!;
          for (const r of group) r.time_vs_m3web = r.ms_median / ref.ms_median;
          rows.push(...group);
          log(`    ${c.input} batch ${c.texts.length}: ` + group.map((r) => `${r.name} (${r.dtype}) ${r.ms_median.toFixed(0)} ms`).join(', '));
        }
        notes.push(
          `node-* rows: m3web in Node + webgpu ${res.adapter.description} (${res.adapter.vendor}/${res.adapter.architecture}, ICD ${res.adapter.icd}; kernel schedule ${res.schedule}); another adapter than the browser rows, so their time_vs_m3web compares with node-m3web-f32 and they enter no ratio`,
        );
      }

      // Ratios compare rows of one configuration: the first of plan.ratioInput at that batch size.
      const speedup = (peer: string, batch: number) => {
        const group = configs.find((c) => c.input === plan.ratioInput && c.texts.length === batch)?.rows ?? [];
        const a = group.find((r) => r.name === 'm3web-f32');
        const b = group.find((r) => r.name === peer);
        return a && b ? b.ms_median / a.ms_median : null;
      };
      const exits = rows.filter((r) => r.input === 'early-exit');
      const full = exits.find((r) => r.layers === L);
      const report: BenchReport = {
        date: new Date().toISOString(),
        quick: opts.quick || opts.smoke === true,
        ...(opts.smoke ? { smoke: true } : {}),
        wall_s: 0,
        machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memory_gib: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, platform: `${process.platform}-${process.arch}`, browser: `Chromium ${browser.version()}` },
        adapter: { ...setup.adapter },
        node_adapter: nodeAdapter,
        model: {
          name: plan.fixture,
          shape: `${spec.family}, ${spec.layers} layers × hidden ${spec.hidden}, ${spec.heads} heads, FFN ${spec.ffn}`,
          layers: spec.layers,
          hidden: spec.hidden,
          heads: spec.heads,
          ffn: spec.ffn,
          weights: 'seeded random (tools/fixtures/generate.ts); safetensors f32 for m3web',
          onnx: noPeers
            ? null
            : `fixtures/models/${plan.fixture}/onnx/model.onnx (${existsSync(resolve(REPO_ROOT, 'fixtures/onnx', plan.fixture, 'model.onnx')) ? 'committed export from tools/goldens/make_goldens.py' : 'tools/bench/export_onnx.py, torch export opset 14'}), fp32`,
          note: opts.quick ? 'quick mode uses the tiny fixture, not the base-shaped one' : 'the base-shaped fixture (MiniLM-L12 shape)',
        },
        inputs,
        rows,
        ratios: {
          m3web_vs_transformers_webgpu_b32: speedup('transformers-webgpu', 32),
          m3web_vs_transformers_webgpu_b1: speedup('transformers-webgpu', 1),
          m3web_vs_transformers_wasm_b32: speedup('transformers-wasm', 32),
          early_exit: full ? exits.map((r) => ({ layers: r.layers, time_ratio: r.ms_median / full.ms_median, ideal_ratio: r.layers / L })) : [],
          matmul_fraction_of_peak: prof.peak_matmul_gflops > 0 ? prof.matmul_gflops / prof.peak_matmul_gflops : null,
          ...cpu.ratios,
        },
        cold_start: Object.entries(cold).map(([engine, c]) => ({ engine, ready_ms_median: median(c.ready), first_ms_median: median(c.first), first_ms_min: Math.min(...c.first), first_ms_max: Math.max(...c.first), runs: c.first.length })),
        kernel_profile: {
          batch: profTexts.length,
          seq_len: Math.max(...profLens),
          kernels: prof.kernels,
          matmul_gflops: prof.matmul_gflops,
          peak_matmul_gflops: prof.peak_matmul_gflops,
          peak_matmul: prof.peak_matmul,
          encoder_matmul_schedule: prof.encoder_matmul_schedule,
        },
        skipped,
        notes: [
          ...notes,
          `ratios m3web_vs_*: peer median ms ÷ m3web f32 median ms on the same batch of ${plan.ratioInput} (> 1: m3web is faster)`,
          "time_vs_m3web per row: that row's median ms ÷ m3web f32 on the same configuration",
          'SwiftShader (a CPU implementation of Vulkan) is the only adapter on this machine: these numbers compare engines on it and say nothing about real GPUs',
        ],
      };
      log('  search (SemanticIndex)');
      Object.assign(report, { search: await (await import('./search.ts')).runSearchBench({ quick: opts.quick || opts.smoke === true, smoke: opts.smoke, log }) }); // tools/bench/search.ts
      report.wall_s = Math.round((Date.now() - t0) / 1000);
      return report;
    },
    { port },
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const j = args.indexOf('--json');
  const p = args.indexOf('--plan'); // e.g. --plan '{"runs":7}' overrides the preset
  const report = await runBench({ quick: args.includes('--quick'), smoke: args.includes('--smoke'), plan: p >= 0 ? JSON.parse(args[p + 1]) : undefined });
  console.log(markdown(report));
  if (j >= 0) {
    const path = resolve(args[j + 1] ?? 'bench.json');
    writeFileSync(path, JSON.stringify(report, null, 1) + '\n');
    console.error(`wrote ${path} (${report.wall_s} s)`);
  }
}
