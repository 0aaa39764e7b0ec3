// The Node entry's openEngine: WebGPU when Node has an adapter, else (or when asked) the CPU backend,
// with the same Engine API and the same vectors (issue #15: the bulk CLI runs without a GPU adapter).
import { expect, it } from 'vitest';
import { openEngine } from '../src/node.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { modelDir } from '../tools/fixtures/paths.ts';
import { maxAbs } from '../tools/parity/goldens.ts';

it('openEngine on the CPU backend embeds a local folder like the WebGPU engine, at an early exit too', async () => {
  ensureFixtures();
  const texts = ['The quick brown fox.', 'Быстрая коричневая лиса', 'a'];
  const cpu = await openEngine(modelDir('xlmr-tiny'), { backend: 'cpu' });
  const gpu = await openEngine(modelDir('xlmr-tiny'), { backend: 'webgpu' });
  try {
    expect(cpu.backend).toBe('cpu');
    expect(cpu.icd).toBeNull();
    expect(gpu.backend).toBe('webgpu');
    for (const layers of [1, 3]) {
      const a = await cpu.embed(texts, { layers, outputs: ['dense', 'sparse', 'colbert'] });
      const b = await gpu.embed(texts, { layers, outputs: ['dense', 'sparse', 'colbert'] });
      expect(maxAbs(a.embeddings, b.embeddings)).toBeLessThanOrEqual(1e-4);
      a.colbert!.forEach((c, i) => expect(maxAbs(c.data, b.colbert![i].data)).toBeLessThanOrEqual(1e-4));
    }
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
}, 240_000);
