// SemanticIndex on hand-made vectors: every mode and storage against score.ts's brute force.
import { describe, expect, it } from 'vitest';
import { IndexFormatError, IndexMismatchError, InvalidInputError } from '../errors.ts';
import { colbertScore, computeScore, denseScore, lexicalMatchingScore } from './score.ts';
import { SemanticIndex } from './semantic-index.ts';
import { bruteDense, near, normalise, overlap, randomColbert, randomSparse, randomUnit, rng } from './testing.ts';
import type { DenseStorage, Doc } from './types.ts';

const row = (v: Float32Array, d: number, i: number) => v.subarray(i * d, (i + 1) * d);

async function denseIndex(vectors: Float32Array, d: number, storage: DenseStorage): Promise<SemanticIndex> {
  const idx = await SemanticIndex.create({ dims: d, storage });
  const n = vectors.length / d;
  await idx.add(Array.from({ length: n }, (_, i) => ({ id: `d${i}`, dense: row(vectors, d, i), meta: { i } })));
  return idx;
}

/** Corpus with all three representations, and one query per 10 docs planted near a doc. */
function fullCorpus(n: number, d: number, seed: number): { docs: Doc[]; queries: Doc[] } {
  const r = rng(seed);
  const dense = randomUnit(n, d, seed + 1);
  const docs = Array.from({ length: n }, (_, i) => ({ id: `d${i}`, dense: row(dense, d, i), sparse: randomSparse(r, 300, 12), colbert: randomColbert(r, 3 + (i % 5), 8), meta: { i, even: i % 2 === 0 } }));
  const queries = Array.from({ length: 6 }, (_, j) => ({ id: `q${j}`, dense: near(docs[j * 7].dense, 1, r), sparse: randomSparse(r, 300, 8), colbert: randomColbert(r, 4, 8) }));
  return { docs, queries };
}

