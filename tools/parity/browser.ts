/**
 * Browser-side parity (run inside a worker by e2e/pages/parity.worker.ts): our WebGPU engine against
 * the CPU reference for every golden fixture with f32 and f16 weights, and onnxruntime-web on the
 * PyTorch-exported ONNX fixtures against our f32 engine.
 */
import { Engine } from '../../src/engine/engine.ts';
import { createDevice, GpuRuntime } from '../../src/gpu/runtime.ts';
import { loadModel } from '../../src/model/load.ts';
import { createOrtGraphEngine } from '../../src/cpu/index.ts';
import type { EngineEmbedding } from '../../src/engine/engine.ts';
import type { SparseVector } from '../../src/engine/postprocess.ts';
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
    // Backend 'ort-wasm' (src/cpu/graph-encoder.ts) on the PyTorch ONNX export, heads from the model folder.
    const graphModel = await loadModel(`${origin}/models/${fixture}/`, { heads: true, encoderWeights: false });
    const bytes = new Uint8Array(await (await fetch(`${origin}/fixtures/onnx/${fixture}/model.onnx`)).arrayBuffer());
    const onnx = await createOrtGraphEngine(graphModel, bytes, { wasmPaths: `${origin}/node_modules/onnxruntime-web/dist/` });
    const texts = parityTexts();
    const outputs: ('dense' | 'sparse' | 'colbert')[] = onnx.encoder.colbertWidth ? ['dense', 'sparse', 'colbert'] : ['dense'];
    const theirs = await onnx.embed(texts, { outputs });
    const ours = await engine.embed(texts, { outputs });
    const row = { family: cfg.family, backend: 'onnxruntime-web', dtype: 'f32', layers: cfg.num_hidden_layers, n: texts.length, fixture, against: 'webgpu-browser f32' };
    rows.push({ ...row, dims: H, cos_min: minRowCosine(theirs.embeddings, ours.embeddings, texts.length, H), max_abs: maxAbs(theirs.embeddings, ours.embeddings), output: 'dense' });
    if (theirs.colbert && ours.colbert) {
      const flat = (r: EngineEmbedding) => Float32Array.from(r.colbert!.flatMap((b) => [...b.data]));
      const d = theirs.colbert[0].dim;
      const a = flat(theirs);
      rows.push({ ...row, dims: d, cos_min: minRowCosine(a, flat(ours), a.length / d, d), max_abs: maxAbs(a, flat(ours)), output: 'colbert' });
      const s = theirs.sparse!.map((v, i) => sparseCompare(v, ours.sparse![i]));
      rows.push({ ...row, dims: 1, cos_min: Math.min(...s.map((x) => x.cos)), max_abs: Math.max(...s.map((x) => x.maxAbs)), output: 'sparse' });
    }
    onnx.destroy();
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

/** Cosine and max |Δ| of two lexical-weight maps (token id → weight), a missing id counting as 0. */
function sparseCompare(a: SparseVector, b: SparseVector): { cos: number; maxAbs: number } {
  const m = new Map<number, [number, number]>();
  a.ids.forEach((id, i) => m.set(id, [a.weights[i], 0]));
  b.ids.forEach((id, i) => m.set(id, [m.get(id)?.[0] ?? 0, b.weights[i]]));
  let dot = 0;
  let na = 0;
  let nb = 0;
  let maxAbs = 0;
  for (const [x, y] of m.values()) {
    dot += x * y;
    na += x * x;
    nb += y * y;
    maxAbs = Math.max(maxAbs, Math.abs(x - y));
  }
  return { cos: na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb), maxAbs };
}
