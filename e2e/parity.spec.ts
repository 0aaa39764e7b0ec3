// The engine issue's proof in the browser: our WebGPU engine inside a worker against the CPU reference
// (f32 and f16 weights), and backend 'ort-wasm' (onnxruntime-web on the ONNX exports) against our f32 engine.
import { expect, test } from '@playwright/test';
import { engineThreshold } from '../tools/parity/engine-cases.ts';
import { GOLDEN_FIXTURES } from '../tools/fixtures/specs.ts';

const fixtures: string[] = [...GOLDEN_FIXTURES];
const onnx = ['xlmr-tiny', 'bert-tiny'];

test('WebGPU engine in a worker matches the CPU reference; onnxruntime-web matches our engine', async ({ page }) => {
  test.setTimeout(600_000);
  await page.goto('/e2e/pages/parity.html');
  await page.waitForFunction(() => typeof window.__parity === 'function');
  const r = await page.evaluate(([f, o]) => window.__parity!(f, o), [fixtures, onnx] as const);
  console.log(`[parity] adapter ${r.adapter}; ${r.notes.join('; ')}`);
  for (const row of r.rows) console.log(`[parity] ${row.backend} ${row.fixture} ${row.dtype} layers=${row.layers} dims=${row.dims} cos_min=${row.cos_min.toFixed(7)} max_abs=${row.max_abs.toExponential(2)}`);
  // 9 (layers × dims) rows per fixture and weight dtype, plus 6 bge-m3 rows (3 outputs × 2 exits) for xlmr-tiny.
  expect(r.rows.filter((x) => x.backend === 'webgpu-browser')).toHaveLength(fixtures.length * 2 * 9 + 2 * 6);
  for (const row of r.rows.filter((x) => x.backend === 'webgpu-browser' && x.output === 'sparse')) {
    expect(row.max_abs, `sparse ${row.dtype} L=${row.layers}`).toBeLessThanOrEqual(row.dtype === 'f32' ? 1e-4 : 1e-2);
  }
  for (const row of r.rows.filter((x) => x.backend === 'webgpu-browser' && x.output !== 'sparse')) {
    const t = engineThreshold(row.dtype === 'f32' ? 'f32' : 'f16');
    expect(row.cos_min, `${row.fixture} ${row.dtype} L=${row.layers} d=${row.dims}`).toBeGreaterThanOrEqual(t.cos_min);
    if (t.max_abs !== undefined) expect(row.max_abs, `${row.fixture} ${row.dtype} L=${row.layers} d=${row.dims}`).toBeLessThanOrEqual(t.max_abs);
  }
  const ortRows = r.rows.filter((x) => x.backend === 'onnxruntime-web');
  // Backend 'ort-wasm' (the export + the model folder's heads): dense for each fixture, sparse and ColBERT where BGE-M3 heads exist.
  expect(ortRows.map((x) => `${x.fixture}/${x.output}`).sort()).toEqual(['bert-tiny/dense', 'xlmr-tiny/colbert', 'xlmr-tiny/dense', 'xlmr-tiny/sparse']);
  for (const row of ortRows) expect(row.cos_min, row.fixture).toBeGreaterThanOrEqual(0.9999);
});
