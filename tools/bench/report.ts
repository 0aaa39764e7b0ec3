/** The benchmark's JSON shape and its markdown rendering (tools/bench/run.ts writes and prints both). */
import type { CpuRatios } from './cpu.ts';
import type { SearchSection } from './search.ts';

export interface BenchRow {
  name: string;
  backend: string;
  dtype: string;
  batch: number;
  /** Padded sequence length of the batch (fixed-length sweeps: exactly that many tokens per text). */
  seq_len: number;
  layers: number;
  dims: number;
  tokens_per_s_median: number;
  ms_median: number;
  ms_min: number;
  ms_max: number;
  runs: number;
  /** Which configuration: "scifact-abstracts", "scifact-queries", "fixed-128", "early-exit", "cold-start". */
  input: string;
  /** Real (unpadded) tokens per call. */
  tokens: number;
  /** This row's median time over m3web f32's on the same configuration (> 1: slower than m3web). */
  time_vs_m3web: number | null;
}

export interface BenchReport {
  date: string;
  quick: boolean;
  /** --smoke: the suite's check of the harness (two configurations, a 10k search section). */
  smoke?: boolean;
  wall_s: number;
  machine: Record<string, unknown>;
  adapter: { vendor: string; architecture: string; features: string[]; [k: string]: unknown };
  /** The adapter of the node-* rows (Node + webgpu), when the plan has any. */
  node_adapter?: { vendor: string; architecture: string; description: string; features: string[]; isFallbackAdapter: boolean; icd: string } | null;
  model: Record<string, unknown>;
  inputs: Record<string, unknown>;
  rows: BenchRow[];
  /** In-page search (tools/bench/search.ts). */
  search?: SearchSection;
  ratios: {
    m3web_vs_transformers_webgpu_b32: number | null;
    m3web_vs_transformers_webgpu_b1: number | null;
    m3web_vs_transformers_wasm_b32: number | null;
    early_exit: { layers: number; time_ratio: number; ideal_ratio: number }[];
    matmul_fraction_of_peak: number | null;
  } & Partial<CpuRatios>;
  cold_start: { engine: string; ready_ms_median: number; first_ms_median: number; first_ms_min: number; first_ms_max: number; runs: number }[];
  kernel_profile: { batch: number; seq_len: number; kernels: { name: string; ns: number; share: number }[]; matmul_gflops: number; peak_matmul_gflops: number; peak_matmul?: { schedule: string; size: number }; encoder_matmul_schedule?: string } | null;
  skipped: string[];
  notes: string[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const f = (x: number | null | undefined, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

/** Markdown tables: throughput rows, ratios, early exit, cold start, kernel profile. */
export function markdown(r: BenchReport): string {
  const out: string[] = [];
  out.push(`m3web bench ${r.quick ? '(--quick) ' : ''}${r.date} · ${String(r.machine.cpu)} × ${String(r.machine.cores)} · adapter ${r.adapter.vendor}/${r.adapter.architecture} · model ${String(r.model.name)} (${String(r.model.shape)})`);
  out.push('');
  out.push('| input | engine | backend | dtype | batch | seq | layers | tokens/s | ms median | ms min–max | runs | time ÷ m3web f32 |');
  out.push('|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const x of r.rows) {
    out.push(`| ${x.input} | ${x.name} | ${x.backend} | ${x.dtype} | ${x.batch} | ${x.seq_len} | ${x.layers} | ${f(x.tokens_per_s_median)} | ${f(x.ms_median)} | ${f(x.ms_min)}–${f(x.ms_max)} | ${x.runs} | ${f(x.time_vs_m3web, 2)} |`);
  }
  const q = r.ratios;
  out.push('');
  out.push(`Speed-up of m3web f32 (peer time ÷ m3web time): vs transformers.js webgpu b32 ${f(q.m3web_vs_transformers_webgpu_b32, 2)}, b1 ${f(q.m3web_vs_transformers_webgpu_b1, 2)}; vs transformers.js wasm b32 ${f(q.m3web_vs_transformers_wasm_b32, 2)}.`);
  if (q.cpu_early_exit) {
    const ee = q.cpu_early_exit.map((e) => `${e.layers} → ${f(e.time_ratio, 3)} (${f(e.ideal_ratio, 3)})`).join(', ');
    out.push(
      `CPU backend: m3web-cpu vs transformers.js wasm b1 ${f(q.m3web_cpu_vs_transformers_wasm_b1, 2)}, b32 ${f(q.m3web_cpu_vs_transformers_wasm_b32, 2)}; vs onnxruntime-web wasm b1 ${f(q.m3web_cpu_vs_ort_wasm_b1, 2)}, b32 ${f(q.m3web_cpu_vs_ort_wasm_b32, 2)} (peer time ÷ m3web-cpu time); early exit time(k) ÷ time(L) (k ÷ L): ${ee || '–'}.`,
    );
  }
  if (q.early_exit.length) {
    out.push('');
    out.push('| early exit k | time(k) ÷ time(L) | k ÷ L |');
    out.push('|--:|--:|--:|');
    for (const e of q.early_exit) out.push(`| ${e.layers} | ${f(e.time_ratio, 3)} | ${f(e.ideal_ratio, 3)} |`);
  }
  if (r.cold_start.length) {
    out.push('');
    out.push('| cold start | model ready (ms, median) | first embedding (ms, median) | min–max | runs |');
    out.push('|---|--:|--:|--:|--:|');
    for (const c of r.cold_start) out.push(`| ${c.engine} | ${f(c.ready_ms_median, 0)} | ${f(c.first_ms_median, 0)} | ${f(c.first_ms_min, 0)}–${f(c.first_ms_max, 0)} | ${c.runs} |`);
  }
  const p = r.kernel_profile;
  if (p) {
    out.push('');
    out.push(`Kernel profile (m3web f32, one batch ${p.batch} × ${p.seq_len}, timestamp-query GPU time): ` + p.kernels.map((k) => `${k.name} ${(100 * k.share).toFixed(1)}%`).join(', ') + '.');
    out.push(
      `Matmul: ${f(p.matmul_gflops, 2)} GFLOP/s achieved in the encoder (${p.encoder_matmul_schedule ?? '?'} schedule) vs ${f(p.peak_matmul_gflops, 2)} GFLOP/s best in the matmul microbenchmark (${p.peak_matmul ? `${p.peak_matmul.schedule}, ${p.peak_matmul.size}³; ` : ''}${f(q.matmul_fraction_of_peak === null ? null : 100 * q.matmul_fraction_of_peak)}% of peak).`,
    );
  }
  for (const s of r.skipped) out.push(`skipped: ${s}`);
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}
