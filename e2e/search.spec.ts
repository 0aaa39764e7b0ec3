// SemanticIndex in real Chromium: the whole SciFact corpus embedded by a fixture model in the embed worker,
// persisted to IndexedDB + OPFS, aborted half-way, resumed after a reload, searched again after another
// reload; and a full quota reported as a typed error with nothing half-written.
import { expect, test, type Page } from '@playwright/test';
import { docText, scifactAvailable, scifactCorpus } from '../tools/bench/search-data.ts';
import type { SearchPage } from './pages/search.ts';
import { startQuietServer } from './search-server.ts';

const MODEL = 'xlmr-tiny'; // bge-m3 layout: dense, sparse and ColBERT from one pass
// The model embeds every document (title + the first WORDS words of the abstract) on the CPU backend: it did
// all 5,183 in about 50 s here (2,624 in 24.2 s before the abort, 2-core VM under load), where WebGPU on
// SwiftShader manages 1–10 a second. M3WEB_SEARCH_E2E_DOCS=n embeds only the first n with the model and adds
// the rest as precomputed vectors (a hashed bag of their words, testing.ts: the path an index built offline
// takes); M3WEB_SEARCH_E2E_BACKEND=webgpu runs the model on WebGPU instead (then use a small n).
const WORDS = 8;
const MODEL_DOCS = Number(process.env.M3WEB_SEARCH_E2E_DOCS || Infinity);
const BACKEND = (process.env.M3WEB_SEARCH_E2E_BACKEND || 'cpu') as 'webgpu' | 'cpu';
const NAME = 'scifact-e2e';
// Chunks of 64: the abort lands on a chunk boundary and a reload reads ~80 OPFS chunks.
const INDEX = { storage: 'binary+int8' as const, outputs: ['dense' as const, 'sparse' as const], chunkSize: 64 };

let server: Awaited<ReturnType<typeof startQuietServer>>;
test.beforeAll(async () => {
  server = await startQuietServer();
});
test.afterAll(async () => server?.close());

async function open(page: Page): Promise<void> {
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto(`${server.base}/e2e/pages/search.html`);
  await page.waitForFunction(() => window.__search !== undefined);
}

async function call<K extends keyof SearchPage>(page: Page, fn: K, ...args: Parameters<SearchPage[K]>): Promise<Awaited<ReturnType<SearchPage[K]>>> {
  return (await page.evaluate(({ fn, args }) => (window.__search![fn] as (...a: unknown[]) => unknown)(...args), { fn, args: args as unknown[] })) as Awaited<ReturnType<SearchPage[K]>>;
}

const MODES = [{ k: 10 }, { k: 10, mode: 'hybrid' as const, weights: [0.4, 0.2, 0] as [number, number, number] }, { k: 10, mode: 'sparse' as const }];

