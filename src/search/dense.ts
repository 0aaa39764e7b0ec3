/**
 * Dense vectors in one of three storages, and the scans over them.
 *
 * - 'f32':         (n, d) Float32Array; scores are q · p accumulated in float64, as `denseScore` does.
 * - 'int8':        (n, d) Int8Array codes c = round(v / s) with one scale s = max|v| / 127 per vector;
 *                  score = s · Σ q_i c_i (the query stays f32: asymmetric, no query rounding error).
 * - 'binary+int8': the int8 codes above plus 1-bit sign codes, (n, ⌈d/32⌉) Uint32Array, bit i of word w =
 *                  v[32w + i] > c[32w + i], where c is the index's centre (the mean of its first documents,
 *                  or zero). The first pass ranks by Hamming distance (popcount of XOR) to the query's code
 *                  taken against the same centre, then the shortlist is rescored with the int8 codes, which
 *                  with a centre hold round((v − c) / s) (score = s · Σ q_i code_i + q · c)
 *                  (Hugging Face's embedding-quantisation recipe: binary retrieval + int8 rescoring).
 *                  Why a centre: trained embeddings are anisotropic (m3-tiny v2's SciFact abstracts have a mean
 *                  of norm 0.94), so raw signs are nearly the same for every document; signs of v − c split the
 *                  corpus instead. Measured on m3-tiny v2 × SciFact (5,183 abstracts, 300 queries, 128 dims),
 *                  recall@10 of the ×10 funnel against exact f32: raw codes 0.236, centred 0.605; the exact scan
 *                  of the int8 codes, which caps the funnel, 0.954 for codes of v and 0.983 for codes of v − c
 *                  (tools/bench/search-recall.ts).
 *
 * Scans are brute force over contiguous typed arrays with a bounded heap (TopK), 4-way unrolled dot
 * products and a branch-free popcount. `accept(row)` (tombstones, user filters) runs only for a
 * candidate that beats the heap's current minimum, so it costs nothing on most rows.
 */
import { InvalidInputError } from '../errors.ts';
import { CodeArena } from './simd.ts';
import { TopK } from './topk.ts';
import type { DenseStorage } from './types.ts';

export type Accept = (row: number) => boolean;

function grow<T extends Float32Array | Int8Array | Uint32Array>(a: T, need: number, make: (n: number) => T): T {
  if (need <= a.length) return a;
  const b = make(Math.max(need, a.length * 2, 1024));
  b.set(a);
  return b;
}

/** Count of set bits in a 32-bit word (Hacker's Delight, fig. 5-2). */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Sign codes of one vector: bit i set when v[i] > centre[i] (centre null: > 0). */
export function signBits(v: Float32Array, out = new Uint32Array(Math.ceil(v.length / 32)), centre: Float32Array | null = null): Uint32Array {
  out.fill(0);
  for (let i = 0; i < v.length; i++) if (v[i] > (centre ? centre[i] : 0)) out[i >>> 5] |= 1 << (i & 31);
  return out;
}

export class DenseStore {
  readonly dims: number;
  readonly storage: DenseStorage;
  readonly words: number;
  n = 0;
  f32 = new Float32Array(0); // (n, d) for 'f32'
  i8 = new Int8Array(0); // (n, d) for 'int8' and 'binary+int8'
  scale = new Float32Array(0); // (n) int8 scales
  bits = new Uint32Array(0); // (n, words) for 'binary+int8'
  /** (d) what sign codes are taken against ('binary+int8'; null: zero). Fixed while the store holds rows. */
  centre: Float32Array | null = null;
  /** int8 codes and sign words in WebAssembly memory for the SIMD kernels (null: f32, or no WASM SIMD here). */
  private readonly arena: CodeArena | null;

  constructor(dims: number, storage: DenseStorage) {
    if (!Number.isInteger(dims) || dims < 1) throw new InvalidInputError('dims must be a positive integer', { expected: 'integer >= 1', received: dims });
    if (storage !== 'f32' && storage !== 'int8' && storage !== 'binary+int8') {
      throw new InvalidInputError('storage must be "f32", "int8" or "binary+int8"', { expected: '"f32" | "int8" | "binary+int8"', received: storage });
    }
    this.dims = dims;
    this.storage = storage;
    this.words = Math.ceil(dims / 32);
    this.arena = storage === 'f32' ? null : CodeArena.create(dims, this.words, storage === 'binary+int8');
  }

  /** Room for `rows` rows of codes (JS arrays, or the arena's views). */
  private reserve(rows: number): void {
    this.scale = grow(this.scale, rows, (x) => new Float32Array(x));
    if (this.arena) {
      this.arena.reserve(rows);
      this.i8 = this.arena.i8;
      this.bits = this.arena.bits;
      return;
    }
    this.i8 = grow(this.i8, rows * this.dims, (x) => new Int8Array(x));
    if (this.storage === 'binary+int8') this.bits = grow(this.bits, rows * this.words, (x) => new Uint32Array(x));
  }

