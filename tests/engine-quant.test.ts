import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.ts';
import { InvalidInputError } from '../src/errors.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { GpuRuntime } from '../src/gpu/runtime.ts';
import { loadModel, type LoadedModel } from '../src/model/load.ts';
import { quantizationConfig } from '../src/model/quant.ts';
import { loadModel as loadNode } from '../src/node.ts';
import { quantizeFolder } from '../tools/quantize.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { bgeM3ParityRows, engineParityRows, engineThreshold, parityTexts } from '../tools/parity/engine-cases.ts';
import { minRowCosine } from '../tools/parity/goldens.ts';
import { threshold } from '../tools/parity.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

// Weight-only quantisation (issue #18) on Node WebGPU: int8 and q4 weights quantised at load against the f32
// CPU reference of the same fixture, on every family, at every exit (the fixtures have 3 blocks) × three widths.
// The fixtures' weights are random: these bounds test the engine's arithmetic, not a quantised model's quality.
const FIXTURE_DIR = new URL('../fixtures/models/', import.meta.url).pathname;
let rt: GpuRuntime;
let server: ModelServer;
const models = new Map<string, LoadedModel>();
// The CPU reference is the slow side (minutes on a loaded 2-core machine): one per fixture, each call's result
// kept, so int8 and q4 compare against the same reference outputs computed once.
const references = new Map<string, ReferenceEncoder>();
function referenceOf(fixture: string, model: LoadedModel): ReferenceEncoder {
  if (!references.has(fixture)) {
    const ref = new ReferenceEncoder(model);
    const memo = <A extends unknown[], R>(f: (...a: A) => R) => {
      const seen = new Map<string, R>();
      return (...a: A): R => {
        const k = JSON.stringify(a);
        if (!seen.has(k)) seen.set(k, f(...a));
        return seen.get(k)!;
      };
    };
    ref.embed = memo(ref.embed.bind(ref));
    ref.bgeM3 = memo(ref.bgeM3.bind(ref));
    references.set(fixture, ref);
  }
  return references.get(fixture)!;
}
const TIMEOUT = 900_000;
/**
 * The issue's bounds: int8 cos ≥ 0.999, q4 cos ≥ 0.99. q4 meets its bound on these random-weight fixtures because
 * it stores only the FFN input projections at 4 bits and the rest at int8 (src/model/quant.ts Q4_4BIT_WEIGHTS: with
 * every matrix at 4 bits the fixtures measured 0.946–0.974, each class alone costing 0.003–0.019).
 */
const FIXTURE_COS_MIN = { int8: engineThreshold('int8').cos_min, q4: engineThreshold('q4').cos_min };
const load = async (name: string) => models.get(name) ?? models.set(name, await loadModel(server.folderUrl(name), { keepWeights: true })).get(name)!;

beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
  rt = new GpuRuntime((await createNodeGpu()).device);
});
afterAll(async () => {
  rt?.device.destroy();
  await server?.close();
});

describe.each([
  ['bert-tiny', 'int8'],
  ['bert-tiny', 'q4'],
  ['xlmr-tiny', 'int8'],
  ['xlmr-tiny', 'q4'],
  ['m3bert-tiny', 'int8'],
  ['m3bert-tiny', 'q4'],
] as const)('quantised engine parity: %s with %s weights', (fixture, storage) => {
  it(
    'stays within the issue bound of the f32 CPU reference at every exit and width (and, with heads, on dense / ColBERT)',
    async () => {
      const model = await load(fixture);
      const reference = referenceOf(fixture, model);
      const progress: { done: number; total: number }[] = [];
      const engine = await Engine.create(rt, model, { weights: storage, maxBatchTokens: 1500, onProgress: (p) => progress.push(p) });
      expect(engine.dtype).toBe(storage);
      // One report per quantised weight: 6 (bert/xlm-r) or 7 (m3BERT) matmul weights per block, the word table, colbert_linear.
      const cfg = model.config;
      const perBlock = cfg.family === 'm3bert' ? 7 : 6;
      expect(progress.map((p) => p.done)).toEqual(Array.from({ length: progress.length }, (_, i) => i + 1));
      expect(progress.at(-1)!.total).toBe(perBlock * cfg.num_hidden_layers + 1 + (model.heads.size ? 1 : 0));
      expect(progress.at(-1)!.done).toBe(progress.at(-1)!.total);
      const meta = { family: cfg.family, fixture, backend: 'webgpu-node', dtype: engine.dtype, L: cfg.num_hidden_layers, H: cfg.hidden_size, mrlDims: cfg.mrl_dims };
      const rows = await engineParityRows(meta, engine, reference);
      if (model.heads.size) rows.push(...(await bgeM3ParityRows(meta, engine, reference)));
      console.log(`${fixture} ${storage}: ${rows.map((r) => `${r.output}@L${r.layers}/d${r.dims} ${r.output === 'sparse' ? `max_abs ${r.max_abs.toExponential(2)}` : r.cos_min.toFixed(6)}`).join(', ')}`);
      const t = { cos_min: FIXTURE_COS_MIN[storage] };
      expect(rows.length).toBe(model.heads.size ? 15 : 9);
      for (const r of rows) {
        if (r.output === 'sparse') expect(r.max_abs, `sparse layers=${r.layers}`).toBeLessThanOrEqual(threshold(r).max_abs!);
        else expect(r.cos_min, `${r.output} layers=${r.layers} dims=${r.dims}`).toBeGreaterThanOrEqual(t.cos_min);
      }
      // Not equal to f32 either: the weights really are quantised.
      expect(Math.min(...rows.filter((r) => r.output !== 'sparse').map((r) => r.cos_min))).toBeLessThan(0.999999);
      engine.destroy();
    },
    TIMEOUT,
  );
});

