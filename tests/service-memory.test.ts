// Issue #10 item 6 / #11 "one memory model": after a GPU load the worker keeps no JS copy of the weights.
// Measured on the bert-base-shaped fixture (12 × 384, 132.9 MB of f32 weights), JS heap + ArrayBuffers
// before and after load, each after a full GC.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { statSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EmbedService } from '../src/engine/service.ts';
import { createNodeGpu, type NodeGpu } from '../src/gpu/node-gpu.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { modelDir } from '../tools/fixtures/paths.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let server: ModelServer;
let gpu: NodeGpu;
beforeAll(async () => {
  ensureFixtures({ only: ['bert-base-shaped'] });
  server = await startModelServer();
  gpu = await createNodeGpu();
}, 300_000);
afterAll(async () => {
  gpu?.device.destroy();
  await server?.close();
});

function jsBytes(): number {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

it('JS heap + ArrayBuffers grow by < 25% of the weight bytes after a GPU load of bert-base-shaped', async () => {
  const weightBytes = statSync(`${modelDir('bert-base-shaped')}/model.safetensors`).size;
  const svc = new EmbedService({ gpu: gpu.gpu });
  const before = jsBytes();
  await svc.load(server.folderUrl('bert-base-shaped'), { backend: 'webgpu', weights: 'f32' });
  const grown = jsBytes() - before;
  console.log(`[service-memory] weights ${(weightBytes / 1e6).toFixed(1)} MB; JS heap + ArrayBuffers grew ${(grown / 1e6).toFixed(1)} MB (${((100 * grown) / weightBytes).toFixed(1)}%) after load`);
  expect(grown).toBeLessThan(0.25 * weightBytes);
  // It still embeds: the weights live on the GPU only.
  expect((await svc.embed(['still works'], {})).dims).toBe(384);
}, 300_000);
