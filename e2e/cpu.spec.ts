// Issue #15's proof in the browser: the CPU backend (onnxruntime-web wasm sessions per block) inside a
// worker, on two wasm threads (the page is cross-origin isolated), against the CPU reference for all three
// families at every exit: dense at three dims, sparse, ColBERT (full and 8 dims), MCLS.
import { expect, test } from '@playwright/test';
import { GOLDEN_FIXTURES } from '../tools/fixtures/specs.ts';

const fixtures: string[] = [...GOLDEN_FIXTURES];

test('CPU backend in a worker matches the CPU reference for every family, exit and output', async ({ page }) => {
  test.setTimeout(900_000);
  await page.goto('/e2e/pages/cpu-parity.html');
  await page.waitForFunction(() => typeof window.__cpuParity === 'function');
  const r = await page.evaluate((f) => window.__cpuParity!(f, 2), fixtures);
  console.log(`[cpu] threads ${r.threads} (${r.threadReason}); crossOriginIsolated ${r.crossOriginIsolated}`);
  for (const row of r.rows) console.log(`[cpu] ${row.fixture} ${row.output} layers=${row.layers} dims=${row.dims} cos_min=${row.cos_min.toFixed(7)} max_abs=${row.max_abs.toExponential(2)}`);
  expect(r.crossOriginIsolated).toBe(true);
  expect(r.threads).toBe(2);
  // Per fixture (3 layers each): 5 rows per exit, ColBERT at 8 dims at the last exit, MCLS at exits 1 and 3.
  expect(r.rows).toHaveLength(fixtures.length * (3 * 5 + 1 + 2));
  for (const f of fixtures) expect(new Set(r.rows.filter((x) => x.fixture === f && x.output === 'colbert').map((x) => x.layers))).toEqual(new Set([1, 2, 3]));
  for (const row of r.rows) {
    const what = `${row.fixture} ${row.output} layers=${row.layers} dims=${row.dims}`;
    expect(row.cos_min, what).toBeGreaterThanOrEqual(0.99999);
    expect(row.max_abs, what).toBeLessThanOrEqual(1e-4);
  }
});
