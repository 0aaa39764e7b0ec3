/**
 * GPU time per kernel of one m3web batch in Node + webgpu (timestamp queries, one pass per dispatch):
 *
 *   npx tsx tools/profile.ts [--model bert-base-shaped] [--batch 32] [--tokens 16] [--schedule workgroup|registers]
 *
 * The fixture comes from fixtures/models (npm run fixtures [-- --all]); texts are the bench's fixed-length
 * texts (tools/bench/run.ts): `tokens` WordPiece tokens each, specials included. The adapter is createNodeGpu's choice; set VK_ICD_FILENAMES to pick one
 * (e.g. /usr/lib/chromium/vk_swiftshader_icd.json, Chromium's SwiftShader). Without --schedule the
 * engine picks by adapter.
 */
import { parseArgs } from 'node:util';
import { Engine } from '../src/engine/engine.ts';
import type { KernelSchedule } from '../src/gpu/kernel.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../src/gpu/runtime.ts';
import { loadModel } from '../src/model/load.ts';
import { startModelServer } from '../tests/helpers/model-server.ts';
import { fixedLengthTexts } from './bench/run.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'bert-base-shaped' },
    batch: { type: 'string', default: '32' },
    tokens: { type: 'string', default: '16' },
    schedule: { type: 'string' },
  },
});
const B = Number(values.batch);
const server = await startModelServer();
const { device, adapter } = await createNodeGpu();
const rt = new GpuRuntime(device);
try {
  const engine = await Engine.create(rt, await loadModel(server.folderUrl(values.model!)), { weights: 'f32', maxBatchTokens: 1 << 20, schedule: values.schedule as KernelSchedule | undefined });
  const texts = fixedLengthTexts(Number(values.tokens), B);
  await engine.embed(texts); // warm-up
  const t0 = performance.now();
  await engine.embed(texts);
  const wall = performance.now() - t0;
  rt.profiling = true;
  await rt.takeProfile();
  await engine.embed(texts);
  const prof = await rt.takeProfile();
  rt.profiling = false;
  const total = [...prof.values()].reduce((a, b) => a + b, 0);
  const T = Math.max(...engine.model.tokenizer.encode(texts, engine.model.config.max_tokens).ids.map((s) => s.length));
  console.log(`${values.model}, batch ${B} × ${T} tokens, schedule ${engine.encoder.schedule}, adapter ${adapter.info.vendor}/${adapter.info.architecture} (${adapter.info.description})`);
  console.log(`wall ${wall.toFixed(0)} ms; GPU time ${(total / 1e6).toFixed(0)} ms (one timed pass per dispatch):`);
  for (const [name, ns] of [...prof].sort((a, b) => b[1] - a[1])) console.log(`  ${name.padEnd(12)} ${(ns / 1e6).toFixed(1).padStart(9)} ms  ${((100 * ns) / total).toFixed(1).padStart(5)}%`);
  engine.destroy();
} finally {
  device.destroy();
  await server.close();
}
