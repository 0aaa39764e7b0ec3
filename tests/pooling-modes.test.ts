import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pool as hostPool } from '../src/cpu/host-ops.ts';
import { createCpuEngine } from '../src/cpu/index.ts';
import { Engine } from '../src/engine/engine.ts';
import { pool as postPool } from '../src/engine/postprocess.ts';
import { UnsupportedModelError } from '../src/errors.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../src/gpu/runtime.ts';
import { seeded } from '../src/gpu/kernels/testing.ts';
import { POOLING_MODES, parsePooling, type Pooling } from '../src/model/config.ts';
import { loadModel, type LoadedModel } from '../src/model/load.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { pool } from '../src/reference/pooling.ts';
import type { EncoderBatch } from '../src/tokenize/tokenizer.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { maxAbs, minRowCosine } from '../tools/parity/goldens.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

// sentence-transformers Pooling modes beyond CLS / mean (sentence_transformers/models/Pooling.py).
const NEW_MODES = ['max', 'lasttoken', 'weightedmean', 'mean_sqrt_len_tokens'] as const satisfies readonly Pooling[];

describe('reference pooling against hand-computed values (B=2, T=3, H=2)', () => {
  // (B, T, H): row 0 has 3 real tokens, row 1 has 2 (its last position is padding and must not count).
  const x = Float32Array.from([1, 2, 3, -4, 5, 6, -1, 0.5, 2, -3, 7, 8]);
  const mask = Uint8Array.from([1, 1, 1, 1, 1, 0]);
  const want: Record<Pooling, number[]> = {
    cls: [1, 2, -1, 0.5],
    mean: [9 / 3, 4 / 3, 1 / 2, -2.5 / 2],
    max: [5, 6, 2, 0.5],
    lasttoken: [5, 6, 2, -3],
    // weights t + 1: row 0 (1·1 + 2·3 + 3·5) / 6, (1·2 − 2·4 + 3·6) / 6; row 1 (−1 + 2·2) / 3, (0.5 − 2·3) / 3
    weightedmean: [22 / 6, 12 / 6, 3 / 3, -5.5 / 3],
    mean_sqrt_len_tokens: [9 / Math.sqrt(3), 4 / Math.sqrt(3), 1 / Math.sqrt(2), -2.5 / Math.sqrt(2)],
  };
  for (const [mode, v] of Object.entries(want)) {
    it(mode, () => expect(pool(x, mask, 2, 3, 2, mode as Pooling)).toEqual(Float32Array.from(v)));
  }
  it('an all-padding row: max is -1e9 (padding is set to -1e9 before the max), lasttoken and the means are zeros', () => {
    const none = new Uint8Array(6);
    expect(pool(x, none, 2, 3, 2, 'max')).toEqual(new Float32Array(4).fill(-1e9));
    for (const mode of ['lasttoken', 'mean', 'weightedmean', 'mean_sqrt_len_tokens'] as const) expect(pool(x, none, 2, 3, 2, mode)).toEqual(new Float32Array(4));
  });
});

describe('production CPU pooling (ONNX backend postprocess, CPU backend host-ops) equals the reference', () => {
  // (B, T, H) = (4, 9, 5), right padding with lengths 9, 1, 0, 6 (an all-padding row included).
  const [B, T, H, lengths] = [4, 9, 5, [9, 1, 0, 6]];
  const x = seeded(B * T * H, 7, -2, 2);
  const mask = new Uint8Array(B * T);
  lengths.forEach((n, b) => mask.fill(1, b * T, b * T + n));
  const batch: EncoderBatch = { B, T, inputIds: new Int32Array(B * T), attentionMask: mask };
  for (const mode of POOLING_MODES) {
    it(mode, () => {
      const want = pool(x, mask, B, T, H, mode);
      expect(postPool(x, mask, B, T, H, mode)).toEqual(want);
      expect(hostPool(x, batch, lengths, H, mode, -1)).toEqual(want);
    });
  }
});

describe('1_Pooling/config.json modes', () => {
  const modules = [{ type: 'sentence_transformers.models.Transformer' }, { type: 'sentence_transformers.models.Pooling' }];
  it('reads every single-mode config, by boolean key or by pooling_mode', () => {
    const keys = { max: 'pooling_mode_max_tokens', lasttoken: 'pooling_mode_lasttoken', weightedmean: 'pooling_mode_weightedmean_tokens', mean_sqrt_len_tokens: 'pooling_mode_mean_sqrt_len_tokens' };
    for (const mode of NEW_MODES) {
      expect(parsePooling(modules, { word_embedding_dimension: 8, pooling_mode_cls_token: false, [keys[mode]]: true }).pooling).toBe(mode);
      expect(parsePooling(modules, { pooling_mode: mode }).pooling).toBe(mode);
    }
  });
  it('concatenated modes are an UnsupportedModelError naming them', () => {
    expect(() => parsePooling(modules, { pooling_mode_mean_tokens: true, pooling_mode_max_tokens: true })).toThrow(UnsupportedModelError);
    expect(() => parsePooling(modules, { pooling_mode_mean_tokens: true, pooling_mode_max_tokens: true })).toThrow(/pooling_mode_mean_tokens, pooling_mode_max_tokens/);
  });
});

describe('pooling modes end to end (bert-tiny): WebGPU and CPU backends match the CPU reference', () => {
  let rt: GpuRuntime;
  let server: ModelServer;
  let model: LoadedModel;
  // Mixed lengths in one padded batch: every row but the longest has padding.
  const texts = ['a', 'the quick brown fox jumps over the lazy dog', 'pooling modes', 'one two three four five six'];

  beforeAll(async () => {
    ensureFixtures();
    server = await startModelServer();
    rt = new GpuRuntime((await createNodeGpu()).device);
    model = await loadModel(server.folderUrl('bert-tiny'));
  }, 300_000);
  afterAll(async () => {
    rt?.device.destroy();
    await server?.close();
  });

  it('max, lasttoken, weightedmean, mean_sqrt_len_tokens: cos ≥ 0.99999, max_abs ≤ 1e-4 (unnormalised); each differs from mean', { timeout: 300_000 }, async () => {
    const ref = new ReferenceEncoder(model);
    const gpu = await Engine.create(rt, model, { weights: 'f32' });
    const cpu = await createCpuEngine(model);
    try {
      const H = model.config.hidden_size;
      const mean = ref.embed(texts, { pooling: 'mean', normalize: false }).embeddings;
      for (const pooling of NEW_MODES) {
        const want = ref.embed(texts, { pooling, normalize: false }).embeddings; // (4, H)
        expect(maxAbs(want, mean), `${pooling} vs mean`).toBeGreaterThan(1e-2);
        for (const [name, engine] of [
          ['webgpu', gpu],
          ['cpu', cpu],
        ] as const) {
          const r = await engine.embed(texts, { pooling, normalize: false });
          const got = r.embeddings; // (4, H)
          expect(r.batches, 'the mixed lengths share one padded batch').toBe(1);
          expect(new Set(r.tokens).size, 'mixed lengths').toBe(texts.length);
          expect(got.length, `${name} ${pooling}`).toBe(texts.length * H);
          expect(maxAbs(got, want), `${name} ${pooling}`).toBeLessThanOrEqual(1e-4);
          expect(minRowCosine(got, want, texts.length, H), `${name} ${pooling}`).toBeGreaterThanOrEqual(0.99999);
        }
      }
    } finally {
      gpu.destroy();
      cpu.destroy();
    }
  });
});
