// A real consumer of the Parquet export: DuckDB's exact top-10 by inner product equals SemanticIndex's exact f32 top-10.
import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toParquet } from './parquet.ts';
import { SemanticIndex } from './semantic-index.ts';
import { randomColbert, randomSparse, randomUnit, rng } from './testing.ts';

describe('Parquet export read by DuckDB', () => {
  it('dense top-10 by array_inner_product matches the index; sparse and ColBERT columns hold the same numbers', async () => {
    const n = 2000;
    const d = 48;
    const r = rng(9);
    const dense = randomUnit(n, d, 31);
    const idx = await SemanticIndex.create({ dims: d, outputs: ['dense', 'sparse', 'colbert'], modelId: 'fixture/test' });
    const docs = Array.from({ length: n }, (_, i) => ({ id: `doc-${i}`, dense: dense.subarray(i * d, (i + 1) * d), sparse: randomSparse(r, 500, 6), colbert: randomColbert(r, 2 + (i % 3), 8), meta: { n: i } }));
    await idx.add(docs);
    await idx.remove(['doc-7']);
    const file = join(mkdtempSync(join(tmpdir(), 'm3pq-')), 'index.parquet');
    writeFileSync(file, await toParquet(idx));

    const db = await DuckDBInstance.create(':memory:');
    const con = await db.connect();
    const count = (await con.runAndReadAll(`SELECT count(*)::INTEGER AS c FROM read_parquet('${file}')`)).getRowObjects()[0].c;
    expect(count).toBe(n - 1);
    const queries = randomUnit(10, d, 77);
    for (let j = 0; j < 10; j++) {
      const q = queries.subarray(j * d, (j + 1) * d);
      const lit = `[${Array.from(q).join(',')}]::FLOAT[${d}]`;
      const rows = (await con.runAndReadAll(`SELECT id FROM read_parquet('${file}') ORDER BY array_inner_product(dense::FLOAT[${d}], ${lit}) DESC LIMIT 10`)).getRowObjects();
      const hits = await idx.search({ dense: q }, { k: 10, funnel: false });
      expect(rows.map((x) => x.id)).toEqual(hits.map((h) => h.id));
    }
    const one = (await con.runAndReadAll(`SELECT meta, len(sparse)::INTEGER AS nnz, sparse[1].id::INTEGER AS id0, sparse[1].weight AS w0, len(colbert)::INTEGER AS nc, colbert[2][3] AS c23 FROM read_parquet('${file}') WHERE id = 'doc-42'`)).getRowObjects()[0];
    const doc = docs[42];
    expect(JSON.parse(String(one.meta))).toEqual({ n: 42 });
    expect(one.nnz).toBe(doc.sparse.ids.length);
    expect(one.id0).toBe(doc.sparse.ids[0]);
    expect(one.w0).toBe(doc.sparse.weights[0]);
    expect(one.nc).toBe(doc.colbert.count);
    expect(one.c23).toBe(doc.colbert.data[1 * 8 + 2]);
    const kv = (await con.runAndReadAll(`SELECT decode(value) AS v FROM parquet_kv_metadata('${file}') WHERE decode(key) = 'm3web'`)).getRowObjects()[0];
    expect(JSON.parse(String(kv.v))).toMatchObject({ modelId: 'fixture/test', dims: d, storage: 'f32' });
    con.closeSync();
  });
});
