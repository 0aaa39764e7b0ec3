/**
 * Per-document ColBERT blocks and MaxSim scoring.
 *
 * Each document's vectors are one contiguous block (count × dim) in a shared buffer, as f32 or as int8
 * with one scale per vector (s = max|v| / 127). The score is `colbertScore`'s (score.ts):
 * (1 / N_q) Σ_i max_j q_i · p_j, products accumulated in float64 in the same order, so f32 blocks give
 * bit-identical scores; int8 blocks give s_j · Σ q_i c_j (asymmetric, query in f32).
 */
import { InvalidInputError } from '../errors.ts';
import type { ColbertVectors } from './types.ts';

export class ColbertStore {
  readonly dim: number;
  readonly storage: 'f32' | 'int8';
  /** Row r's vectors are [start[r], start[r] + count[r]). */
  start: number[] = [];
  count: number[] = [];
  private used = 0; // vectors
  private f32 = new Float32Array(0);
  private i8 = new Int8Array(0);
  private scale = new Float32Array(0);

  constructor(dim: number, storage: 'f32' | 'int8') {
    this.dim = dim;
    this.storage = storage;
  }

  get n(): number {
    return this.start.length;
  }

  get bytes(): number {
    let v = 0;
    for (const c of this.count) v += c;
    return this.storage === 'f32' ? v * this.dim * 4 : v * (this.dim + 4);
  }

  check(v: ColbertVectors, what: string): void {
    if (!v || !(v.data instanceof Float32Array) || !Number.isInteger(v.count) || v.count < 1 || v.dim !== this.dim || v.data.length !== v.count * v.dim) {
      throw new InvalidInputError(`${what}: ColBERT vectors must be { data: Float32Array(count × ${this.dim}), count >= 1, dim: ${this.dim} }`, { expected: `dim ${this.dim}, data length count × dim`, received: v });
    }
  }

  private reserve(vectors: number): void {
    const need = this.used + vectors;
    const cap = this.storage === 'f32' ? this.f32.length / this.dim : this.scale.length;
    if (need <= cap) return;
    const c = Math.max(need, cap * 2, 4096);
    if (this.storage === 'f32') {
      const b = new Float32Array(c * this.dim);
      b.set(this.f32);
      this.f32 = b;
    } else {
      const b = new Int8Array(c * this.dim);
      b.set(this.i8);
      this.i8 = b;
      const s = new Float32Array(c);
      s.set(this.scale);
      this.scale = s;
    }
  }

  append(v: ColbertVectors): void {
    const d = this.dim;
    this.reserve(v.count);
    const o = this.used;
    if (this.storage === 'f32') this.f32.set(v.data, o * d);
    else {
      for (let j = 0; j < v.count; j++) {
        let mx = 0;
        for (let i = 0; i < d; i++) mx = Math.max(mx, Math.abs(v.data[j * d + i]));
        const s = mx > 0 ? mx / 127 : 1;
        this.scale[o + j] = s;
        for (let i = 0; i < d; i++) this.i8[(o + j) * d + i] = Math.round(v.data[j * d + i] / s);
      }
    }
    this.start.push(o);
    this.count.push(v.count);
    this.used += v.count;
  }

  /** Appends stored codes of one document as they are (from a file). */
  appendCodes(count: number, codes: { f32?: Float32Array; i8?: Int8Array; scale?: Float32Array }): void {
    const d = this.dim;
    this.reserve(count);
    const o = this.used;
    if (this.storage === 'f32') this.f32.set(codes.f32!.subarray(0, count * d), o * d);
    else {
      this.i8.set(codes.i8!.subarray(0, count * d), o * d);
      this.scale.set(codes.scale!.subarray(0, count), o);
    }
    this.start.push(o);
    this.count.push(count);
    this.used += count;
  }

  /** The stored codes of one document (views). */
  codes(row: number): { count: number; f32?: Float32Array; i8?: Int8Array; scale?: Float32Array } {
    const a = this.start[row];
    const c = this.count[row];
    const d = this.dim;
    if (this.storage === 'f32') return { count: c, f32: this.f32.subarray(a * d, (a + c) * d) };
    return { count: c, i8: this.i8.subarray(a * d, (a + c) * d), scale: this.scale.subarray(a, a + c) };
  }

  /** One document's vectors as f32 (dequantised for int8). */
  vectors(row: number): ColbertVectors {
    const c = this.codes(row);
    if (c.f32) return { data: c.f32.slice(), count: c.count, dim: this.dim };
    const d = this.dim;
    return { data: Float32Array.from(c.i8!, (x, i) => x * c.scale![Math.floor(i / d)]), count: c.count, dim: d };
  }

  /** Keeps only `keep` rows (ascending), renumbered in that order; the buffer is packed. */
  compact(keep: Int32Array): void {
    const d = this.dim;
    let o = 0;
    const start: number[] = [];
    const count: number[] = [];
    for (const r of keep) {
      const a = this.start[r];
      const c = this.count[r];
      if (this.storage === 'f32') this.f32.copyWithin(o * d, a * d, (a + c) * d);
      else {
        this.i8.copyWithin(o * d, a * d, (a + c) * d);
        this.scale.copyWithin(o, a, a + c);
      }
      start.push(o);
      count.push(c);
      o += c;
    }
    this.start = start;
    this.count = count;
    this.used = o;
  }

  /** MaxSim of the query against one document, as `colbertScore`. */
  score(q: ColbertVectors, row: number): number {
    this.check(q, 'query');
    const d = this.dim;
    const a = this.start[row];
    const c = this.count[row];
    const isF32 = this.storage === 'f32';
    const f = this.f32;
    const b = this.i8;
    let total = 0;
    for (let i = 0; i < q.count; i++) {
      const qb = i * d;
      let best = -Infinity;
      for (let j = 0; j < c; j++) {
        const pb = (a + j) * d;
        let s = 0;
        if (isF32) for (let k = 0; k < d; k++) s += q.data[qb + k] * f[pb + k];
        else {
          for (let k = 0; k < d; k++) s += q.data[qb + k] * b[pb + k];
          s *= this.scale[a + j];
        }
        if (s > best) best = s;
      }
      total += best;
    }
    return total / q.count;
  }
}
