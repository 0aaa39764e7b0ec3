import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadModel } from '../model/load.ts';
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
      expect(r.outBytes).toBeLessThan(r.sourceBytes / (bits === 8 ? 2 : 4)); // the download shrinks
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
