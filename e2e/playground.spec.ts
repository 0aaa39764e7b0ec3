// The playground as a person uses it (npm start, and the production build via the 'preview' project):
// load the default model, move the layers and dims sliders and see plan, heatmap and latency follow
// (the heatmap checked against the CPU reference run here in Node), index the demo corpus and find a
// known top hit, pass an axe check, then go offline, reload, and embed and search again.
// Screenshots of every view at 1280 and 390 px go to the test's output folder under test-results/ (not committed).
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { DEFAULT_SENTENCES, DEMO_CORPUS } from '../src/app/corpus.ts';
import { loadModel } from '../src/model/load.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';

const VIEWS = ['models', 'card', 'device', 'plan', 'compare', 'search', 'storage'];
/** A corpus sentence used verbatim as the query: its own document must come first in dense and ColBERT modes. */
const KNOWN = 37;

async function shoot(page: Page, tag: string): Promise<void> {
  // Still the page the test drove (nothing reloaded it): the heatmap and the search results are there.
  await expect(page.locator('#heat-point table')).toBeVisible();
  await expect(page.locator('#search-results ol.hits li').first()).toBeVisible();
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
    // Nothing may be wider than the viewport (readable at 390 px without sideways scrolling).
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
    for (const v of VIEWS) await page.locator(`#${v}`).screenshot({ path: test.info().outputPath(`${tag}-${v}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

function cosines(e: Float32Array, n: number, d: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => e.subarray(i * d, (i + 1) * d).reduce((s, x, k) => s + x * e[j * d + k], 0)));
}

async function indexAndSearch(page: Page): Promise<void> {
  await page.locator('#index-btn').click();
  await expect(page.locator('#search')).toHaveAttribute('data-indexed', String(DEMO_CORPUS.length), { timeout: 300_000 });
  await expect(page.locator('#index-stats')).toContainText(`${DEMO_CORPUS.length} documents`);
  for (const mode of ['dense', 'colbert']) {
    await page.locator(`input[name="mode"][value="${mode}"]`).check();
    await page.locator('#query').fill(DEMO_CORPUS[KNOWN]);
    await expect(page.locator('#search-results')).toHaveAttribute('data-mode', mode);
    await expect(page.locator('#search-results ol.hits li').first()).toHaveAttribute('data-id', String(KNOWN));
    await expect(page.locator('#search-results ol.hits li').first()).toContainText(/score 1\.000/); // the query is the document
  }
  await page.locator('input[name="mode"][value="hybrid"]').check();
  await expect(page.locator('#search-results')).toHaveAttribute('data-mode', 'hybrid');
  await expect(page.locator('#search-results ol.hits li').first()).toContainText(/dense -?\d\.\d{3} · sparse -?\d\.\d{3} · colbert -?\d\.\d{3}/);
  await expect(page.locator('#query-latency')).toContainText(/query latency \d/);
}

test('playground: model, sliders, compare, search, axe, then offline', async ({ page, context, baseURL }) => {
  test.setTimeout(900_000);
  const problems: string[] = [];
  let offline = false;
  page.on('console', (m) => {
    // Offline, the dev server's HMR client cannot reach its websocket (vite's, not the app's; the build has no HMR).
    if (offline && test.info().project.name !== 'preview' && /\[vite\]|WebSocket connection to 'ws:/.test(m.text())) return;
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()} ${m.location().url}`);
  });
  // Every file the page, its workers and the service worker ask for exists (no 404 probes of optional files: the
  // bundled models ship them). Offline, the service worker's network-first tries fail by design, then it answers from its cache.
  context.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  context.on('requestfailed', (r) => !(offline && r.serviceWorker()) && problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));

  await page.goto('/?model=/models/xlmr-tiny/');
  await expect(page.locator('#card')).toHaveAttribute('data-ready', 'true', { timeout: 300_000 });
  await expect(page.locator('#model-warning')).toBeVisible();
  await expect(page.locator('#model-warning')).toContainText('random weights');
  // 'auto' calibrates WebGPU and the CPU backend on a software adapter and keeps the faster; either way it says why.
  await expect(page.locator('#device-body')).toContainText(/backend\s*(webgpu|cpu) \(.+\)/);
  await expect(page.locator('#device-body')).toContainText(/shader-f16\s*(yes|no)/);
  await expect(page.locator('#device-body')).toContainText('cross-origin isolated');
  await expect(page.locator('#card-body')).toContainText(/BGE-M3 heads\s*yes/);
  await expect(page.locator('#compare')).toHaveAttribute('data-ready', 'true', { timeout: 120_000 });
  await expect(page.locator('#heat-full')).toHaveAttribute('data-layers', '3');

  // Sliders: keyboard only. Each step re-plans and re-embeds; plan, heatmap and latency follow.
  await page.locator('#layers').focus();
  await page.keyboard.press('ArrowLeft');
  await expect(page.locator('#plan-text')).toHaveAttribute('data-layers', '2');
  await expect(page.locator('#plan-text')).toContainText('set by hand');
  await page.locator('#dims').focus();
  await page.keyboard.press('ArrowLeft');
  await expect(page.locator('#plan-text')).toHaveAttribute('data-dims', '32');
  await expect(page.locator('#heat-point')).toHaveAttribute('data-layers', '2');
  await expect(page.locator('#heat-point')).toHaveAttribute('data-dims', '32');
  await expect(page.locator('#latency')).toHaveAttribute('data-dims', '32');
  await expect(page.locator('#latency')).toContainText(/measured: 6 texts at 2 × 32 in \d+ batch/);
  await expect(page.locator('#sparse-body li').first()).toBeVisible();

  // The heatmap is the engine's: the same cosines from the CPU reference, on the same fixture.
  const model = await loadModel(`${baseURL}/models/xlmr-tiny/`);
  const ref = new ReferenceEncoder(model).embed(DEFAULT_SENTENCES, { layers: 2, dims: 32 });
  const want = cosines(ref.embeddings, DEFAULT_SENTENCES.length, 32);
  const got = JSON.parse((await page.locator('#heat-point').getAttribute('data-values'))!) as number[][];
  for (let i = 0; i < want.length; i++) for (let j = 0; j < want.length; j++) expect(Math.abs(got[i][j] - want[i][j])).toBeLessThan(1e-3);

  await indexAndSearch(page);
  await expect(page.locator('#storage-list')).toContainText('/models/xlmr-tiny/');

  const axe = await new AxeBuilder({ page }).analyze();
  const serious = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(serious).toEqual([]);
  await shoot(page, test.info().project.name);

  // Offline: the service worker controls the page once installed (precache done); every model file is cached.
  await expect(page.locator('html')).toHaveAttribute('data-sw', 'ready', { timeout: 120_000 });
  await expect(page.locator('#storage-list')).toContainText(/xlmr-tiny\/ — \d+ files/);
  // One online visit is enough on both servers (the dev server's first visit waits for the worker: src/app/main.ts).
  offline = true;
  await context.setOffline(true);
  await page.reload();
  await expect(page.locator('#net-status')).toContainText('Offline');
  await expect(page.locator('#card')).toHaveAttribute('data-ready', 'true', { timeout: 300_000 });
  await expect(page.locator('#device-body')).toContainText('from the cache');
  await expect(page.locator('#compare')).toHaveAttribute('data-ready', 'true', { timeout: 120_000 });
  await indexAndSearch(page);
  await shoot(page, `${test.info().project.name}-offline`);
  await context.setOffline(false);
  offline = false;
  expect(problems).toEqual([]);
});

test('playground shows a typed error for a bad Hugging Face id and for an impossible budget', async ({ page }) => {
  test.setTimeout(600_000);
  await page.goto('/?model=/models/xlmr-tiny/');
  await expect(page.locator('#card')).toHaveAttribute('data-ready', 'true', { timeout: 300_000 });
  await page.locator('#budget-latency').fill('0.000001');
  await page.locator('#budget-form button').click();
  await expect(page.locator('#budget-error')).toContainText(/BudgetError: no plan meets the budget/);
  // A hub id whose fetch fails (this machine has no internet; elsewhere: a repo that does not exist).
  await page.locator('#hf-id').fill('m3web-e2e/does-not-exist');
  await page.locator('#hf-form button').click();
  await expect(page.locator('#load-error')).toContainText(/ModelFetchError: (network error fetching|HTTP 40[134] fetching) model file "[^"]+"/, { timeout: 120_000 });
});
