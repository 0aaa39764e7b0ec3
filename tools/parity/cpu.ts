/**
 * CPU backend (src/cpu) against the CPU reference, shared by the Node test (src/cpu/encoder.test.ts),
 * `npm run parity` (rows 'cpu-node' and 'cpu-browser') and the Chromium spec (e2e/cpu.spec.ts). Pure
 * TypeScript: runs in Node and in a worker.
 *
 * Rows per fixture: dense at every exit × three dims; sparse and ColBERT at every exit (full width, and
 * truncated to 8 dims at the last exit); MCLS at the first and last exit. Fixtures without BGE-M3 heads
 * get seeded random ones (same shapes as bge-m3's), so every family proves its head path too.
 */
import { createCpuEngine } from '../../src/cpu/index.ts';
import type { LoadedModel } from '../../src/model/load.ts';
import type { RawTensor } from '../../src/model/tensor.ts';
import { seeded } from '../../src/gpu/kernels/testing.ts';
import { exitNorm } from '../../src/reference/encoder.ts';
import { colbertVectors, sparseWeights } from '../../src/reference/heads.ts';
import { ReferenceEncoder } from '../../src/reference/model.ts';
import { pool, poolMcls, truncateAndNormalize } from '../../src/reference/pooling.ts';
import type { EncoderBatch } from '../../src/tokenize/tokenizer.ts';
import { parityGrid, parityTexts } from './engine-cases.ts';
import { maxAbs, minRowCosine, sparseMaxAbs, type ParityRow } from './goldens.ts';

function f32Tensor(shape: number[], seed: number, scale: number): RawTensor {
  const v = seeded(
    shape.reduce((a, b) => a * b, 1),
    seed,
    -scale,
    scale,
  );
  return { dtype: 'f32', shape, data: new Uint8Array(v.buffer) };
}

/** The model with BGE-M3-shaped heads: its own when it has them, else seeded ones (colbert_linear H→H, sparse_linear H→1). */
export function withHeads(model: LoadedModel): { model: LoadedModel; synthetic: boolean } {
  if (model.heads.size) return { model, synthetic: false };
  const H = model.config.hidden_size;
  const s = 1 / Math.sqrt(H);
  const heads = new Map<string, RawTensor>([
    ['colbert_linear.weight', f32Tensor([H, H], 11, s)],
    ['colbert_linear.bias', f32Tensor([H], 12, s)],
    ['sparse_linear.weight', f32Tensor([1, H], 13, s)],
    ['sparse_linear.bias', f32Tensor([1], 14, 0.1)],
  ]);
  return { model: { ...model, heads }, synthetic: true };
}

/** The reference's exit hidden states (B, T, H) at every exit 1..L from one forward, for `texts` (MCLS-templated when asked). */
function referenceExits(reference: ReferenceEncoder, texts: string[], mcls?: number): { batch: EncoderBatch; lengths: number[]; exits: Float32Array[] } {
  const { batch } = reference.tokenize(texts, mcls);
  const cfg = reference.model.config;
  const L = cfg.num_hidden_layers;
  const { hiddenStates } = reference.forward(batch, L, true);
  const lengths = Array.from({ length: batch.B }, (_, b) => batch.attentionMask.subarray(b * batch.T, (b + 1) * batch.T).reduce((a, v) => a + v, 0));
  const exits = hiddenStates!.slice(1).map((h) => exitNorm(cfg, reference.weights, h, batch.B * batch.T));
  return { batch, lengths, exits };
}

export async function cpuParityRows(loaded: LoadedModel, fixture: string, backend: string, opts: { threads?: number } = {}): Promise<ParityRow[]> {
  const { model, synthetic } = withHeads(loaded);
  const cfg = model.config;
  const L = cfg.num_hidden_layers;
  const H = cfg.hidden_size;
  const reference = new ReferenceEncoder(model);
  const engine = await createCpuEngine(model, { threads: opts.threads });
  const texts = parityTexts();
  const n = texts.length;
  const rows: ParityRow[] = [];
  const base = { family: cfg.family, backend, dtype: engine.dtype, n, fixture, against: 'cpu-ref f32' };
  const heads = { ...base, against: synthetic ? 'cpu-ref f32 (seeded test heads)' : 'cpu-ref f32' };
  try {
    const { batch, lengths, exits } = referenceExits(reference, texts);
    const { B, T, inputIds, attentionMask } = batch;
    const dims = [...new Set(parityGrid(L, H, cfg.mrl_dims).map((g) => g.dims))];
    for (let layers = 1; layers <= L; layers++) {
      const h = exits[layers - 1];
      const pooled = pool(h, attentionMask, B, T, H, model.pooling.pooling);
      for (const d of dims) {
        const got = (await engine.embed(texts, { layers, dims: d })).embeddings;
        const want = truncateAndNormalize(pooled, n, H, { dims: d, normalize: model.pooling.normalize, layerNormBeforeTruncate: model.pooling.layerNormBeforeTruncate });
        rows.push({ ...base, layers, dims: d, output: 'dense', cos_min: minRowCosine(got, want, n, d), max_abs: maxAbs(got, want) });
      }
      for (const cd of layers === L ? [H, 8] : [H]) {
        const got = await engine.embed(texts, { layers, outputs: ['sparse', 'colbert'], colbertDims: cd });
        let sparse = 0;
        let cos = Infinity;
        let abs = 0;
        for (let b = 0; b < B; b++) {
          const hb = h.subarray(b * T * H, (b + 1) * T * H);
          const ids = inputIds.subarray(b * T, (b + 1) * T);
          sparse = Math.max(sparse, sparseMaxAbs(got.sparse![b], sparseWeights(hb, ids, attentionMask.subarray(b * T, (b + 1) * T), T, reference.sparse!, model.tokenizer.specialIds)));
          const want = colbertVectors(hb, lengths[b], reference.colbert!, cd);
          const g = got.colbert![b];
          cos = Math.min(cos, minRowCosine(g.data, want, g.count, g.dim));
          abs = Math.max(abs, maxAbs(g.data, want));
        }
        if (cd === H) rows.push({ ...heads, layers, dims: 1, output: 'sparse', cos_min: 1, max_abs: sparse });
        rows.push({ ...heads, layers, dims: cd, output: 'colbert', cos_min: cos, max_abs: abs });
      }
    }
    // MCLS (BGE-M3 §3.3): a CLS every 16 tokens, dense = mean of the CLS states, at the first and last exit.
    const m = referenceExits(reference, texts, 16);
    for (const layers of [...new Set([1, L])]) {
      const got = (await engine.embed(texts, { layers, mcls: 16 })).embeddings;
      const pooled = poolMcls(m.exits[layers - 1], m.batch.inputIds, m.lengths, m.batch.B, m.batch.T, H, m.batch.inputIds[0]);
      const want = truncateAndNormalize(pooled, n, H, { dims: H, normalize: model.pooling.normalize, layerNormBeforeTruncate: model.pooling.layerNormBeforeTruncate });
      rows.push({ ...base, layers, dims: H, output: 'dense-mcls', cos_min: minRowCosine(got, want, n, H), max_abs: maxAbs(got, want) });
    }
  } finally {
    engine.destroy();
  }
  return rows;
}
