// The quantised model cache's ordering and atomicity (src/model/quant-cache.ts) on an in-memory Cache Storage
// stand-in: the source's weights are deleted only after the copy's manifest is committed and reads back; a quota
// error or an abort mid-write leaves the source whole and no copy; a copy missing a file is never read; the copy
// loads through the loader with no request for the source's weights and gives the very matrices that were written.
// (Real Cache Storage, the service and WebGPU: e2e/quant-cache.spec.ts.)
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODELS_DIR } from '../../tools/fixtures/paths.ts';
import { QuotaError } from '../errors.ts';
import { listCachedModels, modelBaseOf, type CacheLike } from './file-cache.ts';
import { loadModel, type LoadedModel } from './load.ts';
import { dropQuantCopies, findQuantCopy, keepSourceWeights, QUANT_CACHE_MANIFEST, quantCacheBase, quantCopyTensors, quantizeLoaded, sourceWeightUrls, writeQuantCopy } from './quant-cache.ts';
import { resolveModelSource } from './source.ts';

type Entry = { status: number; headers: Headers; body: Uint8Array };

/** Cache Storage's semantics that matter here: put commits only a body read to its end; match/delete/keys by URL. */
class MemoryCache implements CacheLike {
  readonly entries = new Map<string, Entry>();
  readonly log: string[] = [];
  /** Makes the put of a URL matching this fail (as a full quota does) after reading part of the body. */
  failPut: RegExp | null = null;
  async match(req: RequestInfo | URL): Promise<Response | undefined> {
    const e = this.entries.get(String(req instanceof Request ? req.url : req));
    return e && new Response(e.status === 200 ? e.body.slice() : null, { status: e.status, headers: e.headers });
  }
  async put(req: RequestInfo | URL, res: Response): Promise<void> {
    const url = String(req instanceof Request ? req.url : req);
    if (this.failPut?.test(url)) {
      await res.body?.getReader().read();
      throw new DOMException('quota exceeded', 'QuotaExceededError');
    }
    const body = new Uint8Array(await res.arrayBuffer()); // rejects if the stream errors: nothing is committed
    this.entries.set(url, { status: res.status, headers: new Headers(res.headers), body });
    this.log.push(`put ${url}`);
  }
  async delete(req: RequestInfo | URL): Promise<boolean> {
    const url = String(req instanceof Request ? req.url : req);
    this.log.push(`delete ${url}`);
    return this.entries.delete(url);
  }
  async keys(): Promise<readonly Request[]> {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
}

const BASE = 'https://models.example/models/';

/** A server for fixture folders, and cachedFetch's behaviour on top of it (hit, else fetch and store; 404s remembered). */
function cachingFetch(cache: MemoryCache, network: string[]): typeof fetch {
  return (async (input: RequestInfo | URL) => {
    const url = String(input);
    const hit = await cache.match(url);
    if (hit) return hit;
    network.push(url);
    const file = join(MODELS_DIR, decodeURIComponent(url.slice(BASE.length)));
    if (!existsSync(file)) {
      await cache.put(url, new Response(null, { status: 404, headers: { 'x-m3web-absent': '1' } }));
      return new Response('not found', { status: 404 });
    }
    const bytes = readFileSync(file);
    await cache.put(url, new Response(bytes, { status: 200, headers: { 'content-length': String(bytes.length) } }));
    return new Response(bytes, { status: 200, headers: { 'content-length': String(bytes.length) } });
  }) as typeof fetch;
}

const noSettle = async () => undefined;

async function quantisedLoad(fixture: string, cache: MemoryCache, network: string[]): Promise<{ model: LoadedModel; config: Record<string, unknown> }> {
  const model = await loadModel(`${BASE}${fixture}/`, { fetchImpl: cachingFetch(cache, network), heads: true });
  const config = JSON.parse(readFileSync(join(MODELS_DIR, fixture, 'config.json'), 'utf8')) as Record<string, unknown>;
  await quantizeLoaded(model, 'q4');
  return { model, config };
}

const weightUrls = (cache: MemoryCache, fixture: string) => [...cache.entries.keys()].filter((u) => u.startsWith(`${BASE}${fixture}/`) && !u.includes('.m3web-cache') && /\.(safetensors|pt)$/.test(u) && cache.entries.get(u)!.status === 200);

describe('quantised model cache', () => {
  it('commits the copy (manifest last) before deleting the source weights, then loads it with no weight download', async () => {
    const cache = new MemoryCache();
    const network: string[] = [];
    const { model, config } = await quantisedLoad('xlmr-tiny', cache, network);
    const source = resolveModelSource(`${BASE}xlmr-tiny/`);
    const weights = sourceWeightUrls(source, model.weightFiles);
    expect(weightUrls(cache, 'xlmr-tiny').sort()).toEqual([`${BASE}xlmr-tiny/colbert_linear.pt`, `${BASE}xlmr-tiny/model.safetensors`, `${BASE}xlmr-tiny/sparse_linear.pt`]);
    cache.log.length = 0;
    const report = await writeQuantCopy(cache, source, 'q4', quantCopyTensors(model), config, { sourceWeights: weights, settle: noSettle });

    const base = quantCacheBase(source, 'q4');
    expect(base).toBe(`${BASE}xlmr-tiny/.m3web-cache/q4/`);
    const manifestAt = cache.log.indexOf(`put ${base}${QUANT_CACHE_MANIFEST}`);
    const firstDelete = cache.log.findIndex((l) => l.startsWith(`delete ${BASE}xlmr-tiny/`) && !l.includes('.m3web-cache'));
    expect(manifestAt).toBeGreaterThan(cache.log.indexOf(`put ${base}model.safetensors`));
    expect(manifestAt).toBeGreaterThan(cache.log.indexOf(`put ${base}config.json`));
    expect(firstDelete).toBeGreaterThan(manifestAt);
    expect(report.deleted.sort()).toEqual([`${BASE}xlmr-tiny/colbert_linear.pt`, `${BASE}xlmr-tiny/model.safetensors`, `${BASE}xlmr-tiny/sparse_linear.pt`]);
    expect(weightUrls(cache, 'xlmr-tiny')).toEqual([]); // no source weight file is left…
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'modules.json']) expect(cache.entries.get(`${BASE}xlmr-tiny/${f}`)?.status).toBe(200); // …the rest is kept
    expect(Object.keys(report.files).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(report.bytes).toBe(report.files['config.json'] + report.files['model.safetensors']);
    expect(report.files['model.safetensors']).toBeLessThan(0.5 * readFileSync(join(MODELS_DIR, 'xlmr-tiny/model.safetensors')).length);

    // The next load: the copy, with no request for any weight file (or anything else: all is cached).
    const copy = await findQuantCopy(cache, source, 'q4');
    expect(copy).not.toBeNull();
    network.length = 0;
    const again = await loadModel(copy!, { fetchImpl: cachingFetch(cache, network), heads: true });
    expect(network).toEqual([]);
    expect(again.quantization).toEqual(model.quantization);
    expect(again.weightFiles).toEqual(['model.safetensors']);
    expect([...again.quantized!.keys()].sort()).toEqual([...model.quantized!.keys()].sort());
    for (const [name, q] of model.quantized!) {
      const r = again.quantized!.get(name)!;
      expect([r.bits, r.rows, r.cols]).toEqual([q.bits, q.rows, q.cols]);
      expect(Buffer.from(r.qweight.buffer).equals(Buffer.from(q.qweight.buffer))).toBe(true);
      expect(Array.from(r.scales)).toEqual(Array.from(q.scales));
      if (q.qzeros) expect(Buffer.from(r.qzeros!.buffer).equals(Buffer.from(q.qzeros.buffer))).toBe(true);
      else expect(r.qzeros).toBeNull(); // a weight q4 storage keeps at 8 bits (quant.ts weightBits)
    }
    for (const [name, t] of model.weights) expect(Buffer.from(again.weights.get(name)!.data).equals(Buffer.from(t.data))).toBe(true);
    expect([...again.heads.keys()].sort()).toEqual([...model.heads.keys()].sort());
    expect(again.tokenizer.encode(['hello world'], 16).ids).toEqual(model.tokenizer.encode(['hello world'], 16).ids);
  });

  it('a quota error mid-write leaves the source weights and no copy; the load after still reads the source', async () => {
    const cache = new MemoryCache();
    const { model, config } = await quantisedLoad('xlmr-tiny', cache, []);
    const source = resolveModelSource(`${BASE}xlmr-tiny/`);
    const before = weightUrls(cache, 'xlmr-tiny').sort();
    for (const fail of [/\.m3web-cache\/q4\/model\.safetensors$/, /\.m3web-cache\/q4\/config\.json$/, /m3web-cache\.json$/]) {
      cache.failPut = fail;
      await expect(writeQuantCopy(cache, source, 'q4', quantCopyTensors(model), config, { sourceWeights: sourceWeightUrls(source, model.weightFiles), settle: noSettle })).rejects.toBeInstanceOf(QuotaError);
      expect(weightUrls(cache, 'xlmr-tiny').sort()).toEqual(before);
      expect([...cache.entries.keys()].filter((u) => u.includes('.m3web-cache'))).toEqual([]);
      expect(await findQuantCopy(cache, source, 'q4')).toBeNull();
    }
  });

  it('an abort before the manifest leaves the source whole; a copy missing a file is not read', async () => {
    const cache = new MemoryCache();
    const { model, config } = await quantisedLoad('xlmr-tiny', cache, []);
    const source = resolveModelSource(`${BASE}xlmr-tiny/`);
    const before = weightUrls(cache, 'xlmr-tiny').sort();
    const ctl = new AbortController();
    const orig = cache.put.bind(cache);
    cache.put = async (req, res) => {
      await orig(req, res);
      if (String(req).endsWith('model.safetensors')) ctl.abort(new DOMException('tab closed', 'AbortError'));
    };
    await expect(writeQuantCopy(cache, source, 'q4', quantCopyTensors(model), config, { sourceWeights: sourceWeightUrls(source, model.weightFiles), signal: ctl.signal, settle: noSettle })).rejects.toThrow(/tab closed/);
    expect(weightUrls(cache, 'xlmr-tiny').sort()).toEqual(before);
    expect(await findQuantCopy(cache, source, 'q4')).toBeNull();

    // A copy whose manifest is in but one of its files went missing (or changed size) is ignored.
    cache.put = orig;
    await writeQuantCopy(cache, source, 'q4', quantCopyTensors(model), config, { sourceWeights: [], settle: noSettle });
    expect(await findQuantCopy(cache, source, 'q4')).not.toBeNull();
    const st = `${quantCacheBase(source, 'q4')}model.safetensors`;
    const saved = cache.entries.get(st)!;
    cache.entries.set(st, { ...saved, headers: new Headers({ 'content-length': String(saved.body.length - 1) }) });
    expect(await findQuantCopy(cache, source, 'q4')).toBeNull();
    cache.entries.delete(st);
    expect(await findQuantCopy(cache, source, 'q4')).toBeNull();
    // Another model's (or dtype's) manifest never answers for this one.
    expect(await findQuantCopy(cache, source, 'int8')).toBeNull();
    expect(await findQuantCopy(cache, resolveModelSource(`${BASE}bert-tiny/`), 'q4')).toBeNull();
  });

  it('waits for the source stores still streaming in before deleting them', async () => {
    const cache = new MemoryCache();
    const { model, config } = await quantisedLoad('xlmr-tiny', cache, []);
    const source = resolveModelSource(`${BASE}xlmr-tiny/`);
    const order: string[] = [];
    const settle = async (urls: readonly string[]) => {
      order.push(`settle ${urls.length}`);
      await new Promise((r) => setTimeout(r, 5));
      order.push('settled');
    };
    const orig = cache.delete.bind(cache);
    cache.delete = async (req) => (order.push('delete'), orig(req));
    await writeQuantCopy(cache, source, 'q4', quantCopyTensors(model), config, { sourceWeights: sourceWeightUrls(source, model.weightFiles), settle });
    expect(order.slice(order.indexOf('settle 3'))).toEqual(['settle 3', 'settled', 'delete', 'delete', 'delete']);
  });

  it('shards a large copy (index + a remembered 404 for model.safetensors) and loads it', async () => {
    const cache = new MemoryCache();
    const { model, config } = await quantisedLoad('bert-tiny-sharded', cache, []);
    const source = resolveModelSource(`${BASE}bert-tiny-sharded/`);
    const report = await writeQuantCopy(cache, source, 'q4', quantCopyTensors(model), config, { sourceWeights: sourceWeightUrls(source, model.weightFiles), settle: noSettle, maxShardBytes: 200_000 });
    const shards = Object.keys(report.files).filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(1);
    expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    expect(report.deleted.sort()).toEqual(model.weightFiles.map((f) => `${BASE}bert-tiny-sharded/${f}`).sort());
    expect(cache.entries.get(`${BASE}bert-tiny-sharded/model.safetensors.index.json`)?.status).toBe(200); // a config file: kept
    const network: string[] = [];
    const again = await loadModel((await findQuantCopy(cache, source, 'q4'))!, { fetchImpl: cachingFetch(cache, network) });
    expect(network).toEqual([]);
    expect(again.weightFiles).toEqual(shards);
    expect(again.quantized!.size).toBe(model.quantized!.size);
  });

  it('one weights copy per model: a q4 copy replaces an int8 one; a float load drops both once its weights are stored', async () => {
    const cache = new MemoryCache();
    const network: string[] = [];
    const model = await loadModel(`${BASE}xlmr-tiny/`, { fetchImpl: cachingFetch(cache, network), heads: true });
    const config = JSON.parse(readFileSync(join(MODELS_DIR, 'xlmr-tiny/config.json'), 'utf8')) as Record<string, unknown>;
    const source = resolveModelSource(`${BASE}xlmr-tiny/`);
    const int8 = { ...model, weights: new Map(model.weights), heads: new Map(model.heads) };
    await quantizeLoaded(int8, 'int8');
    await writeQuantCopy(cache, source, 'int8', quantCopyTensors(int8), config, { sourceWeights: sourceWeightUrls(source, model.weightFiles), settle: noSettle });
    expect(await findQuantCopy(cache, source, 'int8')).not.toBeNull();
    const q4 = { ...model, weights: new Map(model.weights), heads: new Map(model.heads) };
    await quantizeLoaded(q4, 'q4');
    const r = await writeQuantCopy(cache, source, 'q4', quantCopyTensors(q4), config, { sourceWeights: sourceWeightUrls(source, model.weightFiles), settle: noSettle });
    expect(await findQuantCopy(cache, source, 'int8')).toBeNull();
    expect(r.deleted.some((u) => u.includes('.m3web-cache/int8/'))).toBe(true);

    // A float load while the source weights are not (yet) all stored keeps the copy…
    expect(await keepSourceWeights(cache, source, sourceWeightUrls(source, model.weightFiles), noSettle)).toEqual([]);
    expect(await findQuantCopy(cache, source, 'q4')).not.toBeNull();
    // …and drops it once they are (the load downloaded them again).
    await loadModel(`${BASE}xlmr-tiny/`, { fetchImpl: cachingFetch(cache, network), heads: true });
    const gone = await keepSourceWeights(cache, source, sourceWeightUrls(source, model.weightFiles), noSettle);
    expect(gone).toContain(`${BASE}xlmr-tiny/.m3web-cache/q4/${QUANT_CACHE_MANIFEST}`);
    expect(await findQuantCopy(cache, source, 'q4')).toBeNull();
    expect(await dropQuantCopies(cache, source)).toEqual([]);
  });

  it('groups the copy with its model folder (storage panel)', async () => {
    expect(modelBaseOf(`${BASE}xlmr-tiny/.m3web-cache/q4/model.safetensors`)).toBe(`${BASE}xlmr-tiny/`);
    expect(modelBaseOf('https://cdn.example/a/b/.m3web-cache/int8/config.json')).toBe('https://cdn.example/a/b/');
    expect(modelBaseOf('https://huggingface.co/BAAI/bge-m3/resolve/main/.m3web-cache/q4/model.safetensors')).toBe('https://huggingface.co/BAAI/bge-m3/resolve/main/');
    expect(await listCachedModels()).toEqual([]); // Node: no Cache Storage
  });
});
