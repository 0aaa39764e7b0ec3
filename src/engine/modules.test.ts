import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError, UnsupportedModelError } from '../errors.ts';
import { createNodeGpu } from '../gpu/node-gpu.ts';
import { GpuRuntime } from '../gpu/runtime.ts';
import { loadModel, type LoadedModel } from '../model/load.ts';
import { ReferenceEncoder } from '../reference/model.ts';
import { denseStack, truncateAndNormalize } from '../reference/pooling.ts';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { GOLDENS_DIR, MODELS_DIR, REPO_ROOT } from '../../tools/fixtures/paths.ts';
import { startModelServer, type ModelServer } from '../../tests/helpers/model-server.ts';
import { Engine } from './engine.ts';
import { EmbedService } from './service.ts';
import { applyModules } from './modules.ts';

/**
 * sentence-transformers module stacks and prompts on every backend. The Dense golden comes from PyTorch with
 * sentence-transformers' formulas (tools/goldens/dense_golden.py: Dense = act(linear(x)), Normalize =
 * F.normalize, truncate_dim before it); the module folders it wrote are fixtures/modules/xlmr-dense.
 */
const golden = JSON.parse(readFileSync(resolve(GOLDENS_DIR, 'dense-modules.json'), 'utf8'));
const f32 = (b64: string) => new Float32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer);
const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

let tmp: string;
let server: ModelServer;
let rt: GpuRuntime;
const TEXTS = ['The quick brown fox jumps over the lazy dog.', 'ok', 'Быстрая коричневая лиса'];

function folder(name: string, modules: unknown[] | null, extra: Record<string, unknown> = {}): void {
  const dir = join(tmp, name);
  cpSync(resolve(MODELS_DIR, 'xlmr-tiny'), dir, { recursive: true });
  if (modules) writeFileSync(join(dir, 'modules.json'), JSON.stringify(modules));
  for (const [file, json] of Object.entries(extra)) writeFileSync(join(dir, file), JSON.stringify(json));
}
const ST = (type: string, path: string, idx: number) => ({ idx, name: String(idx), path, type: `sentence_transformers.models.${type}` });
const DENSE_STACK = [ST('Transformer', '', 0), ST('Pooling', '1_Pooling', 1), ST('Dense', '2_Dense', 2), ST('Dense', '3_Dense', 3), ST('Normalize', '4_Normalize', 4)];

