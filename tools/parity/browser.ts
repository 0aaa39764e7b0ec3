/**
 * Browser-side parity (run inside a worker by e2e/pages/parity.worker.ts): our WebGPU engine against
 * the CPU reference for every golden fixture with f32 and f16 weights, and onnxruntime-web on the
 * PyTorch-exported ONNX fixtures against our f32 engine.
 */
import { Engine } from '../../src/engine/engine.ts';
import { createDevice, GpuRuntime } from '../../src/gpu/runtime.ts';
import { loadModel } from '../../src/model/load.ts';
import { OrtEmbedService } from '../../src/client/ort-service.ts';
import { modelParityRows, parityTexts } from './engine-cases.ts';
import { maxAbs, minRowCosine, type ParityRow } from './goldens.ts';

export interface BrowserParity {
  adapter: string;
  rows: ParityRow[];
  notes: string[];
}

export async function browserParity(origin: string, fixtures: string[], onnxFixtures: string[]): Promise<BrowserParity> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter');
  const rt = new GpuRuntime(await createDevice(adapter));
  const rows: ParityRow[] = [];
  const notes: string[] = [];
  if (!rt.hasF16) notes.push('no shader-f16 on this adapter: f16 weights run as packed f16x2');
  for (const fixture of fixtures) rows.push(...(await modelParityRows(rt, await loadModel(`${origin}/models/${fixture}/`), fixture, 'webgpu-browser')));
  for (const fixture of onnxFixtures) {
    const model = await loadModel(`${origin}/models/${fixture}/`);
    const cfg = model.config;
    const H = cfg.hidden_size;
    const engine = await Engine.create(rt, model, { weights: 'f32' });
    // The client's own wasm fallback (src/client/ort-service.ts) on the PyTorch ONNX export.
    const onnx = new OrtEmbedService();
    await onnx.load(`${origin}/models/${fixture}/`, { onnx: `${origin}/fixtures/onnx/${fixture}/model.onnx`, wasmPaths: `${origin}/node_modules/onnxruntime-web/dist/` });
    const texts = parityTexts();
    const theirs = (await onnx.embed(texts)).embeddings;
    const ours = (await engine.embed(texts, {})).embeddings;
    rows.push({
      family: cfg.family,
      backend: 'onnxruntime-web',
      dtype: 'f32',
      layers: cfg.num_hidden_layers,
      dims: H,
      n: texts.length,
      cos_min: minRowCosine(theirs, ours, texts.length, H),
      max_abs: maxAbs(theirs, ours),
      output: 'dense',
      fixture,
      against: 'webgpu-browser f32',
    });
    engine.destroy();
  }
  notes.push('onnxruntime-web ran the wasm execution provider on the ONNX export of the same fixture');
  rt.device.destroy();
  return { adapter: `${adapter.info.vendor}/${adapter.info.architecture}`, rows, notes };
}

/** Embeds one text with the WebGPU engine (f32 weights) inside the worker: the long-input test. */
export async function browserEmbedOne(origin: string, fixture: string, text: string): Promise<{ embedding: Float32Array; truncated: number; ms: number }> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter');
  const rt = new GpuRuntime(await createDevice(adapter));
  const engine = await Engine.create(rt, await loadModel(`${origin}/models/${fixture}/`), { weights: 'f32' });
  const t0 = performance.now();
  const r = await engine.embed([text], {});
  const ms = performance.now() - t0;
  engine.destroy();
  rt.device.destroy();
  return { embedding: r.embeddings, truncated: r.truncated, ms };
}
