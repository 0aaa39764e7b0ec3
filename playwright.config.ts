import { defineConfig } from '@playwright/test';
import { chromiumWebGpuLaunchOptions, E2E_BASE_URL, E2E_PORT } from './e2e/chromium.ts';

/** The production build's preview server (the 'preview' project). */
const E2E_PREVIEW_PORT = Number(process.env.M3WEB_E2E_PREVIEW_PORT || E2E_PORT + 1);
const E2E_PREVIEW_URL = `http://127.0.0.1:${E2E_PREVIEW_PORT}`;

const CI = !!process.env.CI;

// Real WebGPU on SwiftShader is slow (2-core machine, software Vulkan): generous timeouts. Two workers (one
// browser each; spec files are spread over them, the tests in a file stay in order) keep the suite under 20 minutes.
export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  fullyParallel: false,
  workers: 2,
  retries: 0,
  forbidOnly: CI,
  timeout: 120_000,
  expect: { timeout: 30_000 },
  // 'list' prints one line per test; on a non-TTY (CI) it writes plain lines without cursor tricks.
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: E2E_BASE_URL,
    browserName: 'chromium',
    headless: true,
    launchOptions: chromiumWebGpuLaunchOptions,
    actionTimeout: 30_000,
    navigationTimeout: 60_000,
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium-webgpu',
      use: { browserName: 'chromium', launchOptions: chromiumWebGpuLaunchOptions },
    },
    {
      // The production build (vite build + vite preview): the playground with its precaching service worker.
      name: 'preview',
      testMatch: 'playground*.spec.ts',
      use: { browserName: 'chromium', launchOptions: chromiumWebGpuLaunchOptions, baseURL: E2E_PREVIEW_URL },
    },
  ],
  webServer: [
    {
      command: `npx vite --port ${E2E_PORT} --strictPort --host 127.0.0.1`,
      url: `${E2E_BASE_URL}/e2e/pages/gpu-smoke.html`,
      reuseExistingServer: !CI,
      timeout: 120_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      // `vite build`, not `npm run build`: the type-check is the suite's first step already.
      command: `npx vite build --logLevel error && npx vite preview --port ${E2E_PREVIEW_PORT} --strictPort --host 127.0.0.1`,
      url: `${E2E_PREVIEW_URL}/manifest.webmanifest`,
      reuseExistingServer: !CI,
      timeout: 600_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
  ],
});
