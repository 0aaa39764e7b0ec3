/**
 * SemanticIndex: in-page search over dense, sparse (lexical) and ColBERT representations.
 *
 *   const index = await SemanticIndex.create({ embedder, storage: 'binary+int8', outputs: ['dense', 'sparse'] });
 *   await index.add([{ id: 'a', text: '…', meta: { title: '…' } }], { onProgress, signal });
 *   const hits = await index.search('query', { k: 10, mode: 'hybrid', weights: [0.4, 0.2, 0.4] });
 *
 * Top-k is top-k: no similarity threshold ever drops a result. Scores follow FlagEmbedding (score.ts);
 * the ranking is exact for f32 dense, sparse and ColBERT; the funnel and quantised storages are
 * approximate and say so in their recall (tools/bench/search.ts).
 * Persistence (open / add / remove) goes through an IndexStore (store.ts) one chunk at a time; the
 * in-memory index changes only after its chunk is committed, so memory and storage always agree.
 */
import { IndexMismatchError, InvalidInputError } from '../errors.ts';
import { decodeFile, encodeFile, type IndexHeader } from './format.ts';
import { Rows } from './rows.ts';
import { searchRows } from './query.ts';
import { checkSparseVector } from './sparse.ts';
import type { ChunkRef, IndexStore, Manifest } from './store.ts';
import type { AddOptions, ColbertVectors, Doc, SparseVector, IndexOptions, IndexStats, Output, QueryVectors, SearchHit, SearchOptions } from './types.ts';

/**
 * 3: headers carry `centre`; binary+int8 takes its sign codes and its int8 codes of v − centre. Schema-1 indexes
 * (no centre, codes of v) still open. Schema 2 (a development state that centred the sign codes only) is refused.
 */
export const SCHEMA_VERSION = 3;
const SCHEMAS = [1, 3];
const OUTPUTS: Output[] = ['dense', 'sparse', 'colbert'];

function headerFrom(o: IndexOptions): IndexHeader {
  const outputs = o.outputs ?? ['dense'];
  if (!Array.isArray(outputs) || !outputs.length || outputs.some((x) => !OUTPUTS.includes(x))) {
    throw new InvalidInputError('outputs must be a non-empty list of "dense", "sparse", "colbert"', { expected: '("dense" | "sparse" | "colbert")[]', received: outputs });
  }
  if (o.dims !== undefined && (!Number.isInteger(o.dims) || o.dims < 1)) throw new InvalidInputError('dims must be a positive integer', { expected: 'integer >= 1', received: o.dims });
  if (!o.embedder && outputs.includes('dense') && o.dims === undefined) {
    throw new InvalidInputError('an index without an embedder needs dims', { expected: '{ embedder } or { dims }', received: o });
  }
  if (o.embedder && typeof o.embedder.embed !== 'function') throw new InvalidInputError('embedder must have an embed(texts, opts) method', { expected: 'Embedder', received: o.embedder });
  if (o.centre !== undefined && o.centre !== false && !(o.centre instanceof Float32Array && o.centre.every(Number.isFinite))) {
    throw new InvalidInputError('centre must be a Float32Array of finite values or false', { expected: 'Float32Array(dims) | false', received: o.centre });
  }
  if (o.layers !== undefined && (!Number.isInteger(o.layers) || o.layers < 1)) throw new InvalidInputError('layers must be a positive integer', { expected: 'integer >= 1', received: o.layers });
  return {
    schema: SCHEMA_VERSION,
    modelId: o.embedder?.modelId ?? o.modelId ?? 'precomputed',
    layers: o.layers ?? null,
    dims: o.dims ?? 0,
    storage: o.storage ?? 'f32',
    outputs: [...outputs],
    colbertDim: null,
    colbertStorage: o.colbertStorage ?? 'f32',
    centre: null,
  };
}

