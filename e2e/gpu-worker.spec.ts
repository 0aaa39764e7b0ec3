// Real WebGPU (SwiftShader in headless Chromium) inside a dedicated worker: no mocks.
import { test, expect, chromium } from '@playwright/test';
import { chromiumNoWebGpuLaunchOptions } from './chromium.ts';
import type { SmokeResult } from './pages/gpu-smoke.worker.ts';

const N = 1237; // odd: the last workgroup of 64 is partial
const A = 3;
const B = -7;

/** Same integer inputs as the worker's smokeInput(); recomputed here so the check is independent. */
function cpuExpected(n: number, a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = ((i * 37) % 2001) - 1000;
    out.push(Math.fround(a * x + b)); // |a*x+b| <= 3007: exact in f32
  }
  return out;
}

test('WGSL compute runs inside a dedicated worker with exact results', async ({ page }) => {
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));

  await page.goto('/e2e/pages/gpu-smoke.html');
  await page.waitForFunction(() => window.__smokeReady === true);
  const t0 = Date.now();
  const r = (await page.evaluate(([n, a, b]) => window.__smoke!({ n, a, b }), [N, A, B] as const)) as SmokeResult & {
    mainThreadHasGpu: boolean;
  };
  const ms = Date.now() - t0;

  console.log(
    `[gpu-smoke] adapter ${JSON.stringify(r.adapterInfo)}\n` +
      `[gpu-smoke] features ${r.deviceFeatures.join(',')}\n` +
      `[gpu-smoke] limits ${JSON.stringify(r.deviceLimits)}\n` +
      `[gpu-smoke] subgroup size ${r.subgroups?.size ?? '-'}; saxpy ${r.saxpy.ms.toFixed(1)} ms in worker, ${ms} ms round trip; ` +
      `timestamps ${r.timestamps ? `${r.timestamps.end - r.timestamps.begin} ns` : '-'}`,
  );
  if (logs.length) console.log(logs.join('\n'));

  expect(r.hasNavigatorGpu, 'self.navigator.gpu in the worker').toBe(true);
  expect(r.mainThreadHasGpu).toBe(true);
  expect(r.errors).toEqual([]);

  // Adapter identity (SwiftShader here: google / swiftshader): present, not pinned.
  expect(r.adapterInfo.source).not.toBe('none');
  expect(r.adapterInfo.vendor).not.toBe('');
  expect(r.adapterInfo.architecture).not.toBe('');
  expect(typeof r.adapterInfo.isFallbackAdapter).toBe('boolean');

  // Feature reporting is self-consistent: has() == list membership, and what the adapter has the device got.
  for (const [name, flag] of [
    ['timestamp-query', r.has.timestampQuery],
    ['subgroups', r.has.subgroups],
    ['shader-f16', r.has.shaderF16],
  ] as const) {
    expect(r.deviceFeatures.includes(name), `${name} in device.features`).toBe(flag);
    expect(r.adapterFeatures.includes(name), `${name} in adapter.features`).toBe(flag);
  }

  // Raised limits took effect.
  expect(r.deviceLimits.maxStorageBufferBindingSize).toBe(r.adapterLimits.maxStorageBufferBindingSize);
  expect(r.deviceLimits.maxBufferSize).toBe(r.adapterLimits.maxBufferSize);
  expect(r.deviceLimits.maxStorageBuffersPerShaderStage).toBe(r.adapterLimits.maxStorageBuffersPerShaderStage);
  expect(r.deviceLimits.maxComputeWorkgroupStorageSize).toBe(r.adapterLimits.maxComputeWorkgroupStorageSize);

  // Exact result for every element vs the CPU; the bounds guard left the padding alone.
  const expected = cpuExpected(N, A, B);
  expect(r.saxpy.x.length).toBe(N);
  expect(r.saxpy.x).toEqual(expected.map((_, i) => ((i * 37) % 2001) - 1000));
  const bad = r.saxpy.y.flatMap((v, i) => (v === expected[i] ? [] : [`y[${i}]=${v} want ${expected[i]}`]));
  expect(bad.slice(0, 10), `${bad.length} mismatches`).toEqual([]);
  expect(r.saxpy.y.length).toBe(N);
  expect(r.saxpy.tail.length).toBeGreaterThan(0);
  expect(r.saxpy.tail.every((v) => v === r.saxpy.sentinel)).toBe(true);

  if (r.has.subgroups) {
    const s = r.subgroups!;
    expect(s.size).toBeGreaterThan(0);
    if (r.adapterInfo.subgroupMinSize != null) expect(s.size).toBeGreaterThanOrEqual(r.adapterInfo.subgroupMinSize);
    if (r.adapterInfo.subgroupMaxSize != null) expect(s.size).toBeLessThanOrEqual(r.adapterInfo.subgroupMaxSize);
    expect(
      s.sums.every((v) => v === s.size),
      `subgroupAdd(1u) == subgroup_size: ${s.sums.join(',')}`,
    ).toBe(true);
  }
  if (r.has.timestampQuery) {
    expect(r.timestamps).not.toBeNull();
    expect(r.timestamps!.end).toBeGreaterThanOrEqual(r.timestamps!.begin);
  }
});

test('without --enable-unsafe-webgpu the CPU adapter is blocklisted (fallback launch variant)', async ({ baseURL }) => {
  const browser = await chromium.launch(chromiumNoWebGpuLaunchOptions);
  try {
    const page = await browser.newPage();
    await page.goto(`${baseURL}/e2e/pages/gpu-smoke.html`);
    const r = await page.evaluate(async () => ({
      hasGpu: 'gpu' in navigator && !!navigator.gpu,
      adapter: navigator.gpu ? (await navigator.gpu.requestAdapter()) !== null : false,
    }));
    console.log(`[gpu-smoke] no-unsafe-webgpu variant: navigator.gpu ${r.hasGpu}, adapter ${r.adapter}`);
    expect(r.adapter).toBe(false);
  } finally {
    await browser.close();
  }
});
