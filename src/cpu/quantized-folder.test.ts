import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadModel } from '../model/load.ts';
import { isQuantizedWeight, quantizationConfig, quantize, quantTensors } from '../model/quant.ts';
import { readSafetensors } from '../model/safetensors.ts';
import { toFloat32 } from '../model/tensor.ts';
import { writeSafetensors, type WritableTensor } from '../../tools/fixtures/safetensors-writer.ts';
import { loadModel as loadFolder } from '../node.ts';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { modelDir } from '../../tools/fixtures/paths.ts';
import { parityTexts } from '../../tools/parity/engine-cases.ts';
import { quantizeFolder } from '../../tools/quantize.ts';
import { startModelServer, type ModelServer } from '../../tests/helpers/model-server.ts';
import { quantizedModel } from '../../tests/helpers/quantized-model.ts';
import { createCpuEngine } from './index.ts';

// A pre-quantised folder (npm run quantize, src/model/QUANT.md) on the CPU backend: it loads, and runs exactly as the same
// matrices quantised in memory do.
let server: ModelServer;
beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
});
afterAll(async () => {
  await server?.close();
});

it('a folder written by npm run quantize loads on the CPU backend and gives exactly the in-memory quantised vectors', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'm3web-cpu-quant-'));
  try {
    const f32 = await loadModel(server.folderUrl('xlmr-tiny'));
    for (const bits of [8, 4] as const) {
      const r = await quantizeFolder(modelDir('xlmr-tiny'), bits, join(dir, String(bits)));
      // The download shrinks (q4 keeps all but the FFN input projections at int8, src/model/quant.ts Q4_4BIT_WEIGHTS).
      expect(r.outBytes).toBeLessThan(r.sourceBytes / (bits === 8 ? 2 : 2.2));
      const folder = await loadFolder(join(dir, String(bits)));
      expect(folder.quantized?.size).toBe(quantizedModel(f32, bits).quantized!.size);
      const [a, b] = [await createCpuEngine(folder), await createCpuEngine(quantizedModel(f32, bits))];
      const texts = parityTexts().slice(0, 5);
      const [x, y] = [await a.embed(texts, { outputs: ['dense', 'sparse', 'colbert'] }), await b.embed(texts, { outputs: ['dense', 'sparse', 'colbert'] })];
      expect([...x.embeddings]).toEqual([...y.embeddings]);
      expect(x.colbert!.map((c) => [...c.data])).toEqual(y.colbert!.map((c) => [...c.data]));
      expect(x.sparse!.map((s) => [...s.weights])).toEqual(y.sparse!.map((s) => [...s.weights]));
      a.destroy();
      b.destroy();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('a layout-version-1 q4 folder (every matrix 4-bit, no per-matrix bits) still loads and runs each matrix at 4 bits', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'm3web-cpu-quant-v1-'));
  try {
    // Written as version 1 did: every isQuantizedWeight matrix at 4 bits, only "<module>.shape" in __metadata__.
    cpSync(modelDir('bert-tiny'), dir, { recursive: true });
    const src = readSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
    const tensors: [string, WritableTensor][] = [];
    const metadata: Record<string, string> = { format: 'pt' };
    for (const [name, t] of src) {
      if (!isQuantizedWeight(name)) {
        tensors.push([name, t]);
        continue;
      }
      const q = quantTensors(name.slice(0, -'.weight'.length), quantize(toFloat32(t), t.shape[0], t.shape[1], 4));
      tensors.push(...q.tensors);
      metadata[`${name.slice(0, -'.weight'.length)}.shape`] = q.metadata[`${name.slice(0, -'.weight'.length)}.shape`];
    }
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors, metadata));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, quantization_config: quantizationConfig(4, 1) }));
    const folder = await loadFolder(dir);
    expect(folder.quantization).toEqual({ quant_method: 'm3web', bits: 4, group_size: 32, sym: false, version: 1 });
    expect([...folder.quantized!.values()].every((q) => q.bits === 4)).toBe(true);
    expect(folder.quantized!.size).toBe([...src.keys()].filter(isQuantizedWeight).length);
    // Exactly the vectors of the same all-4-bit matrices built in memory.
    const f32 = await loadModel(server.folderUrl('bert-tiny'));
    const all4 = { ...f32, weights: new Map([...f32.weights].filter(([n]) => !isQuantizedWeight(n))), quantized: new Map([...f32.weights].filter(([n]) => isQuantizedWeight(n)).map(([n, t]) => [n, quantize(toFloat32(t), t.shape[0], t.shape[1], 4)])) };
    const [a, b] = [await createCpuEngine(folder), await createCpuEngine(all4)];
    const texts = parityTexts().slice(0, 4);
    expect([...(await a.embed(texts, {})).embeddings]).toEqual([...(await b.embed(texts, {})).embeddings]);
    a.destroy();
    b.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
