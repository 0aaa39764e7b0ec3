import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { startModelServer, type ModelServer } from '../../tests/helpers/model-server.ts';
import { ModelFetchError, UnsupportedModelError } from '../errors.ts';
import { ReferenceEncoder } from '../reference/model.ts';
import { loadModel, type LoadProgress } from './load.ts';
import { toFloat32, type RawTensor } from './tensor.ts';
import { writeSafetensors } from '../../tools/fixtures/safetensors-writer.ts';

let server: ModelServer;
beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
});
afterAll(() => server?.close());

describe('loadModel over HTTP', () => {
  it('loads an xlm-roberta fixture with bge-m3 heads from the hub URL layout and reports byte progress', async () => {
    const events: LoadProgress[] = [];
    const m = await loadModel({ hubId: 'm3web-test/xlmr-tiny', revision: 'main', endpoint: server.endpoint }, { onProgress: (p) => events.push(p) });
    expect(m.config.family).toBe('xlm-roberta');
    expect(m.pooling).toEqual({ pooling: 'cls', normalize: true, layerNormBeforeTruncate: false });
    expect(m.heads.get('colbert_linear.weight')!.shape).toEqual([52, 52]);
    expect(m.heads.get('sparse_linear.weight')!.shape).toEqual([1, 52]);
    expect(m.heads.get('sparse_linear.bias')!.dtype).toBe('f16');
    expect(server.requests).toContain('/m3web-test/xlmr-tiny/resolve/main/model.safetensors');
    // safetensors first (transformers' order): with model.safetensors present, no index nor pytorch_model.bin is asked for.
    expect(server.requests.filter((r) => r.includes('xlmr-tiny/') && /index\.json|pytorch_model/.test(r))).toEqual([]);
    expect(m.weightFiles).toEqual(['model.safetensors']);
    const dl = events.filter((e): e is Extract<LoadProgress, { phase: 'download' }> => e.phase === 'download' && e.file === 'model.safetensors');
    expect(dl.length).toBeGreaterThan(1);
    for (let i = 1; i < dl.length; i++) expect(dl[i].loaded).toBeGreaterThanOrEqual(dl[i - 1].loaded);
    expect(dl.at(-1)!.loaded).toBe(dl.at(-1)!.total);
    expect(events.at(-1)).toMatchObject({ phase: 'ready' });
  });

  it('loads m3BERT weights saved under the `model.` prefix and ignores its lm_head', async () => {
    const m = await loadModel(server.folderUrl('m3bert-tiny'));
    expect(m.config.family).toBe('m3bert');
    expect(m.config.mrl_layers).toEqual([1, 2, 3]);
    expect(m.weights.has('layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(m.weights.has('norm.weight')).toBe(true);
    expect(m.heads.size).toBe(0);
    expect(() => new ReferenceEncoder(m)).not.toThrow();
  });

  it('reads sharded checkpoints to the same weights as the single file', async () => {
    const [one, sharded] = await Promise.all([loadModel(server.folderUrl('bert-tiny')), loadModel(server.folderUrl('bert-tiny-sharded'))]);
    expect([...sharded.weights.keys()].sort()).toEqual([...one.weights.keys()].sort());
    for (const [k, t] of one.weights) expect(Buffer.compare(sharded.weights.get(k)!.data, t.data), k).toBe(0);
    expect(server.requests.filter((r) => r.includes('bert-tiny-sharded/model-0000'))).toHaveLength(3);
  });

  it('reads f16 checkpoints; their values are the f32 fixture rounded to f16', async () => {
    const [a, b] = await Promise.all([loadModel(server.folderUrl('xlmr-tiny')), loadModel(server.folderUrl('xlmr-tiny-f16'))]);
    const w32 = toFloat32(a.weights.get('encoder.layer.0.attention.self.query.weight')!);
    const w16 = toFloat32(b.weights.get('encoder.layer.0.attention.self.query.weight')!);
    expect(b.weights.get('encoder.layer.0.attention.self.query.weight')!.dtype).toBe('f16');
    let worst = 0;
    for (let i = 0; i < w32.length; i++) worst = Math.max(worst, Math.abs(w32[i] - w16[i]) / Math.max(Math.abs(w32[i]), 6e-5));
    expect(worst).toBeLessThanOrEqual(2 ** -11);
  });

  it('rejects an HTML page served where config.json was expected with a typed error', async () => {
    await expect(loadModel(`${server.endpoint}/html/anything/`)).rejects.toThrow(ModelFetchError);
    await expect(loadModel(`${server.endpoint}/html/anything/`)).rejects.toThrow(/HTML/);
  });

  it('rejects a folder without config.json with a 404 naming the file', async () => {
    const err = await loadModel(server.folderUrl('no-such-model')).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFetchError);
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/config\.json/);
  });

  it('takes bge-m3 heads from safetensors names when the checkpoint carries them (no .pt fetched)', async () => {
    const base = server.folderUrl('xlmr-tiny');
    const plain = await loadModel(base);
    const withHeads = writeSafetensors([...plain.weights, ...[...plain.heads].map(([k, t]) => [k, t] as [string, RawTensor])]);
    const fetched: string[] = [];
    const fetchImpl: typeof fetch = async (input) => {
      const url = String(input);
      fetched.push(url);
      if (url.endsWith('/model.safetensors')) return new Response(withHeads, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(withHeads.byteLength) } });
      return fetch(input);
    };
    const m = await loadModel(base, { fetchImpl });
    expect([...m.heads.keys()].sort()).toEqual(['colbert_linear.bias', 'colbert_linear.weight', 'sparse_linear.bias', 'sparse_linear.weight']);
    expect(Buffer.compare(m.heads.get('colbert_linear.weight')!.data, plain.heads.get('colbert_linear.weight')!.data)).toBe(0);
    expect(m.weights.has('colbert_linear.weight')).toBe(false);
    expect(fetched.some((u) => u.endsWith('.pt'))).toBe(false);
  });

  it('rejects unsupported model types before downloading weights', async () => {
    const fetchImpl: typeof fetch = async (input) => {
      const url = String(input);
      if (url.endsWith('config.json')) return new Response(JSON.stringify({ model_type: 't5' }), { headers: { 'content-type': 'application/json' } });
      return fetch(input);
    };
    await expect(loadModel(server.folderUrl('xlmr-tiny'), { fetchImpl })).rejects.toThrow(UnsupportedModelError);
  });
});

describe('tokenization with the model max length', () => {
  it('truncates long texts keeping <s> … </s>, reports how many were cut, and pads with the attention mask', async () => {
    const enc = new ReferenceEncoder(await loadModel(server.folderUrl('xlmr-tiny')));
    const long = 'word '.repeat(600);
    const { batch, truncated } = enc.tokenize(['short text', long]);
    expect(truncated).toBe(1);
    expect(batch.T).toBe(512);
    const row1 = [...batch.inputIds.subarray(512, 1024)];
    expect(row1[0]).toBe(0);
    expect(row1[511]).toBe(2);
    const n0 = [...batch.attentionMask.subarray(0, 512)].reduce((a, b) => a + b, 0);
    expect([...batch.inputIds.subarray(n0, 512)].every((id) => id === 1)).toBe(true);
    expect([...batch.inputIds.subarray(0, n0)].at(-1)).toBe(2);
    expect(enc.embed(['short text', long]).truncated).toBe(1);
  });
});
