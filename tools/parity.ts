/**
 * `npm run parity -- [--json] [--no-browser]`: how close each backend is to its reference, one row per
 * (family, backend, dtype, exit layer, dims, output):
 *   cpu-ref          TypeScript CPU reference vs the PyTorch goldens (every layer and exit)
 *   webgpu-node      our engine on Node + Dawn vs the CPU reference, f32, f16, int8 and q4 weights (issue #18)
 *   webgpu-browser   our engine inside a worker in headless Chromium vs the CPU reference
 *   onnxruntime-web  the fixtures' ONNX exports in the same browser vs our f32 engine
 *   cpu-node, cpu-browser  the CPU backend (src/cpu) in Node and in a Chromium worker vs the CPU reference
 */
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../src/gpu/runtime.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { ensureFixtures } from './fixtures/generate.ts';
import { GOLDEN_FIXTURES } from './fixtures/specs.ts';
import { cpuReferenceParity } from './parity/cpu-ref.ts';
import { engineThreshold, modelParityRows } from './parity/engine-cases.ts';
import type { ParityRow } from './parity/goldens.ts';
import { readGolden, withFixtureModels } from './parity/node-models.ts';
import { collectBrowserParity } from './parity/run-browser.ts';
import { collectCpuParity } from './parity/cpu-run.ts';

/**
 * Sparse weights under quantised weights: no bound in the issue; about 3× the largest error measured on xlmr-tiny
 * (int8 2.8e-2, q4 3.2e-1: `npx vitest run tests/engine-quant.test.ts`), so a regression shows.
 */
const SPARSE_QUANT_MAX_ABS = { int8: 0.1, q4: 1.0 };

/** Pass/fail thresholds per backend and weight dtype (from the engine issue, and #18 for int8 / q4). */
export function threshold(r: ParityRow): { max_abs?: number; cos_min?: number } {
  if (r.backend === 'cpu-ref') return { max_abs: 1e-5 };
  if (r.backend === 'onnxruntime-web') return { cos_min: 0.9999 };
  if (r.output === 'sparse') return { max_abs: r.dtype === 'f32' ? 1e-4 : r.dtype === 'int8' || r.dtype === 'q4' ? SPARSE_QUANT_MAX_ABS[r.dtype] : 1e-2 };
  return engineThreshold(r.dtype);
}

export function passes(r: ParityRow): boolean {
  const t = threshold(r);
  return (t.max_abs === undefined || r.max_abs <= t.max_abs) && (t.cos_min === undefined || r.cos_min >= t.cos_min);
}

export async function collectParity(opts: { browser: boolean }): Promise<{ rows: ParityRow[]; notes: string[]; adapters: Record<string, string> }> {
  ensureFixtures();
  const fixtures = [...GOLDEN_FIXTURES];
  const notes: string[] = [];
  const adapters: Record<string, string> = {};
  const rows = await withFixtureModels(async (load) => {
    const out: ParityRow[] = [];
    for (const fixture of fixtures) out.push(...cpuReferenceParity(readGolden(fixture), new ReferenceEncoder(await load(fixture))));
    const gpu = await createNodeGpu();
    const rt = new GpuRuntime(gpu.device);
    adapters['webgpu-node'] = `${gpu.adapter.info.vendor}/${gpu.adapter.info.architecture} (${gpu.icd})`;
    if (!rt.hasF16) notes.push(`webgpu-node: no shader-f16 on ${adapters['webgpu-node']} (Mesa >= 25 lavapipe absent), so f16 weights ran as packed f16x2; native f16 was not exercised`);
    for (const fixture of fixtures) out.push(...(await modelParityRows(rt, await load(fixture), fixture, 'webgpu-node', ['f32', 'f16', 'int8', 'q4'])));
    gpu.device.destroy();
    return out;
  });
  if (opts.browser) {
    const b = await collectBrowserParity([...fixtures], ['xlmr-tiny', 'bert-tiny']);
    adapters['webgpu-browser'] = b.adapter;
    rows.push(...b.rows);
    notes.push(...b.notes.map((n) => `webgpu-browser: ${n}`));
  }
  const cpu = await collectCpuParity(opts);
  rows.push(...cpu.rows);
  notes.push(...cpu.notes);
  return { rows, notes, adapters };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { rows, notes, adapters } = await collectParity({ browser: !process.argv.includes('--no-browser') });
  const failing = rows.filter((r) => !passes(r));
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify({ cases: rows, adapters, notes, failing: failing.length }, null, 1) + '\n');
  } else {
    console.log('family       backend          dtype output  layers dims   n   cos_min      max_abs');
    for (const r of rows) {
      console.log(
        `${r.family.padEnd(12)} ${r.backend.padEnd(16)} ${r.dtype.padEnd(5)} ${r.output.padEnd(7)} ${String(r.layers).padStart(6)} ${String(r.dims).padStart(4)} ${String(r.n).padStart(3)}   ${r.cos_min.toFixed(9)}  ${r.max_abs.toExponential(2)}${passes(r) ? '' : '  FAIL'}`,
      );
    }
    for (const [k, v] of Object.entries(adapters)) console.log(`adapter ${k}: ${v}`);
    for (const n of notes) console.log(`note: ${n}`);
    console.log(`${rows.length - failing.length} passed, ${failing.length} failed`);
  }
  process.exitCode = failing.length ? 1 : 0;
}
