// Every kernel's parity cases, run on Chromium's real WebGPU (SwiftShader) inside a dedicated worker.
import { expect, test } from '@playwright/test';
import { ALL_CASES } from '../src/gpu/kernels/cases.ts';
import type { CaseReport } from '../src/gpu/kernels/testing.ts';

let reports = new Map<string, CaseReport>();

test.describe.serial('kernel parity in a browser worker', () => {
  test.beforeAll(async ({ browser }) => {
    // Every case runs inside this one hook (~260 with the quantised kernels, issue #18): on a loaded 2-core
    // machine that exceeded the 120 s hook default.
    test.setTimeout(480_000);
    const page = await browser.newPage();
    await page.goto('/e2e/pages/kernels.html');
    await page.waitForFunction(() => typeof window.__kernels === 'function');
    const r = await page.evaluate(() => window.__kernels!());
    console.log(`[kernels] adapter ${r.adapter}, ${r.reports.length} cases`);
    reports = new Map(r.reports.map((x) => [x.name, x]));
    await page.close();
  });

  for (const c of ALL_CASES) {
    test(c.name, () => {
      const r = reports.get(c.name);
      expect(r, 'case ran in the browser').toBeDefined();
      expect(r!.error ?? '').toBe('');
      expect(r!.maxAbs, `max |gpu - cpu| over ${r!.n} values`).toBeLessThanOrEqual(r!.tolerance);
    });
  }
});
