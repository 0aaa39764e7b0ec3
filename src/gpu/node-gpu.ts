// Real WebGPU in Node through Dawn (npm `webgpu`), for fast kernel unit tests and f16 coverage.
// Node-only: never import this from browser code (it touches process/fs and loads a native addon).
//
// Driver choice (Vulkan ICD), unless the caller already set VK_ICD_FILENAMES / VK_DRIVER_FILES:
//   1. the system default, when a non-Mesa-software ICD is installed (a real GPU), if it gives a non-fallback adapter;
//   2. Mesa lavapipe (/usr/share/vulkan/icd.d/lvp_icd.json), only if its adapter has shader-f16 (Mesa >= 25);
//   3. SwiftShader from Debian's Chromium (/usr/lib/chromium/vk_swiftshader_icd.json), same as the browser.
// Setting VK_ICD_FILENAMES in-process works: the Vulkan loader reads it at each vkCreateInstance, which Dawn does
// when a `create()` instance first discovers adapters (checked here, also switching between ICDs in one process).
// EXCEPT in worker_threads (vitest pool 'threads'): there process.env is a per-thread copy that native code never
// sees, so the ICD must be chosen before the process starts (export VK_ICD_FILENAMES, or use pool 'forks').
//
// The Vulkan loader itself (libvulkan.so.1) must be loadable. Debian's Chromium ships one in /usr/lib/chromium; when
// the system has none (no `libvulkan1` package), it is preloaded with RTLD_NODELETE so Dawn's later
// dlopen("libvulkan.so.1") finds it by soname. LD_LIBRARY_PATH would not work here: glibc reads it at process start.
import { existsSync, readdirSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { createDevice } from './runtime.ts';

export const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
export const CHROMIUM_VULKAN_LOADER = '/usr/lib/chromium/libvulkan.so.1';
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

export interface NodeGpu {
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  /** The ICD used: a JSON path, the caller's VK_ICD_FILENAMES/VK_DRIVER_FILES value, or 'system'. */
  icd: string;
}

type WebGpuModule = { create(options: string[]): GPU; globals: object };

interface Selected {
  gpu: GPU;
  icd: string;
}

let selection: Promise<Selected> | null = null;
let vulkanLoader: string | null | undefined;

/** Loads libvulkan.so.1 (system first, then Chromium's copy) and keeps it resident. Returns where it came from. */
export function ensureVulkanLoader(): string | null {
  if (vulkanLoader !== undefined) return vulkanLoader;
  vulkanLoader = null;
  if (process.platform !== 'linux') return vulkanLoader;
  const RTLD_NOW = 2;
  const RTLD_NODELETE = 0x1000; // glibc; not exposed in os.constants.dlopen
  for (const lib of ['libvulkan.so.1', CHROMIUM_VULKAN_LOADER]) {
    if (lib.startsWith('/') && !existsSync(lib)) continue;
    try {
      process.dlopen({ exports: {} }, lib, RTLD_NOW | RTLD_NODELETE);
      vulkanLoader = lib; // (not reached: it is no Node addon)
      break;
    } catch (e) {
      // "Module did not self-register" means dlopen succeeded; NODELETE keeps it loaded after Node's dlclose.
      if (/self-register/.test(String((e as Error).message))) {
        vulkanLoader = lib;
        break;
      }
    }
  }
  return vulkanLoader;
}

function hasHardwareIcd(): boolean {
  for (const dir of ICD_DIRS) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    // Mesa's lavapipe is software; everything else (nvidia, radeon, intel, ...) may be a real GPU.
    if (names.some((n) => n.endsWith('.json') && !n.startsWith('lvp_icd'))) return true;
  }
  return false;
}

function setIcd(icd: string | null): void {
  if (icd === null) delete process.env.VK_ICD_FILENAMES;
  else process.env.VK_ICD_FILENAMES = icd;
}

async function select(): Promise<Selected> {
  ensureVulkanLoader();
  const preset = process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES;
  type Candidate = { icd: string | null; label: string; accept: (a: GPUAdapter) => boolean };
  const candidates: Candidate[] = [];
  if (!isMainThread) {
    // Setting process.env here would not reach the Vulkan loader: take what the real environment gives.
    candidates.push({ icd: null, label: preset || 'system', accept: () => true });
  } else if (preset) {
    candidates.push({ icd: process.env.VK_ICD_FILENAMES ?? null, label: preset, accept: () => true });
  } else {
    if (hasHardwareIcd()) candidates.push({ icd: null, label: 'system', accept: (a) => !a.info.isFallbackAdapter });
    // Stock Mesa 22 lavapipe is rejected by Dawn (null adapter); require f16 so only Mesa >= 25 is taken.
    if (existsSync(LAVAPIPE_ICD)) candidates.push({ icd: LAVAPIPE_ICD, label: LAVAPIPE_ICD, accept: (a) => a.features.has('shader-f16') });
    if (existsSync(SWIFTSHADER_ICD)) candidates.push({ icd: SWIFTSHADER_ICD, label: SWIFTSHADER_ICD, accept: () => true });
    if (candidates.length === 0) candidates.push({ icd: null, label: 'system', accept: () => true });
  }

  // Import only after the environment is prepared (the addon loads Dawn, which loads Vulkan lazily).
  const webgpu = (await import('webgpu')) as unknown as WebGpuModule;
  Object.assign(globalThis, webgpu.globals);

  const tried: string[] = [];
  for (const c of candidates) {
    if (!preset && isMainThread) setIcd(c.icd);
    const gpu = webgpu.create([]);
    const adapter = await gpu.requestAdapter();
    if (adapter && c.accept(adapter)) return { gpu, icd: c.label };
    tried.push(`${c.label}: ${adapter ? `rejected (${adapter.info.vendor}/${adapter.info.architecture})` : 'no adapter'}`);
  }
  if (!preset && isMainThread) delete process.env.VK_ICD_FILENAMES;
  throw new Error(
    `No usable WebGPU adapter in Node (Vulkan loader: ${vulkanLoader ?? 'not found'}). Tried ${tried.join('; ')}. ` +
      (isMainThread
        ? `Install Chromium (its SwiftShader ICD) or set VK_ICD_FILENAMES to a Vulkan ICD JSON.`
        : `This is a worker thread, where process.env changes do not reach the Vulkan loader: start the process with ` + `VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (or ${LAVAPIPE_ICD} with Mesa >= 25), or run in vitest pool 'forks'.`),
  );
}

/**
 * A fresh device on the selected Node WebGPU adapter. The driver choice is made once per process;
 * every call gets its own adapter and device (an adapter can create only one device). Destroy the device when done.
 */
export async function createNodeGpu(): Promise<NodeGpu> {
  selection ??= select().catch((e) => {
    selection = null;
    throw e;
  });
  const { gpu, icd } = await selection;
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error(`requestAdapter() returned null for ${icd}`);
  // Same features and raised limits as in the browser.
  return { gpu, adapter, device: await createDevice(adapter), icd };
}
