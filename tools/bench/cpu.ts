/**
 * The bench's CPU rows (issue #15), driven from tools/bench/run.ts in the same browser run: m3web's CPU
 * backend against transformers.js wasm and onnxruntime-web wasm on the batch-1 and batch-32 texts of the
 * ratio input, same thread count, interleaved; and an early-exit sweep on the CPU backend. Runs in its
 * own page and worker (e2e/pages/bench-cpu.*), so its onnxruntime thread count is its own.
 */
import type { Browser } from '@playwright/test';
import { openPage } from '../parity/run-browser.ts';
import type * as BenchCpu from './cpu-browser.ts';
import type { CpuEngineId } from './cpu-browser.ts';
import { median, type BenchRow } from './report.ts';

declare global {
  interface Window {
    __benchCpu?: import('comlink').Remote<typeof BenchCpu>;
  }
}

export interface CpuRatios {
  /** transformers.js wasm median ms ÷ m3web-cpu median ms, same texts (> 1: m3web-cpu is faster). */
  m3web_cpu_vs_transformers_wasm_b1: number | null;
  m3web_cpu_vs_transformers_wasm_b32: number | null;
  /** onnxruntime-web wasm (the ONNX export, one session) ÷ m3web-cpu. */
  m3web_cpu_vs_ort_wasm_b1: number | null;
  m3web_cpu_vs_ort_wasm_b32: number | null;
  /** time(k) ÷ time(L) on the CPU backend, as `early_exit`. */
  cpu_early_exit: { layers: number; time_ratio: number; ideal_ratio: number }[];
}

/** A configuration of run.ts: its texts and their token lengths; `layerSweep` marks the early-exit one. */
export interface CpuConfig {
  input: string;
  texts: string[];
  lens?: number[];
  layerSweep?: number[];
}

const META: Record<CpuEngineId, { backend: string; dtype: string }> = {
  'm3web-cpu': { backend: 'cpu-wasm', dtype: 'f32' },
  'transformers-wasm': { backend: 'wasm', dtype: 'fp32' },
  'ort-wasm': { backend: 'wasm', dtype: 'fp32' },
};

export async function runCpuBench(
  browser: Browser,
  base: string,
  opts: { fixture: string; layers: number; hidden: number; runs: number; peers: boolean; configs: CpuConfig[]; log: (s: string) => void },
): Promise<{ rows: BenchRow[]; ratios: CpuRatios; notes: string[] }> {
  const page = await openPage(browser, base, 'e2e/pages/bench-cpu.html', () => window.__benchCpu !== undefined);
  page.on('pageerror', (e) => opts.log(`page error (bench-cpu): ${e.message}`));
  const origin = base.replace(/\/$/, '');
  const setup = await page.evaluate(([o, f, p]) => window.__benchCpu!.setup(o, f, p), [origin, opts.fixture, opts.peers] as const);
  const engines: CpuEngineId[] = opts.peers ? ['m3web-cpu', 'transformers-wasm', 'ort-wasm'] : ['m3web-cpu'];
  const rows: BenchRow[] = [];
  const byBatch = new Map<number, BenchRow[]>();
  let sweep: BenchRow[] = [];
  for (const c of opts.configs) {
    const lens = c.lens ?? [];
    const tokens = lens.reduce((a, b) => a + b, 0);
    const input = c.layerSweep ? 'cpu-early-exit' : `cpu/${c.input}`;
    opts.log(`  ${input} batch ${c.texts.length} (${tokens} real tokens): ${c.layerSweep ? `m3web-cpu layers ${c.layerSweep.join(',')}` : engines.join(', ')} × ${opts.runs} runs, ${setup.threads} thread(s)`);
    const times = await page.evaluate((cfg) => window.__benchCpu!.runConfig(cfg), { texts: c.texts, engines, runs: opts.runs, layerSweep: c.layerSweep });
    const group = Object.entries(times).map(([key, ms]) => {
      const [name, k] = key.split('@') as [CpuEngineId, string | undefined];
      const m = median(ms);
      const row: BenchRow = {
        name,
        ...META[name],
        batch: c.texts.length,
        seq_len: Math.max(...lens),
        layers: k ? Number(k) : opts.layers,
        dims: opts.hidden,
        tokens_per_s_median: tokens / (m / 1000),
        ms_median: m,
        ms_min: Math.min(...ms),
        ms_max: Math.max(...ms),
        runs: ms.length,
        input,
        tokens,
        time_vs_m3web: null,
      };
      return row;
    });
    const ref = group.find((r) => r.name === 'm3web-cpu' && r.layers === opts.layers);
    for (const r of group) r.time_vs_m3web = ref ? r.ms_median / ref.ms_median : null;
    opts.log('    ' + group.map((r) => `${r.name}${c.layerSweep ? '@' + r.layers : ''} ${r.ms_median.toFixed(1)} ms`).join(', '));
    rows.push(...group);
    if (c.layerSweep) sweep = group;
    else byBatch.set(c.texts.length, group);
  }
  await page.evaluate(() => window.__benchCpu!.teardown());
  await page.close();
  const ratio = (peer: CpuEngineId, batch: number) => {
    const g = byBatch.get(batch) ?? [];
    const a = g.find((r) => r.name === 'm3web-cpu');
    const b = g.find((r) => r.name === peer);
    return a && b ? b.ms_median / a.ms_median : null;
  };
  const full = sweep.find((r) => r.layers === opts.layers);
  return {
    rows,
    ratios: {
      m3web_cpu_vs_transformers_wasm_b1: ratio('transformers-wasm', 1),
      m3web_cpu_vs_transformers_wasm_b32: ratio('transformers-wasm', 32),
      m3web_cpu_vs_ort_wasm_b1: ratio('ort-wasm', 1),
      m3web_cpu_vs_ort_wasm_b32: ratio('ort-wasm', 32),
      cpu_early_exit: full ? sweep.map((r) => ({ layers: r.layers, time_ratio: r.ms_median / full.ms_median, ideal_ratio: r.layers / opts.layers })) : [],
    },
    notes: [
      ...setup.notes,
      `cpu rows (input cpu/*, cpu-early-exit): headless Chromium worker, crossOriginIsolated ${setup.crossOriginIsolated}, ${setup.threads} wasm thread(s) for every engine; their time_vs_m3web compares with m3web-cpu on the same texts (full depth), not with m3web f32 on WebGPU`,
      'ratios m3web_cpu_vs_*: peer median ms ÷ m3web-cpu median ms on the same batch (> 1: m3web-cpu is faster)',
    ],
  };
}
