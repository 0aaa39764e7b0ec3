// The model cache holds the quantised weights, never both (issue #18; src/model/quant-cache.ts, QUANT.md "The model
// cache"), in real Chromium: the embed worker loads a fixture folder with weights q4 on WebGPU, which stores the q4
// copy under <folder>/.m3web-cache/q4/ and then drops the source's weight files; after a reload, a q4 load reads the
// copy with no request for any weight file (offline: no request at all succeeds) and no second quantisation, and
// gives exactly the first load's outputs; an f32 load then downloads the source again and drops the copy.
import { expect, test, type Page, type Request } from '@playwright/test';
import type { QuantCachePage } from './pages/quant-cache.ts';
import { startQuietServer } from './search-server.ts';

const MODEL = 'xlmr-tiny'; // bge-m3 layout: model.safetensors + colbert_linear.pt + sparse_linear.pt
const TEXTS = ['The quick brown fox jumps over the lazy dog.', 'быстрая лиса', 'a'];
const SOURCE_WEIGHTS = [`/models/${MODEL}/model.safetensors`, `/models/${MODEL}/colbert_linear.pt`, `/models/${MODEL}/sparse_linear.pt`];
const COPY = `/models/${MODEL}/.m3web-cache/q4/`;
test.describe.configure({ timeout: 300_000 });

// Its own vite server without HMR: other edits in the working tree must not reload the page between the loads.
let server: Awaited<ReturnType<typeof startQuietServer>>;
test.beforeAll(async () => {
  server = await startQuietServer();
});
test.afterAll(async () => server?.close());

async function open(page: Page): Promise<void> {
  await page.goto(`${server.base}/e2e/pages/quant-cache.html`);
  await page.waitForFunction(() => window.__qc !== undefined);
  expect(await call(page, 'ready')).toBe(false); // the worker answers: nothing loaded yet
}

async function call<K extends keyof QuantCachePage>(page: Page, fn: K, ...args: Parameters<QuantCachePage[K]>): Promise<Awaited<ReturnType<QuantCachePage[K]>>> {
  return (await page.evaluate(({ fn, args }) => (window.__qc![fn] as (...a: unknown[]) => unknown)(...args), { fn, args: args as unknown[] })) as Awaited<ReturnType<QuantCachePage[K]>>;
}

type Result = Awaited<ReturnType<QuantCachePage['run']>>;
type Run = Extract<Result, { error?: undefined }>;
const ok = (r: Result): Run => {
  if (r.error) throw new Error(`${r.error.name}: ${r.error.message}`);
  return r as Run;
};

test('weights q4: the cache keeps the q4 copy, not the source weights; the next load reads it, offline, with the same outputs', async ({ page, context }) => {
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  const requests: string[] = [];
  const onRequest = (r: Request) => void requests.push(new URL(r.url()).pathname);
  context.on('request', onRequest);
  await open(page);
  await call(page, 'clear');

  // 1. First load: downloads the f32 source, quantises in the worker, stores the copy, then drops the source weights.
  const first = ok(await call(page, 'run', MODEL, 'q4', TEXTS));
  expect(first.info).toMatchObject({ backend: 'webgpu', dtype: 'q4' });
  for (const w of SOURCE_WEIGHTS) expect(requests).toContain(w);
  expect(first.quantize.count).toBeGreaterThan(0);
  expect(first.quantize.prequantized).toBe(0);
  expect(first.outcome).toMatchObject({ kind: 'stored', report: { dtype: 'q4' } });
  const keys = new Map((await call(page, 'keys')).map((k) => [k.url, k.status]));
  for (const f of ['config.json', 'model.safetensors', 'm3web-cache.json']) expect(keys.get(COPY + f)).toBe(200);
  for (const w of SOURCE_WEIGHTS) expect(keys.has(w)).toBe(false);
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'modules.json']) expect(keys.get(`/models/${MODEL}/${f}`)).toBe(200);
  const listed = (await call(page, 'models')).find((m) => m.base.endsWith(`/models/${MODEL}/`))!;
  expect(listed.quantized).toEqual(['q4']);
  expect(listed.files.some((f) => f.url.endsWith(`${COPY}model.safetensors`))).toBe(true);

  // 2. A fresh page and worker, offline: the q4 copy loads from the cache alone, no quantisation, same outputs.
  await open(page);
  requests.length = 0;
  const failed: string[] = [];
  context.on('requestfailed', (r) => void failed.push(new URL(r.url()).pathname));
  await context.setOffline(true);
  const second = ok(await call(page, 'run', MODEL, 'q4', TEXTS));
  await context.setOffline(false);
  expect(second.info.dtype).toBe('q4');
  expect(second.info.source).toBe(first.info.source); // the same model (M3Client's calibration key)
  expect(requests.filter((u) => u.startsWith('/models/'))).toEqual([]);
  expect(failed).toEqual([]);
  expect(second.quantize.prequantized).toBe(second.quantize.count); // every matrix taken as stored: no second quantisation
  expect(second.outcome).toBeNull();
  expect(second.dense).toEqual(first.dense);
  expect(second.sparse).toEqual(first.sparse);
  expect(second.colbert).toEqual(first.colbert);

  // 3. f32 again: the source is downloaded again, and once its weights are stored the q4 copy goes.
  const third = ok(await call(page, 'run', MODEL, 'f32', TEXTS));
  expect(third.info.dtype).toBe('f32');
  for (const w of SOURCE_WEIGHTS) expect(requests).toContain(w);
  expect(third.outcome).toMatchObject({ kind: 'dropped' });
  const after = new Map((await call(page, 'keys')).map((k) => [k.url, k.status]));
  for (const w of SOURCE_WEIGHTS) expect(after.get(w)).toBe(200);
  expect([...after.keys()].filter((u) => u.includes('.m3web-cache'))).toEqual([]);
  context.off('request', onRequest);
});
