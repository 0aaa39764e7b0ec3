/**
 * `npm run parity` rows for the CPU backend (issue #15): 'cpu-node' in this process and 'cpu-browser' in
 * headless Chromium (a worker on e2e/pages/cpu-parity.html, two wasm threads), both against the CPU reference.
 */
import { GOLDEN_FIXTURES } from '../fixtures/specs.ts';
import type { BrowserCpuParity } from './cpu-browser.ts';
import { cpuParityRows } from './cpu.ts';
import type { ParityRow } from './goldens.ts';
import { withFixtureModels } from './node-models.ts';
import { openPage, withBrowserServer } from './run-browser.ts';

declare global {
  interface Window {
    __cpuParity?: (fixtures: string[], threads?: number) => Promise<BrowserCpuParity>;
  }
}

export async function collectCpuParity(opts: { browser: boolean }): Promise<{ rows: ParityRow[]; notes: string[] }> {
  const fixtures = [...GOLDEN_FIXTURES];
  const rows = await withFixtureModels(async (load) => {
    const out: ParityRow[] = [];
    for (const f of fixtures) out.push(...(await cpuParityRows(await load(f), f, 'cpu-node')));
    return out;
  });
  const notes = ['cpu-node / cpu-browser: the CPU backend (src/cpu, onnxruntime-web wasm EP) vs the f32 CPU reference; fixtures without BGE-M3 heads got seeded ones for the sparse/ColBERT rows'];
  if (opts.browser) {
    const b = await withBrowserServer(async (browser, base) => {
      const page = await openPage(browser, base, 'e2e/pages/cpu-parity.html', () => typeof window.__cpuParity === 'function');
      return await page.evaluate((f) => window.__cpuParity!(f, 2), fixtures);
    });
    rows.push(...b.rows);
    notes.push(`cpu-browser: ${b.threads} wasm thread(s), crossOriginIsolated ${b.crossOriginIsolated}`);
  }
  return { rows, notes };
}