  get bytes(): number {
    const d = this.dims;
    if (this.storage === 'f32') return this.n * d * 4;
    return this.n * (d + 4) + (this.storage === 'binary+int8' ? this.n * this.words * 4 : 0);
  }

  /** Sets the centre of the sign codes; only while the store is empty, since stored codes depend on it. */
  setCentre(c: Float32Array | null): void {
    if (this.n > 0) throw new InvalidInputError('the sign-code centre can only be set on an empty store', { expected: '0 rows', received: this.n });
    if (c && c.length !== this.dims) throw new InvalidInputError(`centre must have the index's ${this.dims} dims`, { expected: `${this.dims} values`, received: c.length });
    this.centre = c;
  }

  /** Appends m vectors, (m, d) row-major f32. */
  append(v: Float32Array): void {
    const d = this.dims;
    if (v.length % d !== 0) throw new InvalidInputError(`dense vectors: length ${v.length} is not a multiple of dims ${d}`, { expected: `a multiple of ${d}`, received: v.length });
    const m = v.length / d;
    const n0 = this.n;
    if (this.storage === 'f32') {
      this.f32 = grow(this.f32, (n0 + m) * d, (x) => new Float32Array(x));
      this.f32.set(v, n0 * d);
    } else {
      this.reserve(n0 + m);
      // With a centre (binary+int8), the int8 codes hold v − centre: the residual is what tells documents apart,
      // and its range is several times smaller than v's on anisotropic embeddings, so rounding costs less.
      const c = this.centre ?? new Float32Array(d);
      for (let r = 0; r < m; r++) {
        let mx = 0;
        for (let i = 0; i < d; i++) mx = Math.max(mx, Math.abs(v[r * d + i] - c[i]));
        const s = mx > 0 ? mx / 127 : 1;
        this.scale[n0 + r] = s;
        const o = (n0 + r) * d;
        for (let i = 0; i < d; i++) this.i8[o + i] = Math.round((v[r * d + i] - c[i]) / s);
      }
      if (this.storage === 'binary+int8') {
        const w = this.words;
        for (let r = 0; r < m; r++) signBits(v.subarray(r * d, (r + 1) * d), this.bits.subarray((n0 + r) * w, (n0 + r + 1) * w), this.centre);
      }
    }
    this.n += m;
  }

  /** Appends stored codes as they are (from a file or a persisted chunk): no re-quantisation, so a reload scores identically. */
  appendCodes(m: number, codes: { f32?: Float32Array; i8?: Int8Array; scale?: Float32Array; bits?: Uint32Array }): void {
    const d = this.dims;
    const n0 = this.n;
    if (this.storage === 'f32') {
      this.f32 = grow(this.f32, (n0 + m) * d, (x) => new Float32Array(x));
      this.f32.set(codes.f32!.subarray(0, m * d), n0 * d);
    } else {
      this.reserve(n0 + m);
      this.i8.set(codes.i8!.subarray(0, m * d), n0 * d);
      this.scale.set(codes.scale!.subarray(0, m), n0);
      if (this.storage === 'binary+int8') {
        this.bits.set(codes.bits!.subarray(0, m * this.words), n0 * this.words);
      }
    }
    this.n += m;
  }

  /** The stored codes of rows [a, b) (views, no copy). */
  codes(a: number, b: number): { f32?: Float32Array; i8?: Int8Array; scale?: Float32Array; bits?: Uint32Array } {
    const d = this.dims;
    if (this.storage === 'f32') return { f32: this.f32.subarray(a * d, b * d) };
    const out: { i8: Int8Array; scale: Float32Array; bits?: Uint32Array } = { i8: this.i8.subarray(a * d, b * d), scale: this.scale.subarray(a, b) };
    if (this.storage === 'binary+int8') out.bits = this.bits.subarray(a * this.words, b * this.words);
    return out;
  }

  /** Keeps only `keep` rows (ascending), in that order. */
  compact(keep: Int32Array): void {
    const d = this.dims;
    const w = this.words;
    keep.forEach((src, dst) => {
      if (src === dst) return;
      if (this.storage === 'f32') this.f32.copyWithin(dst * d, src * d, (src + 1) * d);
      else {
        this.i8.copyWithin(dst * d, src * d, (src + 1) * d);
        this.scale[dst] = this.scale[src];
        if (this.storage === 'binary+int8') this.bits.copyWithin(dst * w, src * w, (src + 1) * w);
      }
    });
    this.n = keep.length;
  }

