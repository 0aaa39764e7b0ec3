import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../src/gpu/runtime.ts';
import { loadModel, type LoadedModel } from '../src/model/load.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { REPO_ROOT } from '../tools/fixtures/paths.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

// The shipped m3-tiny (public/models/m3-tiny, trained by training/) in the engine: WebGPU on Node (Dawn) against
// the CPU reference at every trained exit (mrl_layers x mrl_dims), and both against the embeddings PyTorch gives
// for the same folder (tools/eval/golden-m3-tiny.json, written by `tools/eval/grid.py --golden`).
const MODELS = resolve(REPO_ROOT, 'public/models');
const GOLDEN = resolve(REPO_ROOT, 'tools/eval/golden-m3-tiny.json');
const COS_MIN = 0.999;

interface Golden {
  texts: string[];
  ids: number[][];
  pooling: 'mean' | 'cls';
  cases: { layers: number; dims: number; embeddings: number[][] }[];
}

function minCos(a: Float32Array, b: ArrayLike<number>, n: number, d: number): number {
  let worst = 1;
  for (let i = 0; i < n; i++) {
    let dot = 0,
      na = 0,
      nb = 0;
    for (let j = 0; j < d; j++) {
      const x = a[i * d + j],
        y = b[i * d + j];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    worst = Math.min(worst, dot / Math.sqrt(na * nb));
  }
  return worst;
}

let rt: GpuRuntime;
let server: ModelServer;
let model: LoadedModel;
const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Golden;

beforeAll(async () => {
  server = await startModelServer(MODELS);
  model = await loadModel(server.folderUrl('m3-tiny'));
  rt = new GpuRuntime((await createNodeGpu()).device);
});
afterAll(async () => {
  rt?.device.destroy();
  await server?.close();
});

describe('m3-tiny (shipped model)', () => {
  it('loads as m3bert with its trained grid, BGE-M3 heads and f16 weights under 25 MB', () => {
    expect(existsSync(resolve(MODELS, 'm3-tiny/model.safetensors'))).toBe(true);
    expect(model.config.family).toBe('m3bert');
    expect(model.config.mrl_layers).toEqual(golden.cases.map((c) => c.layers).filter((l, i, a) => a.indexOf(l) === i));
    expect(model.pooling.pooling).toBe(golden.pooling);
    expect([...model.heads.keys()].sort()).toEqual(['colbert_linear.bias', 'colbert_linear.weight', 'sparse_linear.bias', 'sparse_linear.weight']);
    expect([...model.weights.values()].every((t) => t.dtype === 'f16')).toBe(true);
    expect(readFileSync(resolve(MODELS, 'm3-tiny/model.safetensors')).byteLength).toBeLessThanOrEqual(25 * 1024 * 1024);
  });

  it('tokenizes exactly as the SentencePiece model PyTorch used', () => {
    const enc = model.tokenizer.encode(golden.texts, model.config.max_tokens);
    expect(enc.ids.map((s) => [...s])).toEqual(golden.ids);
  });

  it('WebGPU engine = CPU reference = PyTorch at every trained exit (cos >= 0.999)', async () => {
    const reference = new ReferenceEncoder(model);
    const engine = await Engine.create(rt, model, { weights: 'f16' });
    const n = golden.texts.length;
    const worst = { gpuCpu: 1, cpuTorch: 1, gpuTorch: 1 };
    for (const c of golden.cases) {
      const gpu = (await engine.embed(golden.texts, { layers: c.layers, dims: c.dims })).embeddings;
      const cpu = reference.embed(golden.texts, { layers: c.layers, dims: c.dims }).embeddings;
      const torch = c.embeddings.flat();
      const at = `layers=${c.layers} dims=${c.dims}`;
      const r = { gpuCpu: minCos(gpu, cpu, n, c.dims), cpuTorch: minCos(cpu, torch, n, c.dims), gpuTorch: minCos(gpu, torch, n, c.dims) };
      for (const [k, v] of Object.entries(r)) {
        expect(v, `${k} ${at}`).toBeGreaterThanOrEqual(COS_MIN);
        worst[k as keyof typeof worst] = Math.min(worst[k as keyof typeof worst], v);
      }
    }
    console.log(`m3-tiny parity over ${golden.cases.length} (layers, dims) cases, worst cosine: ${JSON.stringify(worst)}`);
    engine.destroy();
  }, 600_000); // pipeline compilation on a software adapter of a shared 2-core machine
});
