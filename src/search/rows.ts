/**
 * The row tables of an index (ids, meta, dense codes, sparse vectors, ColBERT blocks) and their
 * conversion to and from the index file's sections (format.ts). Used for whole-index export and
 * for each persisted chunk, so both share one codec.
 */
import { IndexFormatError } from '../errors.ts';
import { ColbertStore } from './colbert.ts';
import { DenseStore } from './dense.ts';
import { jsonSection, readJsonSection, type FileContents, type IndexHeader } from './format.ts';
import { SparseIndex } from './sparse.ts';

export class Rows {
  ids: string[] = [];
  meta: unknown[] = [];
  alive = new Uint8Array(0);
  dense: DenseStore | null = null;
  sparse: SparseIndex | null = null;
  colbert: ColbertStore | null = null;

  get n(): number {
    return this.ids.length;
  }

  constructor(readonly header: IndexHeader) {
    this.ensureStores();
  }

  /** Creates the tables the header can size: dense once dims are known, ColBERT once its width is (the first embedding may fix both). */
  ensureStores(): void {
    const h = this.header;
    if (!this.dense && h.dims > 0 && h.outputs.includes('dense')) {
      this.dense = new DenseStore(h.dims, h.storage);
      if (h.storage === 'binary+int8' && h.centre) this.dense.setCentre(Float32Array.from(h.centre));
    }
    if (!this.sparse && h.outputs.includes('sparse')) this.sparse = new SparseIndex();
    if (!this.colbert && h.colbertDim && h.outputs.includes('colbert')) this.colbert = new ColbertStore(h.colbertDim, h.colbertStorage);
  }

  pushMeta(id: string, meta: unknown): number {
    const r = this.ids.length;
    this.ids.push(id);
    this.meta.push(meta);
    if (this.alive.length <= r) {
      const a = new Uint8Array(Math.max(1024, this.alive.length * 2));
      a.set(this.alive);
      this.alive = a;
    }
    this.alive[r] = 1;
    return r;
  }

  /** Keeps rows `keep` (ascending) in every table. */
  compact(keep: Int32Array): void {
    this.ids = Array.from(keep, (r) => this.ids[r]);
    this.meta = Array.from(keep, (r) => this.meta[r]);
    this.alive = new Uint8Array(Math.max(1024, keep.length));
    this.alive.fill(1, 0, keep.length);
    this.dense?.compact(keep);
    this.sparse?.compact(keep);
    this.colbert?.compact(keep);
  }

  /** The sections of the index file for the given rows, in that order. */
  encode(rows: ArrayLike<number>): FileContents {
    const h = this.header;
    const m = rows.length;
    const sections: FileContents['sections'] = {
      ids: jsonSection(Array.from(rows, (r) => this.ids[r])),
      meta: jsonSection(Array.from(rows, (r) => this.meta[r] ?? null)),
    };
    const d = this.dense;
    if (d) {
      const w = d.words;
      if (d.storage === 'f32') sections['dense.f32'] = gather(rows, d.dims, (r) => d.codes(r, r + 1).f32!, Float32Array);
      else {
        sections['dense.i8'] = gather(rows, d.dims, (r) => d.codes(r, r + 1).i8!, Int8Array);
        sections['dense.scale'] = Float32Array.from(rows, (r) => d.scale[r]);
        if (d.storage === 'binary+int8') sections['dense.bits'] = gather(rows, w, (r) => d.codes(r, r + 1).bits!, Uint32Array);
      }
    }
    if (this.sparse) {
      const docs = Array.from(rows, (r) => this.sparse!.docs[r]);
      const off = new Uint32Array(m + 1);
      docs.forEach((v, i) => (off[i + 1] = off[i] + v.ids.length));
      const ids = new Uint32Array(off[m]);
      const wts = new Float32Array(off[m]);
      docs.forEach((v, i) => (ids.set(v.ids, off[i]), wts.set(v.weights, off[i])));
      Object.assign(sections, { 'sparse.offsets': off, 'sparse.ids': ids, 'sparse.weights': wts });
    }
    const c = this.colbert;
    if (c) {
      const codes = Array.from(rows, (r) => c.codes(r));
      sections['colbert.counts'] = Uint32Array.from(codes, (x) => x.count);
      if (c.storage === 'f32')
        sections['colbert.f32'] = concat(
          codes.map((x) => x.f32!),
          Float32Array,
        );
      else {
        sections['colbert.i8'] = concat(
          codes.map((x) => x.i8!),
          Int8Array,
        );
        sections['colbert.scale'] = concat(
          codes.map((x) => x.scale!),
          Float32Array,
        );
      }
    }
    return { header: h, count: m, sections };
  }

