/**
 * Measures the weight error behind src/model/quant.ts's choices (issue #18): relative RMSE ‖w − deq(w)‖ / ‖w‖
 * of per-row int8, and of three block-32 4-bit rules (symmetric max|w| / 7, symmetric Q4_0 signed-max / −8, and
 * the zero point with quant.ts's clipping search and with min/max ranges (used)), on random weights and on m3-tiny's 2-D weights (position table excluded).
 *   npx tsx tools/quant-error.ts
 */
import { readFileSync } from 'node:fs';
import { dequantize, quantizeInt8, quantizeQ4, Q4_CLIP_STEPS, Q4_GROUP_SIZE } from '../src/model/quant.ts';
import { readSafetensors } from '../src/model/safetensors.ts';
import { f16ToF32, f32ToF16, toFloat32 } from '../src/model/tensor.ts';

const half = (x: number) => f16ToF32(f32ToF16(x));
/** The two symmetric alternatives, per block of 32, with f16 scales like quant.ts. */
const SYMMETRIC: Record<string, (b: Float32Array) => Float32Array> = {
  'sym max/7': (b) => {
    const s = half(b.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 7);
    return b.map((v) => (s ? Math.max(-8, Math.min(7, Math.round(v / s))) * s : 0));
  },
  'sym Q4_0': (b) => {
    const m = b.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
    const s = half(m / -8);
    return b.map((v) => (s ? Math.max(-8, Math.min(7, Math.round(v / s))) * s : 0));
  },
};
const blockwise = (w: Float32Array, f: (b: Float32Array) => Float32Array) => {
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i += Q4_GROUP_SIZE) out.set(f(w.subarray(i, i + Q4_GROUP_SIZE)), i);
  return out;
};
const rel = (w: Float32Array, d: Float32Array) => {
  let n = 0;
  let s = 0;
  for (let i = 0; i < w.length; i++) {
    n += (w[i] - d[i]) ** 2;
    s += w[i] ** 2;
  }
  return Math.sqrt(n / s);
};
let seed = 1;
const u = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296;
const R = 1024;
const C = 1024;
const sets: [string, Float32Array, number][] = [
  ['uniform [-1, 1) 1024x1024', Float32Array.from({ length: R * C }, () => 2 * u() - 1), C],
  ['gaussian 1024x1024', Float32Array.from({ length: R * C }, () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u())), C],
];
const tiny = readSafetensors(new Uint8Array(readFileSync(new URL('../public/models/m3-tiny/model.safetensors', import.meta.url))));
for (const [k, t] of tiny) if (t.shape.length === 2 && !k.includes('pos_embeddings')) sets.push([`m3-tiny ${k} [${t.shape}]`, toFloat32(t), t.shape[1]]);
console.log('| weights | int8 | q4 sym max/7 | q4 sym Q4_0 | q4 zero point + clip search | q4 zero point, min/max (used) |\n|---|--:|--:|--:|--:|--:|');
const tot = { int8: [0, 0], a: [0, 0], b: [0, 0], m: [0, 0], z: [0, 0] };
for (const [name, w, cols] of sets) {
  const rows = w.length / cols;
  const d = {
    int8: dequantize(quantizeInt8(w, rows, cols)),
    a: cols % 32 === 0 ? blockwise(w, SYMMETRIC['sym max/7']) : null,
    b: cols % 32 === 0 ? blockwise(w, SYMMETRIC['sym Q4_0']) : null,
    m: dequantize(quantizeQ4(w, rows, cols, Q4_CLIP_STEPS)),
    z: dequantize(quantizeQ4(w, rows, cols)),
  };
  if (name.startsWith('m3-tiny')) {
    for (const key of ['int8', 'a', 'b', 'm', 'z'] as const) {
      const v = d[key];
      if (!v) continue;
      for (let i = 0; i < w.length; i++) {
        tot[key][0] += (w[i] - v[i]) ** 2;
        tot[key][1] += w[i] ** 2;
      }
    }
  }
  if (!name.startsWith('m3-tiny')) console.log(`| ${name} | ${rel(w, d.int8).toFixed(4)} | ${d.a ? rel(w, d.a).toFixed(4) : '-'} | ${d.b ? rel(w, d.b).toFixed(4) : '-'} | ${rel(w, d.m).toFixed(4)} | ${rel(w, d.z).toFixed(4)} |`);
}
const r = (k: keyof typeof tot) => Math.sqrt(tot[k][0] / tot[k][1]).toFixed(4);
console.log(`| m3-tiny, all ${sets.length - 2} 2-D weights but pos_embeddings | ${r('int8')} | ${r('a')} | ${r('b')} | ${r('m')} | ${r('z')} |`);
