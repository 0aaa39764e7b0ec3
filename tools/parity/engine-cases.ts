import { Engine } from '../../src/engine/engine.ts';
import type { EmbedOptions } from '../../src/engine/options.ts';
import type { WeightStorage } from '../../src/engine/gpu-weights.ts';
import type { GpuRuntime } from '../../src/gpu/runtime.ts';
import type { LoadedModel } from '../../src/model/load.ts';
import { ReferenceEncoder } from '../../src/reference/model.ts';
import { truncateAndNormalize } from '../../src/reference/pooling.ts';
import type { ParityRow } from './goldens.ts';
import { maxAbs, minRowCosine, sparseMaxAbs } from './goldens.ts';

/**
 * Engine-vs-CPU-reference parity, shared by the Node test, `npm run parity` and the browser page.
 * Inputs: texts whose token counts range from 1 (a lone special token pair around nothing long) to
 * the 512-token limit, embedded together so batches mix lengths and padding.
 */
const WORDS = 'the quick brown fox jumps over a lazy dog while early exit and matryoshka truncation trade quality for speed on every device'.split(' ');

export function parityTexts(): string[] {
  const sizes = [1, 2, 5, 17, 64, 130, 300, 700];
  return sizes.map((n, k) => Array.from({ length: n }, (_, i) => WORDS[(i * 7 + k) % WORDS.length]).join(' '));
}

/** (layers, dims) grid per model: exits 1, middle, last × dims smallest, middle, full. */
export function parityGrid(L: number, H: number, mrlDims?: number[]): { layers: number; dims: number }[] {
  const exits = [...new Set([1, Math.ceil(L / 2), L])];
  const dims = [...new Set([mrlDims?.[0] ?? 8, Math.ceil(H / 2), H])];
  return exits.flatMap((layers) => dims.map((d) => ({ layers, dims: d })));
}

export interface Embedder {
  embed(texts: string[], opts: EmbedOptions): Promise<{ embeddings: Float32Array }> | { embeddings: Float32Array };
}

export async function engineParityRows(meta: { family: string; fixture: string; backend: string; dtype: string; L: number; H: number; mrlDims?: number[] }, engine: Embedder, reference: Embedder): Promise<ParityRow[]> {
  const texts = parityTexts();
  const rows: ParityRow[] = [];
  // The CPU reference is the slow side: run it once per exit (full width, unnormalised) and derive
  // each Matryoshka prefix from that with the reference's own truncate-then-normalise.
  const pooledByLayer = new Map<number, Float32Array>();
  for (const { layers, dims } of parityGrid(meta.L, meta.H, meta.mrlDims)) {
    const got = (await engine.embed(texts, { layers, dims })).embeddings;
    if (!pooledByLayer.has(layers)) pooledByLayer.set(layers, (await reference.embed(texts, { layers, normalize: false })).embeddings);
    const want = truncateAndNormalize(pooledByLayer.get(layers)!, texts.length, meta.H, { dims, normalize: true });
    rows.push({ family: meta.family, backend: meta.backend, dtype: meta.dtype, layers, dims, n: texts.length, cos_min: minRowCosine(got, want, texts.length, dims), max_abs: maxAbs(got, want), output: 'dense', fixture: meta.fixture, against: 'cpu-ref f32' });
  }
  return rows;
}

/** Thresholds from the engine issue (f32, f16) and the quantisation issue #18 (int8 cos ≥ 0.999, q4 cos ≥ 0.99). */
export function engineThreshold(dtype: string): { cos_min: number; max_abs?: number } {
  return dtype === 'f32' ? { cos_min: 0.99999, max_abs: 1e-4 } : dtype === 'q4' ? { cos_min: 0.99 } : { cos_min: 0.999 };
}

interface BgeM3Engine {
  embed(texts: string[], opts: EmbedOptions & { outputs: ('dense' | 'sparse' | 'colbert')[] }): Promise<{ embeddings: Float32Array; sparse?: { ids: Uint32Array; weights: Float32Array }[]; colbert?: { data: Float32Array; count: number; dim: number }[] }>;
}
interface BgeM3Reference {
  bgeM3(texts: string[], opts: EmbedOptions): { dense: Float32Array; sparse: { ids: Uint32Array; weights: Float32Array }[]; colbert: Float32Array[] };
}

/**
 * BGE-M3's three outputs from the engine against the CPU reference, at the full depth and exit 1.
 * Sparse is compared by weight over the union of ids (never by key sets: near-zero weights flip
 * across the relu threshold between precisions).
 */
export async function bgeM3ParityRows(meta: { family: string; fixture: string; backend: string; dtype: string; L: number; H: number }, engine: BgeM3Engine, reference: BgeM3Reference): Promise<ParityRow[]> {
  const texts = parityTexts();
  const rows: ParityRow[] = [];
  for (const layers of [...new Set([meta.L, 1])]) {
    const got = await engine.embed(texts, { layers, outputs: ['dense', 'sparse', 'colbert'] });
    const want = reference.bgeM3(texts, { layers });
    const base = { family: meta.family, backend: meta.backend, dtype: meta.dtype, layers, n: texts.length, fixture: meta.fixture, against: 'cpu-ref f32' };
    rows.push({ ...base, output: 'dense', dims: meta.H, cos_min: minRowCosine(got.embeddings, want.dense, texts.length, meta.H), max_abs: maxAbs(got.embeddings, want.dense) });
    rows.push({ ...base, output: 'sparse', dims: 1, cos_min: 1, max_abs: Math.max(...want.sparse.map((w, i) => sparseMaxAbs(got.sparse![i], w))) });
    let cos = Infinity;
    let abs = 0;
    want.colbert.forEach((w, i) => {
      const g = got.colbert![i];
      cos = Math.min(cos, minRowCosine(g.data, w, g.count, g.dim));
      abs = Math.max(abs, maxAbs(g.data, w));
    });
    rows.push({ ...base, output: 'colbert', dims: meta.H, cos_min: cos, max_abs: abs });
  }
  return rows;
}

/**
 * Every engine-vs-reference row for one loaded fixture: the weight `storages` (default f32 and f16; `npm run
 * parity` adds int8 and q4, quantised at load, issue #18), the (layers, dims) grid, and BGE-M3's outputs when
 * the model has heads. Shared by `npm run parity` (Node) and the browser page. The fixtures' weights are random: these rows
 * measure the engine's arithmetic, not a quantised model's quality.
 */
export async function modelParityRows(rt: GpuRuntime, model: LoadedModel, fixture: string, backend: string, storages: readonly WeightStorage[] = ['f32', 'f16']): Promise<ParityRow[]> {
  const reference = new ReferenceEncoder(model);
  const cfg = model.config;
  const rows: ParityRow[] = [];
  for (const storage of storages) {
    const engine = await Engine.create(rt, model, { weights: storage, maxBatchTokens: 1500 });
    const meta = { family: cfg.family, fixture, backend, dtype: engine.dtype, L: cfg.num_hidden_layers, H: cfg.hidden_size, mrlDims: cfg.mrl_dims };
    rows.push(...(await engineParityRows(meta, engine, reference)));
    if (model.heads.size) rows.push(...(await bgeM3ParityRows(meta, engine, reference)));
    engine.destroy();
  }
  return rows;
}