  /** The stored vector of one row as f32 (dequantised for int8). */
  vector(row: number): Float32Array {
    const d = this.dims;
    if (this.storage === 'f32') return this.f32.slice(row * d, (row + 1) * d);
    const s = this.scale[row];
    const c = this.centre;
    return Float32Array.from(this.i8.subarray(row * d, (row + 1) * d), (x, i) => x * s + (c ? c[i] : 0));
  }

  private cq: Float32Array | null = null;
  private cp = 0;
  private cv = 0;
  /** q · centre over the first p dims (0 without a centre): the part of every int8 score the residual codes leave out. Cached per query. */
  centreDot(q: Float32Array, p = this.dims): number {
    const c = this.centre;
    if (!c) return 0;
    if (this.cq !== q || this.cp !== p) {
      let s = 0;
      for (let i = 0; i < p; i++) s += q[i] * c[i];
      [this.cq, this.cp, this.cv] = [q, p, s];
    }
    return this.cv;
  }

  /** Score of one row at stored precision over the first `p` dims (default all). */
  score(q: Float32Array, row: number, p = this.dims): number {
    const o = row * this.dims;
    let s = 0;
    if (this.storage === 'f32') {
      const a = this.f32;
      for (let i = 0; i < p; i++) s += q[i] * a[o + i];
      return s;
    }
    const a = this.i8;
    for (let i = 0; i < p; i++) s += q[i] * a[o + i];
    return s * this.scale[row] + this.centreDot(q, p);
  }

  /** Exact top-k over all rows at stored precision and the first `p` dims. */
  scan(q: Float32Array, k: number, accept: Accept, p = this.dims): TopK {
    this.checkQuery(q);
    const heap = new TopK(k);
    // One monomorphic loop per element type: a Float32Array | Int8Array union makes V8's element loads polymorphic.
    if (this.storage === 'f32') scanF32(q, this.f32, this.n, this.dims, p, heap, accept);
    else if (!this.arena) scanI8(q, this.i8, this.scale, this.centreDot(q, p), this.n, this.dims, p, heap, accept);
    else {
      // SIMD sums use an int16-rounded query; the best k + max(k, 8) are rescored with the f32 query, so
      // the ranking and the scores are those of scanI8.
      const { sums, qscale } = this.arena.dot(q, this.n, p);
      const wide = new TopK(k + Math.max(k, 8));
      const sc = this.scale;
      let min = -Infinity;
      for (let r = 0; r < this.n; r++) {
        const s = sums[r] * qscale * sc[r];
        if (s > min && accept(r)) {
          wide.push(s, r);
          min = wide.min;
        }
      }
      for (const r of wide.sorted().rows) heap.push(this.score(q, r, p), r);
    }
    return heap;
  }

  /**
   * The m rows nearest to the query's sign code by Hamming distance (ties: lower row first), nearest first.
   * Distances are small integers (0..32·words), so the m nearest are picked by counting, not by a heap:
   * the kernel counts rows per distance as it goes, and one pass collects the rows up to the threshold
   * distance (nearestByCount). Its cost does not grow with m, which is what lets the funnel rescore a long
   * shortlist (see `rescore`).
   */
  hammingScan(q: Float32Array, m: number, accept: Accept): Int32Array {
    this.checkQuery(q);
    if (this.storage !== 'binary+int8') throw new InvalidInputError('a binary first pass needs "binary+int8" storage', { expected: 'storage "binary+int8"', received: this.storage });
    const qb = signBits(q, undefined, this.centre);
    const { dist, hist } = this.arena ? this.arena.hamming(qb, this.n) : hammingJs(this.bits, qb, this.n, this.words);
    return nearestByCount(dist, this.n, this.words * 32, m, accept, hist);
  }

  /**
   * Rescores candidate rows at full dims and stored precision; top-k of them. With the SIMD arena, the
   * candidates are ranked by the kernel's int16-query sums first and only the best k + max(k, 8) get the
   * exact f32-query score, as in `scan`: the JS loop costs ~10× the kernel per candidate, and a long
   * shortlist (the funnel's 2,000 for k = 10) is what keeps recall on narrow trained embeddings.
   */
  rescore(q: Float32Array, rows: ArrayLike<number>, k: number): TopK {
    const heap = new TopK(k);
    if (this.arena && rows.length > k + Math.max(k, 8)) {
      const { sums, qscale } = this.arena.dotRows(q, rows, this.dims);
      const wide = new TopK(k + Math.max(k, 8));
      const sc = this.scale;
      for (let j = 0; j < rows.length; j++) wide.push(sums[j] * qscale * sc[rows[j]], rows[j]);
      for (const r of wide.sorted().rows) heap.push(this.score(q, r), r);
      return heap;
    }
    for (let i = 0; i < rows.length; i++) heap.push(this.score(q, rows[i]), rows[i]);
    return heap;
  }

