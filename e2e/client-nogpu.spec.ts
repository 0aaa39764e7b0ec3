// M3Client on a page without WebGPU (Chromium without --enable-unsafe-webgpu: navigator.gpu exists,
// requestAdapter() resolves null): the same API embeds on the CPU backend (src/cpu: onnxruntime-web wasm
// kernels per block, so early exits 1 and 2 run too), plan.backend says so, and
// the vectors match the WebGPU results of the same model from a WebGPU-enabled browser.
import { chromium, expect, test, type Page } from '@playwright/test';
import { chromiumNoWebGpuLaunchOptions, chromiumWebGpuLaunchOptions } from './chromium.ts';
import { textFor } from './pages/client-texts.ts';
import type { Outcome, Summary } from './pages/client.ts';

test.use({ launchOptions: chromiumNoWebGpuLaunchOptions });

const MODEL = 'm3bert-tiny';
const TEXTS = [0, 1, 2, 3, 7].map(textFor);
const SETTINGS = [
  { layers: 3, dims: 40 },
  { layers: 2, dims: 16 },
  { layers: 1, dims: 8 },
];

async function run(page: Page, model = MODEL, opts: object = {}, settings: { layers: number; dims: number }[] = SETTINGS): Promise<{ s: Summary; outs: Outcome[] }> {
  await page.goto('/e2e/pages/client.html');
  await page.waitForFunction(() => window.__client !== undefined);
  let s: Summary;
  try {
    s = await page.evaluate((a) => window.__client!.create(a.model, a.opts), { model, opts });
  } catch (e) {
    if (!/Execution context was destroyed/.test(String(e))) throw e;
    await page.waitForFunction(() => window.__client !== undefined);
    s = await page.evaluate((a) => window.__client!.create(a.model, a.opts), { model, opts });
  }
  const outs: Outcome[] = [];
  for (const o of settings) outs.push(await page.evaluate((a) => window.__client!.embed(a.t, a.o), { t: TEXTS, o: o }));
  return { s, outs };
}

test('without WebGPU the client embeds on the CPU backend, matching the GPU results', async ({ page }) => {
  const hasAdapter = await (async () => {
    await page.goto('/e2e/pages/client.html');
    return page.evaluate(async () => !!(navigator.gpu && (await navigator.gpu.requestAdapter())));
  })();
  expect(hasAdapter).toBe(false);
  const cpu = await run(page);
  console.log(`[client-nogpu] backend ${cpu.s.plan.backend}; adapter ${JSON.stringify(cpu.s.adapter)}; cost ${cpu.s.cost.timer} a=${cpu.s.cost.a.toFixed(3)} b=${cpu.s.cost.b.toExponential(2)}; create ${cpu.s.createMs.toFixed(0)} ms`);
  expect(cpu.s.plan.backend).toBe('cpu');
  expect(cpu.s.backend).toBe('cpu');
  expect(cpu.s.adapter!.ok).toBe(false);
  expect(cpu.s.stats.calibration).toBe('measured');
  expect(cpu.s.cost.timer).toBe('wall');

  // The same model on WebGPU, in a browser that has it.
  const gpuBrowser = await chromium.launch(chromiumWebGpuLaunchOptions);
  try {
    const gpuPage = await gpuBrowser.newPage({ baseURL: test.info().project.use.baseURL });
    const gpu = await run(gpuPage, MODEL, { backend: 'webgpu' });
    expect(gpu.s.plan.backend).toBe('webgpu');
    compare(cpu.outs, gpu.outs, SETTINGS);
  } finally {
    await gpuBrowser.close();
  }
});

