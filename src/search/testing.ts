/**
 * Hand-made data for the search tests and the search benchmark: seeded random unit vectors, planted
 * neighbours, sparse vectors and ColBERT blocks, plus the brute-force oracle built on score.ts.
 */
import { denseScore } from './score.ts';
import type { ColbertVectors, Embedder, EmbedOptions, SparseVector } from './types.ts';

/** mulberry32: a small seeded PRNG, so every test and bench run sees the same vectors. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal by Box–Muller. */
export function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

export function normalise(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = 1 / Math.sqrt(s || 1);
  for (let i = 0; i < v.length; i++) v[i] *= inv;
  return v;
}

/** n random unit vectors of d dims, (n, d) row-major. */
export function randomUnit(n: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const v = out.subarray(i * d, (i + 1) * d);
    for (let j = 0; j < d; j++) v[j] = gauss(r);
    normalise(v);
  }
  return out;
}

/** A unit vector near `base` (cosine about 1 / sqrt(1 + noise²)). */
export function near(base: Float32Array, noise: number, r: () => number): Float32Array {
  const v = Float32Array.from(base, (x) => x + (noise * gauss(r)) / Math.sqrt(base.length));
  return normalise(v);
}

export function randomSparse(r: () => number, vocab: number, nnz: number): SparseVector {
  const ids = new Set<number>();
  while (ids.size < nnz) ids.add(Math.floor(r() * vocab));
  const sorted = Uint32Array.from([...ids].sort((a, b) => a - b));
  return { ids: sorted, weights: Float32Array.from(sorted, () => r() * 0.4) };
}

export function randomColbert(r: () => number, count: number, dim: number): ColbertVectors {
  const data = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const v = data.subarray(i * dim, (i + 1) * dim);
    for (let j = 0; j < dim; j++) v[j] = gauss(r);
    normalise(v);
  }
  return { data, count, dim };
}

/** Exact top-k ids of (n, d) vectors for a query by score.ts's denseScore, ties to the lower row. */
export function bruteDense(q: Float32Array, vectors: Float32Array, d: number, k: number): number[] {
  const n = vectors.length / d;
  const s = Array.from({ length: n }, (_, i) => denseScore(q, vectors.subarray(i * d, (i + 1) * d)));
  return Array.from({ length: n }, (_, i) => i)
    .sort((a, b) => s[b] - s[a] || a - b)
    .slice(0, k);
}

/** |A ∩ B| / |B|. */
export function overlap(a: readonly unknown[], b: readonly unknown[]): number {
  const s = new Set(a);
  return b.filter((x) => s.has(x)).length / b.length;
}

/** Hashed bag of words → unit vector, plus word-id sparse weights: a deterministic stand-in for a model. */
export function hashEmbedder(modelId = 'hash-v1', onCall?: (n: number, opts: EmbedOptions) => void): Embedder & { calls: number } {
  const e = {
    modelId,
    calls: 0,
    async embed(texts: string[], opts: EmbedOptions) {
      e.calls++;
      onCall?.(e.calls, opts);
      opts.signal?.throwIfAborted();
      const d = opts.dims ?? 32;
      const out = new Float32Array(texts.length * d);
      const sparse = texts.map((t, i) => {
        const w = new Map<number, number>();
        for (const word of t.toLowerCase().split(/\W+/).filter(Boolean)) {
          let h = 2166136261;
          for (const c of word) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
          out[i * d + ((h >>> 0) % d)] += 1;
          w.set((h >>> 0) % 5000, 0.5);
        }
        normalise(out.subarray(i * d, (i + 1) * d));
        const ids = Uint32Array.from([...w.keys()].sort((a, b) => a - b));
        return { ids, weights: Float32Array.from(ids, () => 0.5) };
      });
      return { embeddings: out, dims: d, sparse };
    },
  };
  return e;
}