describe('dense', () => {
  const d = 48;
  const vectors = randomUnit(3000, d, 7);
  const queries = randomUnit(20, d, 8);

  it('f32 exact: the brute-force top-10 with denseScore scores, bit for bit', async () => {
    const idx = await denseIndex(vectors, d, 'f32');
    for (let j = 0; j < 20; j++) {
      const q = row(queries, d, j);
      const hits = await idx.search({ dense: q }, { k: 10 });
      expect(hits.map((h) => h.id)).toEqual(bruteDense(q, vectors, d, 10).map((i) => `d${i}`));
      for (const h of hits) {
        expect(h.score).toBe(denseScore(q, row(vectors, d, (h.meta as { i: number }).i)));
        expect(h.scores).toEqual({ dense: h.score, sparse: null, colbert: null });
      }
    }
  });

  it('int8: top-10 overlap with exact f32 ≥ 0.9 on random data, scores within 0.01', async () => {
    const idx = await denseIndex(vectors, d, 'int8');
    let ov = 0;
    for (let j = 0; j < 20; j++) {
      const q = row(queries, d, j);
      const hits = await idx.search({ dense: q }, { k: 10 });
      ov +=
        overlap(
          hits.map((h) => h.id),
          bruteDense(q, vectors, d, 10).map((i) => `d${i}`),
        ) / 20;
      for (const h of hits) expect(Math.abs(h.score - denseScore(q, row(vectors, d, (h.meta as { i: number }).i)))).toBeLessThan(0.01);
    }
    console.log(`[search] int8 top-10 overlap with f32 over 20 random queries: ${ov.toFixed(3)}`);
    expect(ov).toBeGreaterThanOrEqual(0.9);
  });

  it('binary+int8: the funnel rescored with int8 finds planted neighbours; with a shortlist of every row it equals the exact scan of its (centred) int8 codes', async () => {
    const r = rng(3);
    const n = 2000;
    const centres = randomUnit(20, d, 11);
    const v = new Float32Array(n * d);
    for (let i = 0; i < n; i++) v.set(near(row(centres, d, i % 20), 0.6, r), i * d);
    const idx = await denseIndex(v, d, 'binary+int8');
    const exact8 = await denseIndex(v, d, 'int8');
    let rec = 0;
    for (let j = 0; j < 20; j++) {
      const q = near(row(centres, d, j), 0.6, r);
      const funnel = await idx.search({ dense: q }, { k: 10 }); // default: binary first pass, ×200 shortlist
      const truth = bruteDense(q, v, d, 10).map((i) => `d${i}`);
      rec +=
        overlap(
          funnel.map((h) => h.id),
          truth,
        ) / 20;
      // A shortlist of every row is the exact scan of the same codes (int8 of v − centre here, so its scores
      // differ from the int8 storage's by rounding only).
      const all = await idx.search({ dense: q }, { k: 10, funnel: { first: 'binary', multiplier: n } });
      const noFunnel = await idx.search({ dense: q }, { k: 10, funnel: false });
      expect(all.map((h) => [h.id, h.score])).toEqual(noFunnel.map((h) => [h.id, h.score]));
      const int8 = await exact8.search({ dense: q }, { k: 10 });
      expect(
        overlap(
          noFunnel.map((h) => h.id),
          int8.map((h) => h.id),
        ),
      ).toBeGreaterThanOrEqual(0.8);
      for (const h of noFunnel) expect(h.score).toBeCloseTo(denseScore(q, row(v, d, Number(h.id.slice(1)))), 2);
    }
    console.log(`[search] binary+int8 funnel (×200) recall@10 vs f32 on clustered data: ${rec.toFixed(3)}`);
    expect(rec).toBeGreaterThanOrEqual(0.97);
  });

  it('prefix funnel: a shortlist of every row is exact; Matryoshka-like vectors keep recall', async () => {
    const idx = await denseIndex(vectors, d, 'f32');
    const q = row(queries, d, 0);
    const exact = await idx.search({ dense: q }, { k: 10 });
    expect(await idx.search({ dense: q }, { k: 10, funnel: { first: 'prefix', prefixDims: 8, multiplier: 300 } })).toEqual(exact);
    // Energy decaying with the index, as a Matryoshka-trained model concentrates it in the first dims.
    const decay = Float32Array.from(vectors, (x, i) => x * Math.exp(-(i % d) / 6));
    for (let i = 0; i < 3000; i++) normalise(decay.subarray(i * d, (i + 1) * d));
    const mi = await denseIndex(decay, d, 'f32');
    const qd = normalise(Float32Array.from(q, (x, i) => x * Math.exp(-i / 6)));
    const hits = await mi.search({ dense: qd }, { k: 10, funnel: { first: 'prefix', prefixDims: 16, multiplier: 10 } });
    expect(
      overlap(
        hits.map((h) => h.id),
        bruteDense(qd, decay, d, 10).map((i) => `d${i}`),
      ),
    ).toBeGreaterThanOrEqual(0.9);
  });

  it('no hidden threshold: k results even when every score is negative; filter applies before top-k', async () => {
    const idx = await denseIndex(vectors.subarray(0, 50 * d), d, 'f32');
    const q = Float32Array.from(row(vectors, d, 0), (x) => -x);
    const hits = await idx.search({ dense: q }, { k: 40 });
    expect(hits).toHaveLength(40);
    const odd = await idx.search({ dense: q }, { k: 10, filter: (m) => (m as { i: number }).i % 2 === 1 });
    expect(odd).toHaveLength(10);
    expect(odd.map((h) => h.id)).toEqual(
      hits
        .filter((h) => (h.meta as { i: number }).i % 2 === 1)
        .slice(0, 10)
        .map((h) => h.id),
    );
  });

  it('remove: removed ids never come back, nor twice after many removals (compaction)', async () => {
    const idx = await denseIndex(vectors, d, 'int8');
    const q = row(queries, d, 3);
    const before = await idx.search({ dense: q }, { k: 10 });
    expect(await idx.remove([before[0].id, 'nope'])).toBe(1);
    const after = await idx.search({ dense: q }, { k: 10 });
    expect(after.map((h) => h.id)).toEqual([...before.slice(1).map((h) => h.id), after[9].id]);
    await idx.remove(Array.from({ length: 1500 }, (_, i) => `d${2 * i}`)); // triggers compaction
    expect(idx.stats().count).toBe(1499);
    const hits = await idx.search({ dense: q }, { k: 10 });
    expect(hits.every((h) => (h.meta as { i: number }).i % 2 === 1)).toBe(true);
    expect(hits.map((h) => h.id)).toEqual(
      bruteDense(q, vectors, d, 3000)
        .filter((i) => i % 2 === 1 && `d${i}` !== before[0].id)
        .slice(0, 10)
        .map((i) => `d${i}`),
    );
  });
});

