/**
 * int8 and sign-code storage inside one WebAssembly memory, scanned by the SIMD kernels of kernels.wat.
 * Measured (tools/bench/search.ts, CPU time per query on this 2-core VM, 100k × 256): the JS int8 loop
 * ~50 ms, this kernel several times less; the Hamming scan likewise (i64.popcnt vs a JS popcount).
 * Where WebAssembly SIMD is missing (validate() fails) the caller keeps plain typed arrays and JS loops.
 *
 * Layout of the memory (byte offsets, 16-aligned), for capacity `cap` rows of `d` dims and `w` sign words:
 *   [0, Q)              query scratch: int16 query (d), its sign words (w), the Hamming histogram (32·w + 1 int32)
 *   [Q, Q + cap·d)      int8 codes, row-major
 *   [B, B + cap·w·4)    sign words (binary+int8 only)
 *   [O, O + cap·4)      int32 outputs of the last scan (dotRows: its row list, overwritten in place by the sums)
 * Growing moves the sign words up (copyWithin) and re-creates the views (memory.grow detaches the old buffer).
 */
import { SEARCH_WASM_BASE64 } from './simd-wasm.ts';

interface Kernels {
  memory: WebAssembly.Memory;
  dot_i8(q: number, a: number, n: number, d: number, p: number, out: number): void;
  dot_i8_rows(q: number, a: number, rows: number, m: number, d: number, p: number): void;
  hamming(qb: number, b: number, n: number, w: number, out: number, hist: number): void;
}

let compiled: WebAssembly.Module | null | undefined;
function module(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = Uint8Array.from(atob(SEARCH_WASM_BASE64), (c) => c.charCodeAt(0));
    compiled = typeof WebAssembly !== 'undefined' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

const align = (x: number) => (x + 15) & ~15;
const PAGE = 65536;

export class CodeArena {
  i8 = new Int8Array(0);
  bits = new Uint32Array(0);
  private cap = 0;
  private readonly k: Kernels;
  private readonly q: number;
  private readonly qbOff: number;
  private readonly histOff: number;
  private i8Off = 0;
  private bitsOff = 0;
  private outOff = 0;

  /** null when this runtime has no WebAssembly SIMD. */
  static create(d: number, words: number, withBits: boolean): CodeArena | null {
    const m = module();
    return m ? new CodeArena(new WebAssembly.Instance(m).exports as unknown as Kernels, d, words, withBits) : null;
  }

  private constructor(
    k: Kernels,
    private readonly d: number,
    private readonly words: number,
    private readonly withBits: boolean,
  ) {
    this.k = k;
    this.qbOff = align(2 * d);
    this.histOff = align(this.qbOff + 4 * words);
    this.q = align(this.histOff + 4 * (32 * words + 1));
    this.reserve(1024);
  }

  /** Room for `rows` rows; keeps the codes already stored. */
  reserve(rows: number): void {
    if (rows <= this.cap) return;
    const cap = Math.max(rows, this.cap * 2);
    const i8Off = this.q;
    const bitsOff = align(i8Off + cap * this.d);
    const outOff = align(bitsOff + (this.withBits ? cap * this.words * 4 : 0));
    const end = outOff + cap * 4;
    const mem = this.k.memory;
    if (end > mem.buffer.byteLength) mem.grow(Math.ceil((end - mem.buffer.byteLength) / PAGE));
    const u8 = new Uint8Array(mem.buffer);
    if (this.withBits && this.cap) u8.copyWithin(bitsOff, this.bitsOff, this.bitsOff + this.cap * this.words * 4);
    this.cap = cap;
    this.i8Off = i8Off;
    this.bitsOff = bitsOff;
    this.outOff = outOff;
    this.i8 = new Int8Array(mem.buffer, i8Off, cap * this.d);
    this.bits = new Uint32Array(mem.buffer, bitsOff, this.withBits ? cap * this.words : 0);
  }

  /**
   * Σ_{i<p} code[r][i] · q[i] for rows r < n, with q quantised to int16: returns the int32 sums and the
   * query's scale (score ≈ sum · qscale · rowScale). The int16 range is cut so no int32 sum can overflow.
   */
  dot(q: Float32Array, n: number, p: number): { sums: Int32Array; qscale: number } {
    const qscale = this.setQuery(q, p);
    this.k.dot_i8(0, this.i8Off, n, this.d, p, this.outOff);
    return { sums: new Int32Array(this.k.memory.buffer, this.outOff, n), qscale };
  }

  /** The same sums for the listed rows only (sums[j] belongs to rows[j]): the funnel's shortlist. */
  dotRows(q: Float32Array, rows: ArrayLike<number>, p: number): { sums: Int32Array; qscale: number } {
    if (rows.length > this.cap) throw new RangeError(`${rows.length} rows listed, room for ${this.cap}`);
    const qscale = this.setQuery(q, p);
    const out = new Int32Array(this.k.memory.buffer, this.outOff, rows.length);
    out.set(rows);
    this.k.dot_i8_rows(0, this.i8Off, this.outOff, rows.length, this.d, p);
    return { sums: out, qscale };
  }

  /** Writes the int16 query (first p dims) to the scratch area; returns its scale. */
  private setQuery(q: Float32Array, p: number): number {
    let mx = 0;
    for (let i = 0; i < p; i++) mx = Math.max(mx, Math.abs(q[i]));
    const qmax = Math.min(32767, Math.floor(2147483647 / (p * 127)));
    const qscale = mx > 0 ? mx / qmax : 1;
    const qi = new Int16Array(this.k.memory.buffer, 0, this.d);
    for (let i = 0; i < p; i++) qi[i] = Math.round(q[i] / qscale);
    return qscale;
  }

  /** Hamming distances of every row's sign words to `qb`, and how many rows lie at each distance 0..32·w. */
  hamming(qb: Uint32Array, n: number): { dist: Int32Array; hist: Int32Array } {
    const buf = this.k.memory.buffer;
    new Uint32Array(buf, this.qbOff, this.words).set(qb);
    const hist = new Int32Array(buf, this.histOff, 32 * this.words + 1);
    hist.fill(0);
    this.k.hamming(this.qbOff, this.bitsOff, n, this.words, this.outOff, this.histOff);
    return { dist: new Int32Array(buf, this.outOff, n), hist };
  }
}