test('SciFact: abort half-way, reload, resume (nothing duplicated or missing), reload again, same results', async ({ page }) => {
  test.skip(!scifactAvailable(), 'SciFact absent: ../shared/data/datasets/scifact/scifact.zip not found');
  test.setTimeout(600_000);
  const { docs: corpus, queries } = scifactCorpus();
  const docs = corpus.map((d) => ({ id: d.id, text: docText(d, WORDS), meta: { title: d.title } }));
  const byModel = docs.slice(0, MODEL_DOCS);
  const qs = queries.slice(0, 5);
  await open(page);
  const loaded = await call(page, 'load', MODEL, BACKEND);
  expect(loaded.backend).toBe(BACKEND);
  await call(page, 'destroy', NAME);
  const first = await call(page, 'open', NAME, INDEX);
  expect('stats' in first && first.stats.persisted?.backend).toBe('opfs');

  const half = Math.floor(byModel.length / 2);
  const aborted = await call(page, 'add', byModel, half);
  expect(aborted.error?.name).toBe('AbortError');
  const committed = aborted.count;
  expect(committed % INDEX.chunkSize).toBe(0); // whole chunks only
  expect(committed).toBeGreaterThanOrEqual(half);
  expect(committed).toBeLessThan(byModel.length);
  console.log(`[search] the model embedded + indexed ${committed} of ${byModel.length} SciFact docs (title + ${WORDS} words) in ${(aborted.ms / 1000).toFixed(1)} s before the abort`);

  await page.reload();
  await page.waitForFunction(() => window.__search !== undefined);
  await call(page, 'load', MODEL, BACKEND);
  const reopened = await call(page, 'open', NAME, INDEX);
  expect('stats' in reopened && reopened.stats.count).toBe(committed);
  const resumed = await call(page, 'add', byModel);
  expect(resumed.error).toBeUndefined();
  expect([resumed.added, resumed.skipped]).toEqual([byModel.length - committed, committed]);
  const bulk = await call(page, 'addHashed', docs); // the rest of the corpus; the model's documents are skipped
  expect([bulk.error, bulk.added, bulk.skipped, bulk.count]).toEqual([undefined, docs.length - byModel.length, byModel.length, docs.length]);
  expect(
    await call(
      page,
      'has',
      docs.map((d) => d.id),
    ),
  ).toBe(docs.length);
  const before = await call(page, 'search', qs, MODES);
  for (const hits of before.flat()) {
    expect(hits).toHaveLength(10);
    expect(new Set(hits.map((h) => h.id)).size).toBe(10);
  }

  await page.reload();
  await page.waitForFunction(() => window.__search !== undefined);
  await call(page, 'load', MODEL, BACKEND);
  const again = await call(page, 'open', NAME, INDEX);
  if (!('stats' in again)) throw new Error(again.error.message);
  expect(again.stats.count).toBe(docs.length);
  console.log(`[search] reopened ${again.stats.count} docs from ${again.stats.persisted!.chunks} OPFS chunks in ${again.ms.toFixed(0)} ms; ${again.stats.bytesPerDoc.toFixed(0)} bytes/doc in memory`);
  expect(await call(page, 'search', qs, MODES)).toEqual(before);

  // Other encoder settings over the same store are refused, not searched as garbage (another model: persist.test.ts).
  const other = await call(page, 'open', NAME, { ...INDEX, layers: 2 });
  expect('error' in other && other.error).toEqual({ name: 'IndexMismatchError', message: expect.stringMatching(/built with another layers/) });
  await call(page, 'destroy', NAME);
});

test('the search worker (workers/search.worker.ts) ranks and scores as the in-page index', async ({ page }) => {
  await open(page);
  const r = await call(page, 'workerVsPage', 5000, 64);
  expect(r.count).toBe(5000);
  expect(r.worker).toEqual(r.page);
  for (const hits of r.worker) expect(hits).toHaveLength(10);
  // A function cannot cross postMessage: the structured clone fails before the worker sees the call.
  expect(r.filterError).toBe('DataCloneError');
});

test('a full quota is a QuotaError and leaves the stored index as it was', async ({ page }) => {
  await open(page);
  const name = 'quota-e2e';
  await call(page, 'destroy', name);
  const opened = await call(page, 'open', name, { dims: 64, storage: 'f32', chunkSize: 100 });
  expect('stats' in opened).toBe(true);
  expect((await call(page, 'addRandom', 100, 1)).count).toBe(100);
  await call(page, 'limitQuota', 10_000); // one chunk of 100 × 64 f32 needs ~26 KB
  const full = await call(page, 'addRandom', 300, 2);
  expect(full.error?.name).toBe('QuotaError');
  expect(full.error?.message).toMatch(/exceed the storage quota/);
  expect(full.count).toBe(100);
  await page.reload();
  await page.waitForFunction(() => window.__search !== undefined);
  const back = await call(page, 'open', name, { dims: 64, storage: 'f32' });
  expect('stats' in back && [back.stats.count, back.stats.persisted?.chunks]).toEqual([100, 1]);
  await call(page, 'destroy', name);
});