describe('sparse, colbert, hybrid', () => {
  const { docs, queries } = fullCorpus(400, 16, 21);

  it('sparse: exactly lexicalMatchingScore, and fewer matches than k are filled with score 0', async () => {
    const idx = await SemanticIndex.create({ dims: 16, outputs: ['sparse'] });
    await idx.add(docs.map((x) => ({ id: x.id, sparse: x.sparse, meta: x.meta })));
    for (const q of queries) {
      const hits = await idx.search({ sparse: q.sparse }, { k: 10, mode: 'sparse' });
      const brute = docs
        .map((x, i) => ({ i, s: lexicalMatchingScore(q.sparse!, x.sparse!) }))
        .sort((a, b) => b.s - a.s || a.i - b.i)
        .slice(0, 10);
      expect(hits.map((h) => [h.id, h.score])).toEqual(brute.map((b) => [`d${b.i}`, b.s]));
    }
    const one = { ids: Uint32Array.of(docs[5].sparse!.ids[0]), weights: Float32Array.of(1) };
    const hits = await idx.search({ sparse: one }, { k: 400, mode: 'sparse' });
    expect(hits).toHaveLength(400);
    expect(hits.at(-1)!.score).toBe(0);
  });

  it('colbert: MaxSim exactly as colbertScore (f32), over every row without dense; int8 blocks within 0.02', async () => {
    const f32 = await SemanticIndex.create({ outputs: ['colbert'], dims: 16 });
    const i8 = await SemanticIndex.create({ outputs: ['colbert'], dims: 16, colbertStorage: 'int8' });
    for (const idx of [f32, i8]) await idx.add(docs.map((x) => ({ id: x.id, colbert: x.colbert, meta: x.meta })));
    expect(i8.stats().bytes.colbert).toBe((f32.stats().bytes.colbert / 32) * 12); // 8 int8 + one f32 scale per vector, vs 8 f32
    for (const q of queries) {
      const brute = docs
        .map((x, i) => ({ i, s: colbertScore(q.colbert!, x.colbert!) }))
        .sort((a, b) => b.s - a.s || a.i - b.i)
        .slice(0, 10);
      const hits = await f32.search({ colbert: q.colbert }, { k: 10, mode: 'colbert' });
      expect(hits.map((h) => [h.id, h.score])).toEqual(brute.map((b) => [`d${b.i}`, b.s]));
      const approx = await i8.search({ colbert: q.colbert }, { k: 10, mode: 'colbert' });
      for (const h of approx) expect(Math.abs(h.score - colbertScore(q.colbert!, docs[(h.meta as { i: number }).i].colbert!))).toBeLessThan(0.02);
    }
  });

  it('hybrid: computeScore over the union of shortlists; with shortlists of every row it is the brute-force ranking', async () => {
    const idx = await SemanticIndex.create({ dims: 16, outputs: ['dense', 'sparse', 'colbert'] });
    await idx.add(docs);
    const w = [0.4, 0.2, 0.4] as const;
    for (const q of queries) {
      const rep = { dense: q.dense!, sparse: q.sparse!, colbert: q.colbert! };
      const all = docs.map((x, i) => ({ i, s: computeScore(rep, { dense: x.dense!, sparse: x.sparse!, colbert: x.colbert! }, w) }));
      const brute = [...all].sort((a, b) => b.s['colbert+sparse+dense'] - a.s['colbert+sparse+dense'] || a.i - b.i).slice(0, 10);
      const hits = await idx.search(rep, { k: 10, mode: 'hybrid', weights: w, shortlist: 40 });
      expect(hits.map((h) => h.id)).toEqual(brute.map((b) => `d${b.i}`));
      hits.forEach((h, j) => {
        const s = brute[j].s;
        expect(h.scores).toEqual({ dense: s.dense, sparse: s.sparse, colbert: s.colbert });
        expect(h.score).toBeCloseTo(s['colbert+sparse+dense'], 12);
      });
      // Without the ColBERT weight the combination is 'sparse+dense'.
      const sd = await idx.search(rep, { k: 5, mode: 'hybrid', weights: [1, 0.3, 0], shortlist: 80 });
      const bsd = docs
        .map((x, i) => ({ i, s: computeScore(rep, { dense: x.dense!, sparse: x.sparse!, colbert: x.colbert! }, [1, 0.3, 0])['sparse+dense'] }))
        .sort((a, b) => b.s - a.s || a.i - b.i)
        .slice(0, 5);
      expect(sd.map((h) => h.id)).toEqual(bsd.map((b) => `d${b.i}`));
      sd.forEach((h, j) => expect(h.score).toBeCloseTo(bsd[j].s, 12));
      expect(sd[0].scores.colbert).toBeNull();
    }
  });

  it('typed errors: missing representation, wrong width, bad options, duplicate ids', async () => {
    const idx = await SemanticIndex.create({ dims: 16 });
    await idx.add(docs.slice(0, 5).map((x) => ({ id: x.id, dense: x.dense })));
    await expect(idx.search({ dense: new Float32Array(8) })).rejects.toThrow(InvalidInputError);
    await expect(idx.search({ sparse: queries[0].sparse }, { mode: 'sparse' })).rejects.toThrow(/mode "sparse" needs an index with sparse weights/);
    await expect(idx.search({ dense: queries[0].dense }, { k: 0 })).rejects.toThrow(InvalidInputError);
    await expect(idx.search('text')).rejects.toThrow(/needs an index with an embedder/);
    expect(() =>
      idx.add([
        { id: 'x', dense: new Float32Array(16) },
        { id: 'x', dense: new Float32Array(16) },
      ]),
    ).toThrow(/appears twice/);
    await expect(idx.add([{ id: 'y', dense: new Float32Array(9) }])).rejects.toThrow(IndexMismatchError);
    await expect(SemanticIndex.create({ storage: 'f16' as DenseStorage, dims: 4 }).then((i) => i.add([{ id: 'a', dense: new Float32Array(4) }]))).rejects.toThrow(InvalidInputError);
  });
});