beforeAll(async () => {
  ensureFixtures();
  tmp = mkdtempSync(join(tmpdir(), 'm3web-modules-'));
  folder('dense', DENSE_STACK);
  cpSync(resolve(REPO_ROOT, 'fixtures/modules/xlmr-dense'), join(tmp, 'dense'), { recursive: true });
  folder('prompts', null, { 'config_sentence_transformers.json': { prompts: { query: 'query: ', passage: 'passage: ' }, default_prompt_name: null } });
  folder('default-prompt', null, { 'config_sentence_transformers.json': { prompts: { query: 'query: ', document: '' }, default_prompt_name: 'query' } });
  folder('word-weights', [ST('Transformer', '', 0), ST('WordWeights', '1_WordWeights', 1)]);
  folder('max-pool', null, { '1_Pooling/config.json': { word_embedding_dimension: 52, pooling_mode_mean_tokens: true, pooling_mode_max_tokens: true } });
  server = await startModelServer(tmp);
  rt = new GpuRuntime((await createNodeGpu()).device);
});
afterAll(async () => {
  for (const e of engines.values()) (await e).destroy();
  rt?.device.destroy();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** One WebGPU engine per model for the whole file (pipeline warm-up is the slow part on SwiftShader). */
const engines = new Map<LoadedModel, Promise<Engine>>();
async function gpuEmbed(m: LoadedModel, texts: string[], opts: Parameters<Engine['embed']>[1] = {}): Promise<Float32Array> {
  if (!engines.has(m)) engines.set(m, Engine.create(rt, m));
  return (await (await engines.get(m)!).embed(texts, opts)).embeddings;
}

describe('Dense + Normalize modules', () => {
  it('match the PyTorch golden (pool → Dense → Dense → truncate → normalise) in the engine hook and the CPU reference', async () => {
    const m = await loadModel(server.folderUrl('dense'));
    expect(m.modules.dense.map((d) => [d.path, d.in_features, d.out_features, d.activation, d.bias !== null])).toEqual([
      ['2_Dense', 52, 24, 'tanh', true],
      ['3_Dense', 24, 20, 'identity', false],
    ]);
    const x = f32(golden.x);
    for (const [dims, want] of [
      [20, f32(golden.full)],
      [8, f32(golden.d8)],
    ] as const) {
      const o = { layers: 3, dims, pooling: 'cls' as const, normalize: true, layerNormBeforeTruncate: false };
      expect(maxAbs(applyModules(m, x, 5, o), want), `engine dims ${dims}`).toBeLessThan(1e-6);
      expect(maxAbs(truncateAndNormalize(denseStack(x, 5, m.modules.dense), 5, 20, { dims, normalize: true }), want), `reference dims ${dims}`).toBeLessThan(1e-6);
    }
  });

  it('run on WebGPU and the CPU reference alike, with early exit and Matryoshka dims counted on the Dense output', async () => {
    const m = await loadModel(server.folderUrl('dense'));
    const ref = new ReferenceEncoder(m);
    for (const opts of [{}, { layers: 2, dims: 8 }]) {
      const want = ref.embed(TEXTS, opts);
      expect(want.dims).toBe(opts.dims ?? 20);
      const got = await gpuEmbed(m, TEXTS, opts);
      expect(got.length).toBe(TEXTS.length * want.dims);
      expect(maxAbs(got, want.embeddings), JSON.stringify(opts)).toBeLessThan(1e-5);
      for (let i = 0; i < TEXTS.length; i++) expect(Math.hypot(...got.subarray(i * want.dims, (i + 1) * want.dims))).toBeCloseTo(1, 5);
    }
    // dims past the Dense output are refused (20, not the encoder's 52).
    await expect(gpuEmbed(m, TEXTS, { dims: 21 })).rejects.toThrow(InvalidInputError);
  }, 120_000);

  it('an unsupported module or pooling mode is an UnsupportedModelError naming it', async () => {
    await expect(loadModel(server.folderUrl('word-weights'))).rejects.toThrow(/sentence_transformers\.models\.WordWeights/);
    await expect(loadModel(server.folderUrl('word-weights'))).rejects.toBeInstanceOf(UnsupportedModelError);
    const e = await loadModel(server.folderUrl('max-pool')).catch((err) => err);
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(String(e)).toMatch(/pooling_mode_max_tokens/);
  });
});

describe('prompts from config_sentence_transformers.json', () => {
  it("prompt: 'query' equals embedding the prefixed text (WebGPU and CPU reference); literal prompts too", async () => {
    const m = await loadModel(server.folderUrl('prompts'));
    expect(m.modules.prompts).toEqual({ query: 'query: ', passage: 'passage: ' });
    const prefixed = (p: string) => TEXTS.map((t) => p + t);
    expect(await gpuEmbed(m, TEXTS, { prompt: 'query' })).toEqual(await gpuEmbed(m, prefixed('query: ')));
    const ref = new ReferenceEncoder(m);
    expect(ref.embed(TEXTS, { prompt: 'passage' }).embeddings).toEqual(ref.embed(prefixed('passage: ')).embeddings);
    expect(ref.embed(TEXTS, { prompt: 'Represent this: ' }).embeddings).toEqual(ref.embed(prefixed('Represent this: ')).embeddings);
    expect(ref.embed(TEXTS, { prompt: 'query' }).embeddings).not.toEqual(ref.embed(TEXTS).embeddings);
  }, 120_000);

  it('the worker reports the prompts and the default one in ModelInfo (the playground shows them)', async () => {
    const svc = new EmbedService({ gpu: (await createNodeGpu()).gpu });
    const a = await svc.load(server.folderUrl('prompts'), { backend: 'webgpu' });
    expect([a.prompts, a.defaultPrompt]).toEqual([{ query: 'query: ', passage: 'passage: ' }, null]);
    const b = await svc.load(server.folderUrl('default-prompt'), { backend: 'webgpu' });
    expect([b.prompts, b.defaultPrompt]).toEqual([{ query: 'query: ', document: '' }, 'query']);
  }, 120_000);

  it('default_prompt_name applies when no prompt is given; passage falls back to document; an undefined name is refused', async () => {
    const m = await loadModel(server.folderUrl('default-prompt'));
    expect(m.modules.defaultPromptName).toBe('query');
    const ref = new ReferenceEncoder(m);
    const plain = ref.embed(TEXTS, { prompt: '' }).embeddings;
    expect(ref.embed(TEXTS).embeddings).toEqual(
      ref.embed(
        TEXTS.map((t) => `query: ${t}`),
        { prompt: '' },
      ).embeddings,
    );
    expect(ref.embed(TEXTS, { prompt: 'passage' }).embeddings).toEqual(plain);
    const bare = await loadModel(server.folderUrl('prompts'));
    expect(() => new ReferenceEncoder(bare).embed(TEXTS, { prompt: 'document' })).toThrow(/defines no "document" prompt/);
  });
});
