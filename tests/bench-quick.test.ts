// `npm run bench -- --smoke` end to end (headless Chromium, real WebGPU): the quick plan's two headline
// configurations (every engine, Node too), every other section as in --quick, and the search section at 10k
// documents, so the suite checks the whole harness in a few minutes. Checks the JSON's shape and that every
// row has >= 3 runs. Never checks speed (SwiftShader timings mean nothing).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHROMIUM_EXECUTABLE } from '../e2e/chromium.ts';
import { REPO_ROOT, sharedDataAvailable } from '../tools/fixtures/paths.ts';
import { parseCsv } from '../tools/bench/run.ts';
import type { BenchReport } from '../tools/bench/report.ts';

it('parseCsv handles quoted commas, doubled quotes and newlines', () => {
  expect(parseCsv('a,b\n"x, y","he said ""hi""\nthen"\n')).toEqual([
    ['a', 'b'],
    ['x, y', 'he said "hi"\nthen'],
  ]);
});

const canRun = existsSync(CHROMIUM_EXECUTABLE) && sharedDataAvailable();

describe.skipIf(!canRun)('bench --quick', () => {
  it('writes a report with the agreed schema', { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3web-bench-'));
    const out = join(dir, 'bench.json');
    try {
      const code = await new Promise<number | null>((done, fail) => {
        const p = spawn('npx', ['tsx', 'tools/bench/run.ts', '--smoke', '--json', out], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
        p.on('error', fail);
        p.on('exit', done);
      });
      expect(code).toBe(0);
      const r = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
      expect(Object.keys(r)).toEqual(expect.arrayContaining(['machine', 'adapter', 'model', 'rows', 'ratios']));
      expect(r.adapter).toMatchObject({ vendor: expect.any(String), architecture: expect.any(String), features: expect.any(Array) });
      expect(r.model.name).toBe('bert-tiny');
      expect(r.rows.length).toBeGreaterThan(0);
      for (const row of r.rows) {
        expect(row).toMatchObject({
          name: expect.any(String),
          backend: expect.any(String),
          dtype: expect.any(String),
          batch: expect.any(Number),
          seq_len: expect.any(Number),
          layers: expect.any(Number),
          dims: expect.any(Number),
          tokens_per_s_median: expect.any(Number),
          ms_median: expect.any(Number),
          ms_min: expect.any(Number),
          ms_max: expect.any(Number),
          runs: expect.any(Number),
        });
        expect(row.runs).toBeGreaterThanOrEqual(3);
        expect(row.ms_min).toBeLessThanOrEqual(row.ms_median);
        expect(row.ms_median).toBeLessThanOrEqual(row.ms_max);
      }
      const names = new Set(r.rows.map((x) => x.name));
      for (const n of ['m3web-f32', 'm3web-f16', 'm3web-int8', 'm3web-q4']) expect(names).toContain(n);
      if (!r.skipped.length) for (const n of ['transformers-webgpu', 'transformers-wasm', 'ort-webgpu', 'ort-webgpu-gpubuf']) expect(names).toContain(n);
      // Node + webgpu rows: m3web f32 and f16 on the adapter createNodeGpu picked, named in node_adapter.
      expect(
        r.rows
          .filter((x) => x.backend === 'webgpu-node')
          .map((x) => x.name)
          .sort(),
      ).toEqual(['node-m3web-f16', 'node-m3web-f32', 'node-m3web-int8', 'node-m3web-q4']);
      expect(r.node_adapter).toMatchObject({ vendor: expect.any(String), features: expect.any(Array), icd: expect.any(String) });
      const q = r.ratios;
      for (const k of ['m3web_vs_transformers_webgpu_b32', 'm3web_vs_transformers_webgpu_b1', 'm3web_vs_transformers_wasm_b32', 'matmul_fraction_of_peak'] as const) expect(k in q).toBe(true);
      expect(q.early_exit.map((e) => e.layers)).toEqual([1, 2, 3]);
      for (const e of q.early_exit) expect(e).toMatchObject({ time_ratio: expect.any(Number), ideal_ratio: expect.any(Number) });
      // CPU backend rows (issue #15): m3web-cpu against both wasm peers at batch 1 and 32, and its early-exit sweep.
      expect(names).toContain('m3web-cpu');
      if (!r.skipped.length)
        for (const n of ['transformers-wasm', 'ort-wasm'])
          expect(
            r.rows
              .filter((x) => x.input.startsWith('cpu/') && x.name === n)
              .map((x) => x.batch)
              .sort((a, b) => a - b),
          ).toEqual([1, 32]);
      for (const k of ['m3web_cpu_vs_transformers_wasm_b1', 'm3web_cpu_vs_transformers_wasm_b32'] as const) {
        expect(k in q).toBe(true);
        if (!r.skipped.length) expect(q[k]).toEqual(expect.any(Number));
      }
      expect(q.cpu_early_exit?.map((e) => e.layers)).toEqual([1, 2, 3]);
      for (const e of q.cpu_early_exit ?? []) expect(e).toMatchObject({ time_ratio: expect.any(Number), ideal_ratio: expect.any(Number) });
      expect(r.cold_start.every((c) => c.runs >= 3)).toBe(true);
      expect(r.kernel_profile?.kernels.some((k) => k.name === 'matmul')).toBe(true);
      // The search section (issue #12's keys) at the sizes smoke runs: every storage × dims, build rate, bytes, load, recall.
      const search = r.search!;
      for (const st of ['f32', 'int8', 'binary+int8']) for (const d of ['256', '1024']) expect(search.query_ms_p50['10k'][st][d]).toEqual(expect.any(Number));
      expect(search.build_vectors_per_s['binary+int8/1024']).toBeGreaterThan(0);
      expect(search.bytes_per_doc['int8']['256']).toBeGreaterThan(256);
      expect(search.load_ms['10k_int8_256_from_file']).toEqual(expect.any(Number));
      expect(Object.keys(search.funnel_recall_at_10)).toEqual(expect.arrayContaining(['synthetic_clustered_10k_1024', ...(sharedDataAvailable() ? ['scifact'] : [])]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
