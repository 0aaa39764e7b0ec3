// The WASM SIMD kernels against plain loops on odd sizes, and the committed bytes against kernels.wat.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/fixtures/paths.ts';
import { popcount32, signBits } from './dense.ts';
import { CodeArena } from './simd.ts';
import { SEARCH_WASM_BASE64 } from './simd-wasm.ts';
import { randomUnit, rng } from './testing.ts';

const hasWat2wasm = (() => {
  try {
    execFileSync('wat2wasm', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('search SIMD kernels', () => {
  for (const [d, n, p] of [
    [37, 33, 37],
    [256, 50, 256],
    [1024, 7, 100],
    [40, 1500, 16],
  ]) {
    it(`dot_i8, dot_i8_rows and hamming equal plain loops: d=${d}, n=${n}, prefix ${p}, growing past the first reservation`, () => {
      const a = CodeArena.create(d, Math.ceil(d / 32), true)!;
      expect(a).not.toBeNull(); // Node 20 has WebAssembly SIMD
      const r = rng(d + n);
      const rows: Int8Array[] = [];
      const bits: Uint32Array[] = [];
      const w = Math.ceil(d / 32);
      for (let i = 0; i < n; i++) {
        a.reserve(i + 1);
        const c = Int8Array.from({ length: d }, () => Math.round(r() * 254 - 127));
        a.i8.set(c, i * d);
        rows.push(c);
        const b = signBits(Float32Array.from(c, (x) => x));
        a.bits.set(b, i * w);
        bits.push(b);
      }
      const q = randomUnit(1, d, 5);
      const { sums, qscale } = a.dot(q, n, p);
      const qi = Array.from(q, (x) => Math.round(x / qscale));
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < p; j++) s += rows[i][j] * qi[j];
        expect(sums[i]).toBe(s);
      }
      // dotRows: the same sums for a shuffled subset with repeats, in the listed order.
      const pick = Int32Array.from({ length: Math.min(n, 40) }, (_, j) => (j * 7 + 3) % n);
      const sub = a.dotRows(q, pick, p);
      expect(sub.qscale).toBe(qscale);
      for (let j = 0; j < pick.length; j++) {
        let s = 0;
        for (let i = 0; i < p; i++) s += rows[pick[j]][i] * qi[i];
        expect(sub.sums[j]).toBe(s);
      }
      const qb = signBits(q);
      // Twice: the histogram is zeroed per call, not accumulated across queries.
      for (const _ of [0, 1]) {
        const { dist, hist } = a.hamming(qb, n);
        const want = new Array(32 * w + 1).fill(0);
        for (let i = 0; i < n; i++) {
          const h = bits[i].reduce((t, x, j) => t + popcount32(x ^ qb[j]), 0);
          expect(dist[i]).toBe(h);
          want[h]++;
        }
        expect(Array.from(hist)).toEqual(want);
      }
    });
  }

  it.skipIf(!hasWat2wasm)('simd-wasm.ts is kernels.wat assembled (skipped without Debian wabt: apt-get install -y wabt)', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'm3wasm-')), 'k.wasm');
    execFileSync('wat2wasm', [join(REPO_ROOT, 'src/search/kernels.wat'), '-o', out]);
    expect(readFileSync(out).toString('base64')).toBe(SEARCH_WASM_BASE64);
  });
});