describe('export / import', () => {
  const { docs, queries } = fullCorpus(300, 40, 5);
  for (const storage of ['f32', 'int8', 'binary+int8'] as const) {
    it(`${storage}: one file round-trips to identical results in every mode`, async () => {
      const idx = await SemanticIndex.create({ dims: 40, storage, outputs: ['dense', 'sparse', 'colbert'], colbertStorage: storage === 'f32' ? 'f32' : 'int8', modelId: 'fixture/x' });
      await idx.add(docs);
      await idx.remove(['d3']);
      const bytes = idx.toBytes();
      const back = await SemanticIndex.fromBytes(bytes);
      const meta = (s: ReturnType<SemanticIndex['stats']>) => ({ ...s, bytes: null, bytesPerDoc: null }); // memory still holds the removed row's codes until compaction
      expect(meta(back.stats())).toEqual(meta(idx.stats()));
      for (const mode of ['dense', 'sparse', 'colbert', 'hybrid'] as const) {
        for (const q of queries) expect(await back.search(q, { k: 10, mode })).toEqual(await idx.search(q, { k: 10, mode }));
      }
      await expect(SemanticIndex.fromBytes(bytes, { dims: 32 })).rejects.toThrow(IndexMismatchError);
      await expect(SemanticIndex.fromBytes(bytes, { modelId: 'other' })).rejects.toThrow(/another model/);
      const bad = bytes.slice();
      bad[0] = 0;
      await expect(SemanticIndex.fromBytes(bad)).rejects.toThrow(IndexFormatError);
    });
  }
});