  checkQuery(q: Float32Array): void {
    if (!(q instanceof Float32Array) || q.length !== this.dims) {
      throw new InvalidInputError(`dense query must be a Float32Array of the index's ${this.dims} dims`, { expected: `Float32Array(${this.dims})`, received: q });
    }
  }
}

/** Blocked dot products over (n, d) f32 rows, first p dims, 4 accumulators; pushes rows that beat the heap. */
function scanF32(q: Float32Array, a: Float32Array, n: number, d: number, p: number, heap: TopK, accept: Accept): void {
  const p4 = p & ~3;
  let min = heap.min;
  for (let r = 0, o = 0; r < n; r++, o += d) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let i = 0;
    for (; i < p4; i += 4) {
      s0 += q[i] * a[o + i];
      s1 += q[i + 1] * a[o + i + 1];
      s2 += q[i + 2] * a[o + i + 2];
      s3 += q[i + 3] * a[o + i + 3];
    }
    for (; i < p; i++) s0 += q[i] * a[o + i];
    const s = s0 + s1 + (s2 + s3);
    if (s > min && accept(r)) {
      heap.push(s, r);
      min = heap.min;
    }
  }
}

/** The same over int8 codes; each row's sum is scaled by its own scale, plus q · centre (`offset`) for residual codes. */
function scanI8(q: Float32Array, a: Int8Array, scale: Float32Array, offset: number, n: number, d: number, p: number, heap: TopK, accept: Accept): void {
  const p4 = p & ~3;
  let min = heap.min;
  for (let r = 0, o = 0; r < n; r++, o += d) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let i = 0;
    for (; i < p4; i += 4) {
      s0 += q[i] * a[o + i];
      s1 += q[i + 1] * a[o + i + 1];
      s2 += q[i + 2] * a[o + i + 2];
      s3 += q[i + 3] * a[o + i + 3];
    }
    for (; i < p; i++) s0 += q[i] * a[o + i];
    const s = (s0 + s1 + (s2 + s3)) * scale[r] + offset;
    if (s > min && accept(r)) {
      heap.push(s, r);
      min = heap.min;
    }
  }
}

/** Hamming distances of n rows of w sign words to qb, and their histogram (the JS fallback of the WASM kernel). */
function hammingJs(bits: Uint32Array, qb: Uint32Array, n: number, w: number): { dist: Int32Array; hist: Int32Array } {
  const dist = new Int32Array(n);
  const hist = new Int32Array(32 * w + 1);
  for (let r = 0, o = 0; r < n; r++, o += w) {
    let h = 0;
    for (let j = 0; j < w; j++) h += popcount32(bits[o + j] ^ qb[j]);
    dist[r] = h;
    hist[h]++;
  }
  return { dist, hist };
}

/**
 * The m accepted rows of smallest distance (ties: lower row first), sorted, by counting: `hist` (every row's
 * distance counted; computed here when not given) gives the threshold distance t at which m rows are reached;
 * one pass collects the rows at distance ≤ t, and only those are filtered by `accept` and counting-sorted.
 * When rejected rows leave fewer than m, every accepted row is collected instead (filters are rare, and a
 * selective one makes the scan exhaustive anyway).
 */
export function nearestByCount(dist: Int32Array, n: number, maxD: number, m: number, accept: Accept, hist?: Int32Array): Int32Array {
  if (!hist) {
    hist = new Int32Array(maxD + 1);
    for (let r = 0; r < n; r++) hist[dist[r]]++;
  }
  let t = 0;
  let within = 0; // rows at distance ≤ t
  for (; t < maxD; t++) if ((within += hist[t]) >= m) break;
  if (t === maxD) within = n;
  const collect = (limit: number, size: number): Int32Array => {
    const rows = new Int32Array(size);
    let c = 0;
    for (let r = 0; r < n; r++) if (dist[r] <= limit) rows[c++] = r;
    // Filter, then a stable counting sort by distance over the candidates only (rows stay ascending per distance).
    const start = new Int32Array(limit + 2);
    let kept = 0;
    for (let i = 0; i < c; i++) {
      const r = rows[i];
      if (accept(r)) {
        rows[kept++] = r;
        start[dist[r] + 1]++;
      }
    }
    for (let h = 1; h <= limit + 1; h++) start[h] += start[h - 1];
    const out = new Int32Array(kept);
    for (let i = 0; i < kept; i++) out[start[dist[rows[i]]]++] = rows[i];
    return out;
  };
  let out = collect(t, within);
  if (out.length < m && t < maxD) out = collect(maxD, n);
  return out.length > m ? out.subarray(0, m) : out;
}
