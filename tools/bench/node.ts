/**
 * Node + `webgpu` (Dawn) rows of `npm run bench`: the same m3web engine outside the browser, on the
 * adapter createNodeGpu picks (a real GPU's Vulkan driver when there is one, else Mesa lavapipe with
 * native shader-f16, else SwiftShader). On this project's GPU-less machines that is lavapipe, which adds
 * what Chromium's SwiftShader cannot show: f16 weights read natively instead of as packed pairs.
 * These rows run on a different adapter from the browser rows, so they never enter the ratios.
 */
import { Engine } from '../../src/engine/engine.ts';
import { createNodeGpu } from '../../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../../src/gpu/runtime.ts';
import { loadModel } from '../../src/model/load.ts';
import { timeInterleaved } from './interleave.ts';

export interface NodeAdapter {
  vendor: string;
  architecture: string;
  description: string;
  features: string[];
  isFallbackAdapter: boolean;
  /** The Vulkan ICD createNodeGpu chose. */
  icd: string;
}

export interface NodeConfig {
  input: string;
  texts: string[];
}

/**
 * Times m3web f32, f16, int8 and q4 on each configuration in Node: one warm-up call each, then `runs` rounds
 * interleaved (f32, f16, int8, q4, f32, …). Returns ms per call keyed by configuration index and engine.
 */
export async function runNodeConfigs(modelUrl: string, configs: NodeConfig[], runs: number): Promise<{ adapter: NodeAdapter; dtypes: Record<string, string>; schedule: string; times: Record<string, number[]>[] }> {
  const { device, adapter, icd } = await createNodeGpu();
  const rt = new GpuRuntime(device);
  try {
    const model = await loadModel(modelUrl);
    const engines = {
      'm3web-f32': await Engine.create(rt, model, { weights: 'f32', maxBatchTokens: 32 * 512 }),
      'm3web-f16': await Engine.create(rt, model, { weights: 'f16', maxBatchTokens: 32 * 512 }),
      // Quantised at load from the same weights (issue #18): the matmuls dequantise in their inner loop.
      'm3web-int8': await Engine.create(rt, model, { weights: 'int8', maxBatchTokens: 32 * 512 }),
      'm3web-q4': await Engine.create(rt, model, { weights: 'q4', maxBatchTokens: 32 * 512 }),
    };
    const times: Record<string, number[]>[] = [];
    for (const c of configs)
      times.push(
        await timeInterleaved(
          Object.entries(engines).map(([key, e]) => ({ key, call: () => e.embed(c.texts) })),
          runs,
        ),
      );
    const i = adapter.info;
    const result = {
      adapter: { vendor: i.vendor, architecture: i.architecture, description: i.description, features: [...adapter.features].sort(), isFallbackAdapter: Boolean((i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter), icd },
      dtypes: Object.fromEntries(Object.entries(engines).map(([k, e]) => [k, e.dtype])),
      schedule: engines['m3web-f32'].encoder.schedule,
      times,
    };
    for (const e of Object.values(engines)) e.destroy();
    return result;
  } finally {
    device.destroy();
  }
}
