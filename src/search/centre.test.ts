// The binary+int8 centre (schema 3): sign and int8 codes of v − mean on anisotropic vectors, stored with the
// index so a reload ranks the same; schema-1 files (raw signs) still open; other schemas are a typed error.
import { describe, expect, it } from 'vitest';
import { IndexMismatchError, InvalidInputError } from '../errors.ts';
import { decodeFile, encodeFile } from './format.ts';
import { SemanticIndex, SCHEMA_VERSION } from './semantic-index.ts';
import { gauss, normalise, overlap, rng } from './testing.ts';

/** Unit vectors sharing one strong common direction (average cosine between two of them ≈ 0.9), as trained encoders give. */
function anisotropic(n: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  const mean = normalise(Float32Array.from({ length: d }, () => gauss(r)));
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const v = out.subarray(i * d, (i + 1) * d);
    for (let j = 0; j < d; j++) v[j] = 3 * mean[j] + gauss(r) / Math.sqrt(d);
    normalise(v);
  }
  return out;
}

describe('binary+int8 centre', () => {
  const d = 128;
  const n = 4000;
  const all = anisotropic(n + 40, d, 11);
  const docs = Array.from({ length: n }, (_, i) => ({ id: `d${i}`, dense: all.subarray(i * d, (i + 1) * d) }));
  const queries = Array.from({ length: 40 }, (_, j) => all.subarray((n + j) * d, (n + j + 1) * d));

  async function recall(idx: SemanticIndex, exact: SemanticIndex, funnel?: false): Promise<number> {
    let s = 0;
    for (const q of queries)
      s += overlap(
        (await idx.search({ dense: q }, { k: 10, funnel: funnel ?? { first: 'binary', multiplier: 10 } })).map((h) => h.id),
        (await exact.search({ dense: q }, { k: 10 })).map((h) => h.id),
      );
    return s / queries.length;
  }

  it('is the first chunk’s mean, kept in the header; centred signs recall far more than raw ones', async () => {
    const exact = await SemanticIndex.create({ dims: d, storage: 'f32' });
    await exact.add(docs);
    const centred = await SemanticIndex.create({ dims: d, storage: 'binary+int8', chunkSize: 1000 });
    await centred.add(docs);
    const raw = await SemanticIndex.create({ dims: d, storage: 'binary+int8', centre: false });
    await raw.add(docs);
    const c = centred.header.centre!;
    expect(c).toHaveLength(d);
    for (const i of [0, 17, d - 1]) {
      let m = 0;
      for (let r = 0; r < 1000; r++) m += docs[r].dense[i];
      expect(c[i]).toBeCloseTo(m / 1000, 6);
    }
    expect(raw.header.centre).toBeNull();
    const [rc, rr] = [await recall(centred, exact), await recall(raw, exact)];
    console.log(`[search] anisotropic ${n} × ${d}: ×10 funnel recall@10 centred ${rc.toFixed(3)}, raw signs ${rr.toFixed(3)}`);
    expect(rc).toBeGreaterThan(rr + 0.2);
    // Its int8 codes hold v − centre: scanned exactly they rank closer to f32 than the int8 storage's codes of v.
    const int8 = await SemanticIndex.create({ dims: d, storage: 'int8' });
    await int8.add(docs);
    const [ec, e8] = [await recall(centred, exact, false), await recall(int8, exact, false)];
    console.log(`[search] anisotropic exact int8 scans: codes of v − centre ${ec.toFixed(3)}, codes of v ${e8.toFixed(3)}`);
    expect(ec).toBeGreaterThan(e8);
    // The centre travels with the file: the imported index ranks and scores exactly as this one.
    const back = await SemanticIndex.fromBytes(centred.toBytes());
    expect(back.header.centre).toEqual(c);
    for (const q of queries.slice(0, 5)) expect(await back.search({ dense: q }, { k: 10 })).toEqual(await centred.search({ dense: q }, { k: 10 }));
  });

  it('takes a given centre; rejects a malformed one', async () => {
    const given = new Float32Array(d).fill(0.01);
    const idx = await SemanticIndex.create({ dims: d, storage: 'binary+int8', centre: given });
    await idx.add(docs.slice(0, 10));
    expect(idx.header.centre).toEqual(Array.from(given));
    await expect(SemanticIndex.create({ dims: d, storage: 'binary+int8', centre: [1, 2] as never })).rejects.toThrow(InvalidInputError);
    const wrong = await SemanticIndex.create({ dims: d, storage: 'binary+int8', centre: new Float32Array(3) });
    await expect(wrong.add(docs.slice(0, 2))).rejects.toThrow(IndexMismatchError);
  });

  it('opens schema-1 files (raw signs) with the same results, and refuses an unknown schema', async () => {
    const idx = await SemanticIndex.create({ dims: d, storage: 'binary+int8', centre: false });
    await idx.add(docs.slice(0, 500));
    expect(idx.header.schema).toBe(SCHEMA_VERSION);
    const f = decodeFile(idx.toBytes());
    const { centre: _c, ...v1 } = { ...f.header, schema: 1 };
    const old = await SemanticIndex.fromBytes(encodeFile({ ...f, header: v1 }));
    expect(old.header.schema).toBe(1);
    for (const q of queries.slice(0, 5)) expect(await old.search({ dense: q }, { k: 10 })).toEqual(await idx.search({ dense: q }, { k: 10 }));
    for (const schema of [2, 4]) await expect(SemanticIndex.fromBytes(encodeFile({ ...f, header: { ...f.header, schema } }))).rejects.toThrow(IndexMismatchError);
  });
});
