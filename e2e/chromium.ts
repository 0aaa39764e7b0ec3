// Launch options for Debian's Chromium with WebGPU on SwiftShader (see ../shared/docs/webgpu-testing.md).
// Never use Playwright's bundled browsers here (`npx playwright install` cannot download).
import type { LaunchOptions } from '@playwright/test';

export const CHROMIUM_EXECUTABLE: string = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Flags that every m3web e2e launch uses. No --enable-features=... (it replaces Playwright's list),
 *  no --disable-software-rasterizer, no --user-data-dir (Playwright makes a fresh profile). */
export const BASE_CHROMIUM_ARGS: readonly string[] = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Without this flag requestAdapter() returns null: CPU (SwiftShader) adapters are blocklisted. */
export const UNSAFE_WEBGPU_ARG = '--enable-unsafe-webgpu';
/** Fills adapter.info.description (and other developer-only details). */
export const WEBGPU_DEVELOPER_ARG = '--enable-webgpu-developer-features';

/** WebGPU on (SwiftShader adapter, isFallbackAdapter true, subgroups + timestamp-query, no shader-f16). */
export const chromiumWebGpuLaunchOptions: LaunchOptions = {
  executablePath: CHROMIUM_EXECUTABLE,
  args: [...BASE_CHROMIUM_ARGS, UNSAFE_WEBGPU_ARG, WEBGPU_DEVELOPER_ARG],
};

/** Same browser with WebGPU effectively off (navigator.gpu exists, requestAdapter() resolves null):
 *  for fallback-path tests (e.g. onnxruntime-web wasm). */
export const chromiumNoWebGpuLaunchOptions: LaunchOptions = {
  executablePath: CHROMIUM_EXECUTABLE,
  args: [...BASE_CHROMIUM_ARGS, WEBGPU_DEVELOPER_ARG],
};

/** Port the e2e vite dev server listens on (127.0.0.1). */
export const E2E_PORT = Number(process.env.M3WEB_E2E_PORT || 5174);
export const E2E_BASE_URL = `http://127.0.0.1:${E2E_PORT}`;
