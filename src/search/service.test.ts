// SearchService (what workers/search.worker.ts exposes): the same results as the index it wraps, and the
// options that cannot cross a message boundary refused with typed errors.
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { SemanticIndex } from './semantic-index.ts';
import { SearchService } from './service.ts';
import { hashEmbedder, randomSparse, randomUnit, rng } from './testing.ts';

describe('SearchService', () => {
  const d = 64;
  const n = 2000;
  const v = randomUnit(n, d, 31);
  const r = rng(32);
  const docs = Array.from({ length: n }, (_, i) => ({ id: `d${i}`, dense: v.subarray(i * d, (i + 1) * d), sparse: randomSparse(r, 500, 10), meta: { i } }));
  const opts = { dims: d, storage: 'binary+int8' as const, outputs: ['dense' as const, 'sparse' as const] };

  it('create, add, search, export: equal to a SemanticIndex built the same way', async () => {
    const svc = new SearchService();
    expect((await svc.create(opts)).count).toBe(0);
    expect(await svc.add(docs, { chunkSize: 500 })).toEqual({ added: n, skipped: 0, count: n });
    const local = await SemanticIndex.create(opts);
    await local.add(docs, { chunkSize: 500 });
    const q = { dense: randomUnit(1, d, 33), sparse: randomSparse(r, 500, 6) };
    for (const o of [{ k: 10 }, { k: 5, mode: 'hybrid' as const }, { k: 10, funnel: false as const }]) {
      const { hits, ms } = await svc.search(q, o);
      expect(hits).toEqual(await local.search(q, o));
      expect(ms).toBeGreaterThanOrEqual(0);
    }
    const back = new SearchService();
    expect((await back.fromBytes(svc.toBytes())).count).toBe(n);
    expect((await back.search(q, { k: 10 })).hits).toEqual(await local.search(q, { k: 10 }));
    expect(await back.remove(['d0', 'nope'])).toBe(1);
    expect(back.stats().count).toBe(n - 1);
  });

  it('refuses what cannot cross postMessage, and calls before an index exists', async () => {
    const svc = new SearchService();
    expect(() => svc.stats()).toThrow(InvalidInputError);
    await expect(svc.create({ ...opts, embedder: hashEmbedder() } as never)).rejects.toThrow(/no embedder/);
    await svc.create(opts);
    await expect(svc.search('text' as never)).rejects.toThrow(InvalidInputError);
    await expect(svc.search({ dense: v.subarray(0, d) }, { filter: () => true } as never)).rejects.toThrow(/filter function cannot cross/);
  });
});
