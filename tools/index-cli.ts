/**
 * Bulk index builder: a JSONL corpus → one index file (src/search/FORMAT.md) and optionally a Parquet file.
 *
 *   npx tsx tools/index-cli.ts --in corpus.jsonl --out corpus.m3idx [--parquet corpus.parquet]
 *       [--model <url | hub id | local folder>] [--storage f32|int8|binary+int8] [--outputs dense,sparse,colbert]
 *       [--dims d] [--layers k] [--field text] [--id-field id] [--chunk 256] [--weights auto|f32|f16]
 *
 * Each line is a JSON object with an id (default field "id", else "_id", else its line number) and a
 * text (default field "text"); other fields become the document's meta. Without --model, lines carry
 * precomputed vectors instead: "embedding" (dense, as tools/embed-jsonl.ts writes), and "sparse":
 * {"ids": [...], "weights": [...]} when --outputs has sparse.
 *
 * Resumable: chunks are committed to `<out>.parts/` as they are embedded (the directory store,
 * src/search/fs-store.ts); a second run with the same arguments skips every committed document, so an
 * interrupted build (Ctrl-C, crash) continues where it stopped. The parts folder is kept for the next
 * resume; delete it to start over. Progress goes to stderr. Embedding runs on the engine in Node + Dawn.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openDirStore } from '../src/search/fs-store.ts';
import { toParquet } from '../src/search/parquet.ts';
import { SemanticIndex } from '../src/search/semantic-index.ts';
import type { DenseStorage, Doc, Embedder, Output } from '../src/search/types.ts';

const { values } = parseArgs({
  options: {
    in: { type: 'string' },
    out: { type: 'string' },
    parquet: { type: 'string' },
    model: { type: 'string' },
    storage: { type: 'string', default: 'f32' },
    outputs: { type: 'string', default: 'dense' },
    dims: { type: 'string' },
    layers: { type: 'string' },
    field: { type: 'string', default: 'text' },
    'id-field': { type: 'string', default: 'id' },
    chunk: { type: 'string', default: '256' },
    weights: { type: 'string', default: 'auto' },
  },
});
if (!values.in || !values.out) {
  console.error('usage: tsx tools/index-cli.ts --in corpus.jsonl --out corpus.m3idx [--parquet corpus.parquet] [--model <url|hub id|folder>] [--storage f32|int8|binary+int8] [--outputs dense,sparse,colbert] [--dims d] [--layers k]');
  process.exit(2);
}

const outputs = values.outputs!.split(',') as Output[];
const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));

function readDocs(path: string): Doc[] {
  const idField = values['id-field']!;
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((line, i) => {
      const o = JSON.parse(line) as Record<string, unknown>;
      const { [idField]: id, _id, [values.field!]: text, embedding, sparse, ...meta } = o;
      const doc: Doc = { id: String(id ?? _id ?? i), meta };
      if (typeof text === 'string') doc.text = text;
      if (Array.isArray(embedding)) doc.dense = Float32Array.from(embedding as number[]);
      if (sparse && typeof sparse === 'object') {
        const s = sparse as { ids: number[]; weights: number[] };
        doc.sparse = { ids: Uint32Array.from(s.ids), weights: Float32Array.from(s.weights) };
      }
      return doc;
    });
}

/** The engine on Node + Dawn as an Embedder; a local folder is served on loopback (the loader reads URLs). */
async function engineEmbedder(spec: string): Promise<{ embedder: Embedder; close: () => Promise<void> }> {
  const { loadModel } = await import('../src/model/load.ts');
  const { createNodeGpu } = await import('../src/gpu/node-gpu.ts');
  const { GpuRuntime } = await import('../src/gpu/runtime.ts');
  const { Engine } = await import('../src/engine/engine.ts');
  let url = spec;
  let close = async () => {};
  if (existsSync(spec) && statSync(spec).isDirectory()) {
    const { startModelServer } = await import('../tests/helpers/model-server.ts');
    const server = await startModelServer(resolve(dirname(resolve(spec))));
    url = server.folderUrl(basename(resolve(spec)));
    close = server.close;
  }
  const model = await loadModel(url, { onProgress: (p) => p.phase === 'download' && p.total && process.stderr.write(`\rdownloading ${p.file}: ${((100 * p.loaded) / p.total).toFixed(0)}%   `) });
  const { device } = await createNodeGpu();
  const engine = await Engine.create(new GpuRuntime(device), model, { weights: values.weights as 'auto' | 'f32' | 'f16' });
  return {
    embedder: { modelId: existsSync(spec) ? basename(resolve(spec)) : spec, embed: (texts, o) => engine.embed(texts, { outputs: o.outputs, dims: o.dims, layers: o.layers }) },
    close: async () => (engine.destroy(), device.destroy(), await close()),
  };
}

const docs = readDocs(values.in);
const model = values.model ? await engineEmbedder(values.model) : null;
const partsDir = `${resolve(values.out)}.parts`;
const index = await SemanticIndex.open(await openDirStore(partsDir), {
  embedder: model?.embedder,
  modelId: model ? undefined : 'precomputed',
  storage: values.storage as DenseStorage,
  outputs,
  dims: num(values.dims) ?? (model ? undefined : docs.find((d) => d.dense)?.dense?.length),
  layers: num(values.layers),
  chunkSize: Number(values.chunk),
});
const t0 = performance.now();
const r = await index.add(docs, {
  onProgress: (p) => {
    const w = 30;
    const f = p.total ? p.done / p.total : 1;
    const rate = p.done / Math.max(1e-3, (performance.now() - t0) / 1000);
    process.stderr.write(`\r[${'#'.repeat(Math.round(f * w)).padEnd(w, '.')}] ${p.done}/${p.total} new (${p.skipped} already indexed) ${rate.toFixed(1)} docs/s   `);
  },
});
process.stderr.write('\n');
writeFileSync(values.out, index.toBytes());
if (values.parquet) writeFileSync(values.parquet, await toParquet(index));
const s = index.stats();
console.error(`done: ${r.added} added, ${r.skipped} resumed; ${s.count} documents × ${s.dims} dims (${s.storage}, ${s.outputs.join('+')}) → ${values.out}${values.parquet ? ` and ${values.parquet}` : ''}; parts in ${partsDir}`);
await model?.close();