  /** Appends every row of a decoded file; returns the new rows' numbers. */
  append(f: FileContents): number[] {
    const s = f.sections;
    const ids = readJsonSection<string[]>(s.ids, 'ids');
    const meta = readJsonSection<unknown[]>(s.meta, 'meta');
    if (ids.length !== f.count || meta.length !== f.count) throw new IndexFormatError('index file: ids/meta do not match count', { expected: `${f.count} ids`, received: ids.length });
    const h = this.header;
    const need = (name: string, len: number) => {
      if (!s[name] || s[name].length !== len) throw new IndexFormatError(`index file section "${name}" has the wrong length`, { expected: String(len), received: s[name]?.length });
      return s[name];
    };
    if (this.dense) {
      const d = this.dense;
      const m = f.count;
      if (h.storage === 'f32') d.appendCodes(m, { f32: need('dense.f32', m * h.dims) as Float32Array });
      else d.appendCodes(m, { i8: need('dense.i8', m * h.dims) as Int8Array, scale: need('dense.scale', m) as Float32Array, bits: h.storage === 'binary+int8' ? (need('dense.bits', m * d.words) as Uint32Array) : undefined });
    }
    if (this.sparse) {
      const off = need('sparse.offsets', f.count + 1) as Uint32Array;
      const sid = need('sparse.ids', off[f.count]) as Uint32Array;
      const sw = need('sparse.weights', off[f.count]) as Float32Array;
      for (let i = 0; i < f.count; i++) this.sparse.append({ ids: sid.slice(off[i], off[i + 1]), weights: sw.slice(off[i], off[i + 1]) });
    }
    if (this.colbert) {
      const c = this.colbert;
      const counts = need('colbert.counts', f.count) as Uint32Array;
      const total = counts.reduce((a, b) => a + b, 0);
      const data = c.storage === 'f32' ? need('colbert.f32', total * c.dim) : need('colbert.i8', total * c.dim);
      const scale = c.storage === 'int8' ? (need('colbert.scale', total) as Float32Array) : null;
      let o = 0;
      for (let i = 0; i < f.count; i++) {
        const n = counts[i];
        if (c.storage === 'f32') c.appendCodes(n, { f32: (data as Float32Array).subarray(o * c.dim, (o + n) * c.dim) });
        else c.appendCodes(n, { i8: (data as Int8Array).subarray(o * c.dim, (o + n) * c.dim), scale: scale!.subarray(o, o + n) });
        o += n;
      }
    }
    return ids.map((id, i) => this.pushMeta(id, meta[i]));
  }
}

function gather<T extends Float32Array | Int8Array | Uint32Array>(rows: ArrayLike<number>, width: number, get: (r: number) => T, C: new (n: number) => T): T {
  const out = new C(rows.length * width);
  for (let i = 0; i < rows.length; i++) out.set(get(rows[i]) as never, i * width);
  return out;
}

function concat<T extends Float32Array | Int8Array>(parts: T[], C: new (n: number) => T): T {
  const out = new C(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p as never, o);
    o += p.length;
  }
  return out;
}