/** Row by row: cos ≥ 0.99999 and max |Δ| ≤ 1e-4 between the fallback and the WebGPU vectors. */
function compare(cpuOuts: Outcome[], gpuOuts: Outcome[], settings: { layers: number; dims: number }[]): void {
  for (let k = 0; k < settings.length; k++) {
    const { dims } = settings[k];
    const a = cpuOuts[k].values!;
    const b = gpuOuts[k].values!;
    expect(a).toHaveLength(TEXTS.length * dims);
    expect(b).toHaveLength(TEXTS.length * dims);
    for (let i = 0; i < TEXTS.length; i++) {
      let dot = 0,
        na = 0,
        nb = 0,
        max = 0;
      for (let j = 0; j < dims; j++) {
        const x = a[i * dims + j],
          y = b[i * dims + j];
        dot += x * y;
        na += x * x;
        nb += y * y;
        max = Math.max(max, Math.abs(x - y));
      }
      const where = `text ${i} at ${JSON.stringify(settings[k])}`;
      expect(dot / Math.sqrt(na * nb), where).toBeGreaterThanOrEqual(0.99999);
      expect(max, where).toBeLessThanOrEqual(1e-4);
    }
  }
}

test('backend "ort-wasm" runs the model\'s exported ONNX graph on onnxruntime-web (wasm), matching the GPU results', async ({ page }) => {
  const ORT = { backend: 'ort-wasm', onnx: '/fixtures/onnx/bert-tiny/model.onnx' };
  const L = 3,
    H = 48;
  const settings = [
    { layers: L, dims: H },
    { layers: L, dims: 16 },
  ];
  const cpu = await run(page, 'bert-tiny', ORT, settings);
  console.log(`[client-nogpu] bert-tiny backend ${cpu.s.plan.backend}; plan ${cpu.s.plan.layers}×${cpu.s.plan.dims}; cost a=${cpu.s.cost.a.toFixed(3)} b=${cpu.s.cost.b.toExponential(2)}; create ${cpu.s.createMs.toFixed(0)} ms`);
  expect(cpu.s.plan.backend).toBe('ort-wasm');
  expect(cpu.s.candidates.every((c) => c.layers === L)).toBe(true); // the export has no early exits
  const early = await page.evaluate(() => window.__client!.embed(['x'], { layers: 1 }));
  expect(early.error?.name).toBe('InvalidInputError');
  const gpuBrowser = await chromium.launch(chromiumWebGpuLaunchOptions);
  try {
    const gpu = await run(await gpuBrowser.newPage({ baseURL: test.info().project.use.baseURL }), 'bert-tiny', { backend: 'webgpu' }, settings);
    expect(gpu.s.plan.backend).toBe('webgpu');
    compare(cpu.outs, gpu.outs, settings);
  } finally {
    await gpuBrowser.close();
  }
});

test('backend "ort-wasm" returns BGE-M3\'s dense, sparse and ColBERT outputs equal to the CPU backend (bge-m3 hub layout with onnx/)', async ({ page }) => {
  const texts = TEXTS.slice(0, 3);
  const all = async (opts: object) => {
    await run(page, 'xlmr-tiny-bin', opts, []);
    const r = await page.evaluate((t) => window.__client!.embedAll(t), texts);
    if ('error' in r) throw new Error(r.error);
    return r;
  };
  const graph = await all({ backend: 'ort-wasm' });
  const cpu = await all({ backend: 'cpu' });
  expect([graph.backend, cpu.backend]).toEqual(['ort-wasm', 'cpu']);
  const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0) / Math.sqrt(a.reduce((s, x) => s + x * x, 0) * b.reduce((s, x) => s + x * x, 0));
  const H = graph.dense.length / texts.length;
  for (let i = 0; i < texts.length; i++) {
    expect(cos(graph.dense.slice(i * H, (i + 1) * H), cpu.dense.slice(i * H, (i + 1) * H))).toBeGreaterThanOrEqual(0.9999);
    expect(graph.sparse[i].map(([id]) => id)).toEqual(cpu.sparse[i].map(([id]) => id));
    graph.sparse[i].forEach(([, w], j) => expect(Math.abs(w - cpu.sparse[i][j][1])).toBeLessThan(1e-3));
    expect(graph.colbert[i].length).toBe(cpu.colbert[i].length);
    expect(cos(graph.colbert[i], cpu.colbert[i])).toBeGreaterThanOrEqual(0.9999);
  }
});