describe('quantised engine on trained weights: m3-tiny', () => {
  it(
    'meets the issue bounds against the f32 engine at its exits 2 / 4 / 6 (int8 cos ≥ 0.999, q4 ≥ 0.99)',
    async () => {
      const model = await loadNode(new URL('../public/models/m3-tiny/', import.meta.url).pathname, { keepWeights: true });
      const texts = [...parityTexts().slice(0, 5), 'The quick brown fox jumps over the lazy dog.', 'Quantised weights shrink the download.', 'Wie spät ist es?', '今日はいい天気ですね'];
      const f32 = await Engine.create(rt, model, { weights: 'f32' });
      for (const storage of ['int8', 'q4'] as const) {
        const engine = await Engine.create(rt, model, { weights: storage });
        const seen: string[] = [];
        for (const layers of [2, 4, 6]) {
          for (const dims of [32, 128]) {
            const want = (await f32.embed(texts, { layers, dims })).embeddings;
            const got = (await engine.embed(texts, { layers, dims })).embeddings;
            const cos = minRowCosine(got, want, texts.length, dims);
            seen.push(`L${layers}/d${dims} ${cos.toFixed(5)}`);
            expect(cos, `${storage} layers=${layers} dims=${dims}`).toBeGreaterThanOrEqual(engineThreshold(storage).cos_min);
          }
        }
        console.log(`m3-tiny ${storage} vs f32 engine: ${seen.join(', ')}`);
        engine.destroy();
      }
      f32.destroy();
    },
    TIMEOUT,
  );
});

describe('quantised engine behaviour', () => {
  it(
    'a word table split into row chunks embeds exactly as one table',
    async () => {
      const model = await load('xlmr-tiny');
      const texts = ['a short text', 'and a second, somewhat longer text than the first one'];
      for (const storage of ['int8', 'q4'] as const) {
        const whole = await Engine.create(rt, model, { weights: storage });
        // 120-column rows: int8 codes 120 B, q4 60 B per row; 16 KiB bindings split the word table many ways (and cap batches at 26 tokens).
        const split = await Engine.create(rt, model, { weights: storage, maxBindingBytes: 16384 });
        const a = (await whole.embed(texts, { layers: 3 })).embeddings;
        const b = (await split.embed(texts, { layers: 3 })).embeddings;
        // Chunked, word + pos + type is summed in another order ((pos + type) + word for rows of later chunks): f32 rounding only.
        expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThanOrEqual(1e-6);
        whole.destroy();
        split.destroy();
      }
    },
    TIMEOUT,
  );

  it.each([8, 4] as const)(
    '%i bits: a pre-quantised folder (npm run quantize) loads its codes directly and embeds exactly as quantising at load',
    async (bits) => {
      const storage = bits === 8 ? 'int8' : 'q4';
      const out = mkdtempSync(join(tmpdir(), 'm3web-quant-'));
      try {
        for (const fixture of ['xlmr-tiny', 'm3bert-tiny']) {
          await quantizeFolder(join(FIXTURE_DIR, fixture), bits, join(out, fixture));
          const pre = await loadNode(join(out, fixture));
          expect(pre.quantization).toEqual(quantizationConfig(bits));
          // Every quantised weight arrived as codes (none as floats): the word table and each block's matmuls.
          const words = pre.config.family === 'm3bert' ? 'embed_tokens.weight' : 'embeddings.word_embeddings.weight';
          expect(pre.quantized!.get(words)!.rows).toBe(pre.config.vocab_size);
          expect(pre.weights.has(words)).toBe(false);
          const texts = ['a short text', 'and a second, somewhat longer text than the first one'];
          const progress: boolean[] = [];
          const a = await Engine.create(rt, pre, { onProgress: (p) => progress.push(p.prequantized) });
          expect(a.dtype).toBe(storage); // 'auto' takes the folder's bits
          expect(progress.length).toBeGreaterThan(0);
          expect(progress.every((p) => p)).toBe(true);
          const b = await Engine.create(rt, await load(fixture), { weights: storage });
          const outputs = pre.heads.size ? (['dense', 'sparse', 'colbert'] as const) : (['dense'] as const);
          const ra = await a.embed(texts, { layers: 2, outputs: [...outputs] });
          const rb = await b.embed(texts, { layers: 2, outputs: [...outputs] });
          expect(Array.from(ra.embeddings)).toEqual(Array.from(rb.embeddings));
          if (pre.heads.size) expect(Array.from(ra.colbert![1].data)).toEqual(Array.from(rb.colbert![1].data));
          await expect(Engine.create(rt, pre, { weights: bits === 8 ? 'q4' : 'f32' })).rejects.toThrow(/pre-quantised/);
          a.destroy();
          b.destroy();
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    TIMEOUT,
  );

  it('rejects an unknown weights option with InvalidInputError naming the choices', async () => {
    await expect(Engine.create(rt, await load('bert-tiny'), { weights: 'int4' as never })).rejects.toThrow(/"auto" \| "f32" \| "f16" \| "int8" \| "q4"/);
    await expect(Engine.create(rt, await load('bert-tiny'), { weights: 'q4', onProgress: 3 as never })).rejects.toThrow(InvalidInputError);
  });
});
