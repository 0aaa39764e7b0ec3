// m3web's transformers.js-shaped entry against transformers.js itself: the same feature-extraction calls on the same
// model folder (fixtures/models/xlmr-tiny: config, tokenizer, weights) and, for transformers.js, the same model's
// ONNX export (fixtures/onnx/xlmr-tiny, from tools/goldens/make_goldens.py) must give the same vectors.
// transformers.js runs on its wasm backend (fp32); m3web on WebGPU (its own engine) and on onnxruntime-web ('wasm').
import { resolve } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { REPO_ROOT } from '../tools/fixtures/paths.ts';
import type { ErrorJson, TensorJson } from './pages/pipeline.ts';

const FIXTURE = 'xlmr-tiny';
const TEXTS = ['The quick brown fox jumps over the lazy dog.', 'Un renard brun rapide.', 'быстрая лиса', 'a'];
const CALLS = [
  { pooling: 'cls', normalize: true },
  { pooling: 'mean', normalize: false },
  { pooling: 'mean', normalize: true },
] as const;
// Four model loads per test on SwiftShader, and vite may reload the page under a shared working tree: roomy limits.
test.describe.configure({ timeout: 360_000 });

/** f32 engines on the same weights: only summation order differs. */
const TOLERANCE = 1e-4;

async function open(page: Page): Promise<void> {
  // transformers.js' layout puts the export at <model>/onnx/model.onnx; serve the committed one there (the generated
  // fixture folder stays as it is, so no other test sees an ONNX file appear).
  await page.route(`**/models/${FIXTURE}/onnx/model.onnx`, (route) => route.fulfill({ path: resolve(REPO_ROOT, 'fixtures/onnx', FIXTURE, 'model.onnx'), contentType: 'application/octet-stream' }));
  await page.goto('/e2e/pages/pipeline.html', { timeout: 180_000 });
  await page.waitForFunction(() => window.__pipeline !== undefined);
}

/**
 * page.evaluate, re-opening the page when vite reloaded it under us (a dependency discovered late, or a source file
 * edited while the test runs): each call is self-contained, so running it again is safe.
 */
async function call<A, R>(page: Page, fn: (a: A) => Promise<R>, arg: A): Promise<R> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await page.evaluate(fn as never, arg)) as R; // (Playwright's Unboxed<A> does not unify with a generic A)
    } catch (e) {
      if (attempt >= 3 || !/Execution context was destroyed/.test(String(e))) throw e;
      // vite is reloading the page itself: wait for it to come back rather than navigating over the reload.
      await page.waitForFunction(() => window.__pipeline !== undefined, null, { timeout: 180_000 });
    }
  }
}

function maxAbsDiff(a: TensorJson, b: TensorJson): number {
  expect(a.dims).toEqual(b.dims);
  expect(a.data).toHaveLength(b.data.length);
  return a.data.reduce((m, x, i) => Math.max(m, Math.abs(x - b.data[i])), 0);
}

function tensors(r: { backend: string; out: (TensorJson | ErrorJson)[] } | ErrorJson): { backend: string; out: TensorJson[] } {
  if ('error' in r) throw new Error(`${r.error.name}: ${r.error.message}`);
  for (const o of r.out) if ('error' in o) throw new Error(`${o.error.name}: ${o.error.message}`);
  return r as { backend: string; out: TensorJson[] };
}

for (const device of ['webgpu', 'wasm'] as const) {
  test(`pipeline('feature-extraction', …, { device: '${device}' }) gives transformers.js' vectors`, async ({ page }) => {
    await open(page);
    const want = await call(page, (a) => window.__pipeline!.transformers(a.f, a.t, a.c), { f: FIXTURE, t: TEXTS, c: CALLS as never });
    const got = tensors(await call(page, (a) => window.__pipeline!.m3web(a.f, a.c, { device: a.d, dtype: 'fp32' }), { f: FIXTURE, c: CALLS.map((opts) => ({ texts: TEXTS, opts })), d: device }));
    expect(got.backend).toBe(device === 'webgpu' ? 'webgpu' : 'ort-wasm');
    CALLS.forEach((c, k) => {
      expect(got.out[k].type).toBe('float32');
      expect(got.out[k].dims).toEqual([TEXTS.length, 52]);
      const d = maxAbsDiff(got.out[k], want[k]);
      console.log(`[pipeline] ${device} ${JSON.stringify(c)}: max |Δ| vs transformers.js ${d.toExponential(2)}`);
      expect(d, JSON.stringify(c)).toBeLessThanOrEqual(TOLERANCE);
    });
  });
}

test('pipeline extras and refusals: dims truncates then normalises; a string is one row; pooling none and q8 are typed errors', async ({ page }) => {
  await open(page);
  const [full] = await call(page, (a) => window.__pipeline!.transformers(a.f, a.t, [{ pooling: 'cls', normalize: false }]), { f: FIXTURE, t: TEXTS });
  const calls = [
    { texts: TEXTS, opts: { pooling: 'cls', normalize: true, dims: 16 } },
    { texts: 'just one', opts: { pooling: 'mean', normalize: true } },
    { texts: ['x'], opts: { pooling: 'none' } },
  ] as const;
  const got = await call(page, (a) => window.__pipeline!.m3web(a.f, a.c as never, { device: 'webgpu' }), { f: FIXTURE, c: calls });
  if ('error' in got) throw new Error(got.error.message);
  const [dims16, one, none] = got.out;
  // Matryoshka: transformers.js' un-normalised CLS rows, first 16 values, L2-normalised.
  const data = TEXTS.flatMap((_, i) => {
    const row = full.data.slice(i * 52, i * 52 + 16);
    const n = Math.hypot(...row);
    return row.map((x) => x / n);
  });
  expect(maxAbsDiff(dims16 as TensorJson, { dims: [TEXTS.length, 16], data, type: 'float32' })).toBeLessThanOrEqual(TOLERANCE);
  expect((one as TensorJson).dims).toEqual([1, 52]);
  expect(none).toEqual({ error: { name: 'InvalidInputError', message: expect.stringMatching(/^pipeline: option "pooling" must be given; expected 'mean' or 'cls' .*; received "none"$/) } });
  // Refused before any model is loaded.
  const q8 = await call(page, (a) => window.__pipeline!.m3web(a.f, [], { dtype: 'q8' as never }), { f: FIXTURE });
  expect(q8).toEqual({ error: { name: 'InvalidInputError', message: `pipeline: option "dtype" is not supported; expected 'auto', 'fp32', 'fp16'; received "q8"` } });
});
