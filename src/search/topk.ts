/**
 * Bounded min-heap for top-k: O(n log k) over n candidates, with the current k-th best score exposed
 * as `min` so scans can skip a candidate with one comparison. Ties keep the lower row (the first seen)
 * so results are deterministic.
 */
export class TopK {
  readonly k: number;
  size = 0;
  private readonly s: Float64Array;
  private readonly r: Int32Array;

  constructor(k: number) {
    this.k = k;
    this.s = new Float64Array(k);
    this.r = new Int32Array(k);
  }

  /** Score a new candidate must beat; -Infinity until the heap is full. */
  get min(): number {
    return this.size < this.k ? -Infinity : this.s[0];
  }

  /** worse(a, b): a ranks below b (lower score, or equal score and higher row). */
  private worse(i: number, j: number): boolean {
    const a = this.s[i];
    const b = this.s[j];
    return a < b || (a === b && this.r[i] > this.r[j]);
  }

  push(score: number, row: number): void {
    const { s, r } = this;
    if (this.size < this.k) {
      let i = this.size++;
      s[i] = score;
      r[i] = row;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!this.worse(i, p)) break;
        this.swap(i, p);
        i = p;
      }
      return;
    }
    if (this.k === 0 || score < s[0] || (score === s[0] && row > r[0])) return;
    s[0] = score;
    r[0] = row;
    let i = 0;
    for (;;) {
      const a = 2 * i + 1;
      const b = a + 1;
      let m = i;
      if (a < this.k && this.worse(a, m)) m = a;
      if (b < this.k && this.worse(b, m)) m = b;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(i: number, j: number): void {
    const ts = this.s[i];
    this.s[i] = this.s[j];
    this.s[j] = ts;
    const tr = this.r[i];
    this.r[i] = this.r[j];
    this.r[j] = tr;
  }

  /** Rows and scores, best first. */
  sorted(): { rows: Int32Array; scores: Float64Array } {
    const idx = Array.from({ length: this.size }, (_, i) => i).sort((a, b) => this.s[b] - this.s[a] || this.r[a] - this.r[b]);
    return { rows: Int32Array.from(idx, (i) => this.r[i]), scores: Float64Array.from(idx, (i) => this.s[i]) };
  }
}