/** Throws IndexMismatchError when a stored header differs from what the caller asked for. */
function checkHeader(stored: IndexHeader, want: IndexHeader, asked: IndexOptions, where: string): void {
  const diff = (what: string, a: unknown, b: unknown) => {
    throw new IndexMismatchError(`${where} was built with another ${what}`, { expected: `${what} ${JSON.stringify(b)}`, received: a });
  };
  if (!SCHEMAS.includes(stored.schema)) diff('schema version', stored.schema, SCHEMAS.join(' or '));
  if ((asked.embedder?.modelId ?? asked.modelId) !== undefined && stored.modelId !== want.modelId) diff('model', stored.modelId, want.modelId);
  if (asked.layers !== undefined && stored.layers !== want.layers) diff('layers', stored.layers, want.layers);
  if (asked.dims !== undefined && stored.dims !== want.dims) diff('dims', stored.dims, want.dims);
  if (asked.storage !== undefined && stored.storage !== want.storage) diff('storage', stored.storage, want.storage);
  if (asked.outputs !== undefined && [...stored.outputs].sort().join() !== [...want.outputs].sort().join()) diff('outputs', stored.outputs.join(), want.outputs.join());
}

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export class SemanticIndex {
  private rows: Rows;
  private rowOf = new Map<string, number>();
  private chunkOf: string[] = [];
  private dead = 0;
  private manifest: Manifest | null = null;
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly opts: IndexOptions,
    header: IndexHeader,
    private readonly store: IndexStore | null,
  ) {
    this.rows = new Rows(header);
  }

  get header(): Readonly<IndexHeader> {
    return this.rows.header;
  }

  /** An empty in-memory index. */
  static async create(opts: IndexOptions): Promise<SemanticIndex> {
    return new SemanticIndex(opts, headerFrom(opts), null);
  }

  /**
   * Opens the index persisted in `store` (openBrowserStore / openDirStore), or starts one there.
   * A stored index built with another model, layers, dims, storage or outputs is an IndexMismatchError.
   */
  static async open(store: IndexStore, opts: IndexOptions): Promise<SemanticIndex> {
    const m = await store.readManifest();
    // What the caller left out comes from the stored header; what it gave must match it.
    const want = headerFrom(m ? { dims: m.header.dims || undefined, storage: m.header.storage, outputs: m.header.outputs, ...defined(opts) } : opts);
    if (!m) {
      const idx = new SemanticIndex(opts, want, store);
      idx.manifest = { header: want, chunks: [], seq: 0 };
      return idx;
    }
    checkHeader(m.header, want, opts, `the stored index "${store.name}"`);
    const idx = new SemanticIndex(opts, { ...m.header }, store);
    idx.manifest = m;
    for (const c of m.chunks) idx.appendFile(await store.readChunk(c.key), c.key);
    return idx;
  }

  /** An index from an exported file (toBytes); `opts` may name the model/dims it must match. */
  static async fromBytes(bytes: Uint8Array, opts: Partial<IndexOptions> = {}): Promise<SemanticIndex> {
    const f = decodeFile(bytes);
    const h = f.header;
    const want = headerFrom({ modelId: h.modelId, layers: h.layers ?? undefined, dims: h.dims, storage: h.storage, outputs: h.outputs, colbertStorage: h.colbertStorage, ...opts });
    checkHeader(h, want, opts, 'the index file');
    const idx = new SemanticIndex(opts, { ...h }, null);
    idx.appendFile(bytes, '');
    return idx;
  }

  /** The whole index (live rows) as one index file (FORMAT.md). */
  toBytes(): Uint8Array {
    return encodeFile(this.rows.encode(this.liveRows()));
  }

  /** Live documents column by column, dense as f32 (int8 dequantised) — what the Parquet export writes. */
  columns(): { ids: string[]; meta: unknown[]; dense: Float32Array | null; sparse: SparseVector[] | null; colbert: ColbertVectors[] | null } {
    const live = this.liveRows();
    const r = this.rows;
    const d = r.dense;
    let dense: Float32Array | null = null;
    if (d) {
      dense = new Float32Array(live.length * d.dims);
      live.forEach((row, i) => dense!.set(d.vector(row), i * d.dims));
    }
    return {
      ids: Array.from(live, (x) => r.ids[x]),
      meta: Array.from(live, (x) => r.meta[x]),
      dense,
      sparse: r.sparse ? Array.from(live, (x) => r.sparse!.docs[x]) : null,
      colbert: r.colbert ? Array.from(live, (x) => r.colbert!.vectors(x)) : null,
    };
  }

  private appendFile(bytes: Uint8Array, chunk: string): void {
    const f = decodeFile(bytes);
    if (f.header.colbertDim && !this.rows.header.colbertDim) {
      this.rows.header.colbertDim = f.header.colbertDim;
      this.rows.ensureStores();
    }
    for (const r of this.rows.append(f)) {
      this.rowOf.set(this.rows.ids[r], r);
      this.chunkOf[r] = chunk;
    }
  }

  private liveRows(): Int32Array {
    const out: number[] = [];
    for (let r = 0; r < this.rows.n; r++) if (this.rows.alive[r]) out.push(r);
    return Int32Array.from(out);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.lock.then(f, f);
    this.lock = run.catch(() => {});
    return run;
  }

  has(id: string): boolean {
    return this.rowOf.has(id);
  }

  /**
   * Adds documents in chunks of `chunkSize`: embeds those without precomputed vectors, commits the chunk
   * (when persisted), then makes it searchable. Ids already in the index are skipped, so calling add again
   * with the same list after an abort or a reload resumes where it stopped.
   */
  add(docs: Doc[], opts: AddOptions = {}): Promise<{ added: number; skipped: number }> {
    if (!Array.isArray(docs)) throw new InvalidInputError('add expects an array of documents', { expected: '{ id, text?, meta?, dense?, sparse?, colbert? }[]', received: docs });
    const size = opts.chunkSize ?? this.opts.chunkSize ?? 256;
    if (!Number.isInteger(size) || size < 1) throw new InvalidInputError('chunkSize must be a positive integer', { expected: 'integer >= 1', received: size });
    const seen = new Set<string>();
    docs.forEach((d, i) => {
      if (!d || typeof d.id !== 'string' || !d.id) throw new InvalidInputError(`document ${i}: id must be a non-empty string`, { expected: 'string', received: d?.id });
      if (seen.has(d.id)) throw new InvalidInputError(`document ${i}: id "${d.id}" appears twice in this call`, { expected: 'unique ids', received: d.id });
      seen.add(d.id);
      const precomputed = this.rows.header.outputs.every((o) => d[o] !== undefined);
      if (!precomputed && typeof d.text !== 'string') throw new InvalidInputError(`document ${i} ("${d.id}"): needs text, or every stored representation (${this.rows.header.outputs.join(', ')})`, { expected: 'text: string', received: d.text });
      if (!precomputed && !this.opts.embedder) throw new InvalidInputError(`document ${i} ("${d.id}") has no precomputed ${this.rows.header.outputs.join('/')} and the index has no embedder`, { expected: 'precomputed vectors or an embedder', received: d });
    });
    return this.serial(async () => {
      const todo = docs.filter((d) => !this.rowOf.has(d.id));
      const skipped = docs.length - todo.length;
      let done = 0;
      opts.onProgress?.({ done, total: todo.length, skipped });
      for (let a = 0; a < todo.length; a += size) {
        opts.signal?.throwIfAborted();
        const batch = await this.represent(todo.slice(a, a + size), opts.signal);
        opts.signal?.throwIfAborted();
        await this.commitNew(batch);
        done += batch.length;
        opts.onProgress?.({ done, total: todo.length, skipped });
      }
      return { added: done, skipped };
    });
  }

  /** Fills in the representations the index stores, embedding the documents that lack them. */
  private async represent(docs: Doc[], signal?: AbortSignal): Promise<Doc[]> {
    const h = this.rows.header;
    const need = docs.filter((d) => h.outputs.some((o) => d[o] === undefined));
    const out = docs.map((d) => ({ ...d }));
    if (need.length) {
      const r = await this.opts.embedder!.embed(
        need.map((d) => d.text!),
        { outputs: h.outputs, dims: this.opts.dims, layers: this.opts.layers, signal, ...(this.opts.docPrompt !== undefined ? { prompt: this.opts.docPrompt } : {}) },
      );
      const at = new Map(need.map((d, i) => [d.id, i]));
      for (const d of out) {
        const i = at.get(d.id);
        if (i === undefined) continue;
        if (h.outputs.includes('dense') && d.dense === undefined) d.dense = r.embeddings.subarray(i * r.dims, (i + 1) * r.dims);
        if (h.outputs.includes('sparse') && d.sparse === undefined) d.sparse = r.sparse?.[i];
        if (h.outputs.includes('colbert') && d.colbert === undefined) d.colbert = r.colbert?.[i];
      }
    }
    for (const d of out) this.check(d);
    return out;
  }

  private check(d: Doc): void {
    const h = this.rows.header;
    if (h.outputs.includes('dense')) {
      if (!(d.dense instanceof Float32Array)) throw new InvalidInputError(`document "${d.id}": dense vector must be a Float32Array`, { expected: 'Float32Array', received: d.dense });
      if (!h.dims) {
        h.dims = d.dense.length;
        this.rows.ensureStores();
      }
      if (d.dense.length !== h.dims) throw new IndexMismatchError(`document "${d.id}": dense vector has another width than the index`, { expected: `${h.dims} dims`, received: d.dense.length });
    }
    if (h.outputs.includes('sparse')) checkSparseVector(d.sparse!, `document "${d.id}"`);
    if (h.outputs.includes('colbert')) {
      if (!h.colbertDim && d.colbert) {
        h.colbertDim = d.colbert.dim;
        this.rows.ensureStores();
      }
      this.rows.colbert!.check(d.colbert!, `document "${d.id}"`);
    }
  }

  /** Writes one chunk of new documents (when persisted), then appends them in memory. */
  private async commitNew(batch: Doc[]): Promise<void> {
    this.fixCentre(batch);
    const staging = new Rows({ ...this.rows.header });
    for (const d of batch) {
      staging.pushMeta(d.id, d.meta ?? null);
      if (d.dense) staging.dense!.append(d.dense);
      if (staging.sparse) staging.sparse.append(d.sparse!);
      if (staging.colbert) staging.colbert.append(d.colbert!);
    }
    const bytes = encodeFile(staging.encode(Int32Array.from(batch, (_, i) => i)));
    let key = '';
    if (this.store && this.manifest) {
      key = `c${this.manifest.seq}`;
      const next: Manifest = { header: { ...this.rows.header }, chunks: [...this.manifest.chunks, { key, count: batch.length, bytes: bytes.length }], seq: this.manifest.seq + 1 };
      await this.store.commit([{ key, bytes }], next);
      this.manifest = next;
    }
    // The codes were made once in `staging`; appending the encoded file keeps memory identical to storage.
    this.appendFile(bytes, key);
  }

  /**
   * binary+int8: the first commit into an empty index fixes the centre of the sign codes (the mean of the
   * batch's dense vectors, or IndexOptions.centre; `centre: false` keeps raw signs). It is stored in the
   * header, so every chunk and every reload takes signs against the same values.
   */
  private fixCentre(batch: Doc[]): void {
    const h = this.rows.header;
    const d = this.rows.dense;
    if (h.storage !== 'binary+int8' || !d || d.n > 0 || this.opts.centre === false) return;
    let c: Float32Array;
    if (this.opts.centre instanceof Float32Array) {
      if (this.opts.centre.length !== h.dims) throw new IndexMismatchError('centre has another width than the index', { expected: `${h.dims} dims`, received: this.opts.centre.length });
      c = Float32Array.from(this.opts.centre);
    } else {
      const sum = new Float64Array(h.dims);
      for (const x of batch) for (let i = 0; i < h.dims; i++) sum[i] += x.dense![i];
      c = Float32Array.from(sum, (s) => s / batch.length);
    }
    d.setCentre(c);
    h.centre = Array.from(c);
    h.schema = SCHEMA_VERSION;
  }

  /** Removes documents by id (unknown ids are ignored); persisted chunks holding them are rewritten. Returns how many were removed. */
  remove(ids: string[]): Promise<number> {
    if (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string')) throw new InvalidInputError('remove expects an array of string ids', { expected: 'string[]', received: ids });
    return this.serial(async () => {
      const rows = [...new Set(ids)].map((id) => this.rowOf.get(id)).filter((r): r is number => r !== undefined);
      if (!rows.length) return 0;
      if (this.store && this.manifest) {
        const gone = new Set(rows);
        const touched = new Set(rows.map((r) => this.chunkOf[r]));
        const put: { key: string; bytes: Uint8Array }[] = [];
        const rekey = new Map<string, string>();
        let seq = this.manifest.seq;
        const chunks: ChunkRef[] = [];
        for (const c of this.manifest.chunks) {
          if (!touched.has(c.key)) {
            chunks.push(c);
            continue;
          }
          const keep: number[] = [];
          for (let r = 0; r < this.rows.n; r++) if (this.rows.alive[r] && this.chunkOf[r] === c.key && !gone.has(r)) keep.push(r);
          if (!keep.length) continue;
          const key = `c${seq++}`;
          const bytes = encodeFile(this.rows.encode(keep));
          put.push({ key, bytes });
          rekey.set(c.key, key);
          chunks.push({ key, count: keep.length, bytes: bytes.length });
        }
        const next: Manifest = { header: { ...this.rows.header }, chunks, seq };
        await this.store.commit(put, next);
        this.manifest = next;
        for (let r = 0; r < this.rows.n; r++) if (rekey.has(this.chunkOf[r])) this.chunkOf[r] = rekey.get(this.chunkOf[r])!;
      }
      for (const r of rows) {
        this.rows.alive[r] = 0;
        this.rowOf.delete(this.rows.ids[r]);
      }
      this.dead += rows.length;
      if (this.dead > 1024 && this.dead * 4 > this.rows.n) this.compact();
      return rows.length;
    });
  }

  private compact(): void {
    const keep = this.liveRows();
    this.chunkOf = Array.from(keep, (r) => this.chunkOf[r]);
    this.rows.compact(keep);
    this.rowOf = new Map(this.rows.ids.map((id, r) => [id, r]));
    this.dead = 0;
  }

  /** Top-k documents for a text (embedded with the index's embedder) or for precomputed query vectors. */
  async search(query: string | QueryVectors, opts: SearchOptions = {}): Promise<SearchHit[]> {
    const mode = opts.mode ?? 'dense';
    const h = this.rows.header;
    let q: QueryVectors;
    if (typeof query === 'string') {
      if (!this.opts.embedder) throw new InvalidInputError('a text query needs an index with an embedder', { expected: 'query vectors { dense?, sparse?, colbert? }', received: query });
      const r = await this.opts.embedder.embed([query], { outputs: h.outputs, dims: h.dims || undefined, layers: this.opts.layers, signal: opts.signal, ...(this.opts.queryPrompt !== undefined ? { prompt: this.opts.queryPrompt } : {}) });
      q = { dense: h.outputs.includes('dense') ? r.embeddings.subarray(0, r.dims) : undefined, sparse: r.sparse?.[0], colbert: r.colbert?.[0] };
    } else if (query && typeof query === 'object') q = query;
    else throw new InvalidInputError('query must be a string or { dense?, sparse?, colbert? }', { expected: 'string | QueryVectors', received: query });
    opts.signal?.throwIfAborted();
    if (this.rowOf.size === 0) return [];
    return searchRows(this.rows, q, { ...opts, mode });
  }

  stats(): IndexStats {
    const h = this.rows.header;
    const dense = this.rows.dense?.bytes ?? 0;
    const sparse = this.rows.sparse?.bytes ?? 0;
    const colbert = this.rows.colbert?.bytes ?? 0;
    const count = this.rowOf.size;
    const total = dense + sparse + colbert;
    return {
      count,
      dims: h.dims,
      layers: h.layers,
      storage: h.storage,
      outputs: [...h.outputs],
      modelId: h.modelId,
      bytes: { dense, sparse, colbert, total },
      bytesPerDoc: this.rows.n ? total / this.rows.n : 0,
      persisted: this.store && this.manifest ? { name: this.store.name, chunks: this.manifest.chunks.length, backend: this.store.backend } : null,
    };
  }
}
