/**
 * Parquet export of an index, for a corpus that outgrows a page: server-side engines (DuckDB, Polars,
 * Spark, LanceDB) read it as it is. One row per live document:
 *
 *   id       UTF8
 *   meta     UTF8 (the document's meta as JSON, "null" when absent)
 *   dense    FIXED_SIZE_LIST<FLOAT>[dims]             f32; int8 storages are dequantised (code × scale)
 *   sparse   LIST<STRUCT<id: UINT32, weight: FLOAT>>  token ids ascending
 *   colbert  LIST<FIXED_SIZE_LIST<FLOAT>[colbertDim]> one entry per ColBERT vector
 *
 * and the index header as JSON in the Parquet key-value metadata under "m3web" (model id, layers,
 * dims, storage). Built with apache-arrow, written by parquet-wasm (arrow-rs) with ZSTD compression.
 * In DuckDB: `SELECT id FROM 'x.parquet' ORDER BY array_inner_product(dense::FLOAT[256], $q::FLOAT[256]) DESC LIMIT 10`.
 */
import * as arrow from 'apache-arrow';
import type { SemanticIndex } from './semantic-index.ts';

type ParquetWasm = typeof import('parquet-wasm');

let wasm: Promise<ParquetWasm> | null = null;
/** parquet-wasm's Node build initialises on import; its ESM (browser) build needs its default init once. */
function parquetWasm(): Promise<ParquetWasm> {
  wasm ??= import('parquet-wasm').then(async (m) => {
    const init = (m as unknown as { default?: unknown }).default;
    if (typeof init === 'function') await (init as () => Promise<unknown>)();
    return m;
  });
  return wasm;
}

const f32 = () => new arrow.Float32();

function fixedList(values: Float32Array, width: number): arrow.Data<arrow.FixedSizeList<arrow.Float32>> {
  const child = arrow.makeData({ type: f32(), length: values.length, data: values });
  return arrow.makeData({ type: new arrow.FixedSizeList(width, new arrow.Field('item', f32(), false)), length: values.length / width, nullCount: 0, child });
}

export async function toParquet(index: SemanticIndex): Promise<Uint8Array> {
  const c = index.columns();
  const n = c.ids.length;
  const cols: Record<string, arrow.Vector> = {
    id: arrow.vectorFromArray(c.ids, new arrow.Utf8()),
    meta: arrow.vectorFromArray(
      c.meta.map((m) => JSON.stringify(m ?? null)),
      new arrow.Utf8(),
    ),
  };
  if (c.dense) cols.dense = arrow.makeVector(fixedList(c.dense, index.header.dims));
  if (c.sparse) {
    const off = new Int32Array(n + 1);
    c.sparse.forEach((v, i) => (off[i + 1] = off[i] + v.ids.length));
    const ids = new Uint32Array(off[n]);
    const w = new Float32Array(off[n]);
    c.sparse.forEach((v, i) => (ids.set(v.ids, off[i]), w.set(v.weights, off[i])));
    const fields = [new arrow.Field('id', new arrow.Uint32(), false), new arrow.Field('weight', f32(), false)];
    const struct = arrow.makeData({ type: new arrow.Struct(fields), length: off[n], nullCount: 0, children: [arrow.makeData({ type: new arrow.Uint32(), length: off[n], data: ids }), arrow.makeData({ type: f32(), length: off[n], data: w })] });
    cols.sparse = arrow.makeVector(arrow.makeData({ type: new arrow.List(new arrow.Field('item', struct.type, false)), length: n, nullCount: 0, valueOffsets: off, child: struct }));
  }
  if (c.colbert) {
    const dim = index.header.colbertDim!;
    const off = new Int32Array(n + 1);
    c.colbert.forEach((v, i) => (off[i + 1] = off[i] + v.count));
    const data = new Float32Array(off[n] * dim);
    c.colbert.forEach((v, i) => data.set(v.data, off[i] * dim));
    const inner = fixedList(data, dim);
    cols.colbert = arrow.makeVector(arrow.makeData({ type: new arrow.List(new arrow.Field('item', inner.type, false)), length: n, nullCount: 0, valueOffsets: off, child: inner }));
  }
  const table = new arrow.Table(cols);
  const pq = await parquetWasm();
  const props = new pq.WriterPropertiesBuilder()
    .setCompression(pq.Compression.ZSTD)
    .setKeyValueMetadata(new Map([['m3web', JSON.stringify(index.header)]]))
    .build();
  return pq.writeParquet(pq.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), props);
}
