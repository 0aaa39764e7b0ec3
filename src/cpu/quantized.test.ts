import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type LoadedModel } from '../model/load.ts';
import type { QuantBits } from '../model/quant.ts';
import { ReferenceEncoder } from '../reference/model.ts';
import { resolve } from 'node:path';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { REPO_ROOT } from '../../tools/fixtures/paths.ts';
import { parityTexts } from '../../tools/parity/engine-cases.ts';
import { maxAbs, minRowCosine } from '../../tools/parity/goldens.ts';
import { startModelServer, type ModelServer } from '../../tests/helpers/model-server.ts';
import { quantizedModel } from '../../tests/helpers/quantized-model.ts';
import { dequantizedModel } from './dequantize.ts';
import { createCpuEngine } from './index.ts';

// The CPU backend on quantised weights (issue #18): against the CPU reference on the same dequantised weights (exact up
// to f32 rounding) and against the f32 model (the quantisation error: int8 cos ≥ 0.999, q4 cos ≥ 0.99). Random-weight
// fixtures: these cosines bound the arithmetic, they are not a quality measure (tools/eval: npm run eval -- --dtype).
let server: ModelServer;
let shipped: ModelServer;
beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
  shipped = await startModelServer(resolve(REPO_ROOT, 'public/models'));
});
afterAll(async () => {
  await server?.close();
  await shipped?.close();
});

const measured: string[] = [];
afterAll(() => console.log(`CPU backend, quantised vs f32, worst cosine over texts and exits:\n${measured.join('\n')}`));

const dict = (s: { ids: Uint32Array; weights: Float32Array }) => new Map([...s.ids].map((id, j) => [id, s.weights[j]]));

/** Worst cosine per output between the quantised engine and the f32 one, over every exit; asserts reference parity on the way. */
async function worstCosines(f32: LoadedModel, bits: QuantBits, o: { reference: boolean; texts: string[]; exits: number[] }): Promise<{ dense: number; sparse: number; colbert: number }> {
  const q = quantizedModel(f32, bits);
  expect(q.quantized!.size).toBeGreaterThan(f32.config.num_hidden_layers * 4);
  const deq = dequantizedModel(q);
  const engine = await createCpuEngine(q); // dequantises at load itself
  const base = await createCpuEngine(f32);
  const ref = new ReferenceEncoder(deq);
  const texts = o.texts;
  const H = f32.config.hidden_size;
  const outputs = f32.heads.size ? (['dense', 'sparse', 'colbert'] as const) : (['dense'] as const);
  const worst = { dense: 1, sparse: 1, colbert: 1 };
  try {
    for (const layers of o.exits) {
      const got = await engine.embed(texts, { layers, outputs: [...outputs] });
      if (o.reference) {
        const want = ref.embed(texts, { layers }).embeddings;
        expect(minRowCosine(got.embeddings, want, texts.length, H), `reference, layers ${layers}`).toBeGreaterThanOrEqual(0.99999);
        expect(maxAbs(got.embeddings, want), `reference, layers ${layers}`).toBeLessThanOrEqual(1e-4);
      }
      const full = await base.embed(texts, { layers, outputs: [...outputs] });
      worst.dense = Math.min(worst.dense, minRowCosine(got.embeddings, full.embeddings, texts.length, H));
      for (let i = 0; i < texts.length; i++) {
        if (got.colbert && full.colbert) worst.colbert = Math.min(worst.colbert, minRowCosine(got.colbert[i].data, full.colbert[i].data, got.colbert[i].count, got.colbert[i].dim));
        if (got.sparse && full.sparse) {
          // Sparse weights as vectors over the union of the two id sets; a side with no positive weight is cosine 0, not NaN.
          const [a, b] = [dict(got.sparse[i]), dict(full.sparse[i])];
          const ids = [...new Set([...a.keys(), ...b.keys()])];
          const [va, vb] = [Float32Array.from(ids, (id) => a.get(id) ?? 0), Float32Array.from(ids, (id) => b.get(id) ?? 0)];
          const zero = (v: Float32Array) => v.every((x) => x === 0);
          if (ids.length) worst.sparse = Math.min(worst.sparse, zero(va) || zero(vb) ? 0 : minRowCosine(va, vb, 1, ids.length));
        }
      }
    }
  } finally {
    engine.destroy();
    base.destroy();
  }
  return worst;
}

const fmt = (w: { dense: number; sparse: number; colbert: number }) => `dense ${w.dense.toFixed(6)}, sparse ${w.sparse.toFixed(6)}, ColBERT ${w.colbert.toFixed(6)}`;

describe.each([
  ['bert-tiny', 8],
  ['bert-tiny', 4],
  ['xlmr-tiny', 8],
  ['xlmr-tiny', 4],
  ['m3bert-tiny', 8],
  ['m3bert-tiny', 4],
] as const)('CPU backend on %s (random weights), %i-bit', (fixture, bits) => {
  it('equals the CPU reference on the dequantised weights at every exit; the distance from f32 is bounded', { timeout: 300_000 }, async () => {
    const m = await loadModel(server.folderUrl(fixture));
    const w = await worstCosines(m, bits, { reference: true, texts: parityTexts(), exits: Array.from({ length: m.config.num_hidden_layers }, (_, i) => i + 1) });
    measured.push(`  ${fixture} ${bits}-bit: ${fmt(w)}`);
    // Issue #18's engine bounds on dense and ColBERT: int8 cos ≥ 0.999, q4 ≥ 0.99 — q4 stores only the FFN input
    // projections at 4 bits, the rest int8 (src/model/quant.ts Q4_4BIT_WEIGHTS; every matrix at 4 bits measured dense
    // 0.950–0.976 here). Measured q4: dense bert 0.997523, xlm-r 0.996463, m3BERT 0.993200; xlm-r ColBERT 0.992300.
    // Sparse has no cosine bound in the issue (parity bounds its max |Δ|): xlm-r q4 measured 0.965850, guarded at 0.95.
    const bound = bits === 8 ? { dense: 0.999, sparse: 0.998, colbert: 0.999 } : { dense: 0.99, sparse: 0.95, colbert: 0.99 };
    for (const k of ['dense', 'sparse', 'colbert'] as const) expect(w[k], k).toBeGreaterThanOrEqual(bound[k]);
  });
});

describe.each([8, 4] as const)('CPU backend on the trained m3-tiny, %i-bit', (bits) => {
  it(`stays within issue #18's bound of f32 (int8 cos ≥ 0.999, q4 ≥ 0.99) at its trained exits, dense, sparse and ColBERT`, { timeout: 300_000 }, async () => {
    const m = await loadModel(shipped.folderUrl('m3-tiny'));
    // Shorter texts than the fixtures' (up to 130 words; the 700-word one is the random fixtures' long case).
    const w = await worstCosines(m, bits, { reference: false, texts: parityTexts().slice(0, 6), exits: m.config.mrl_layers ?? [m.config.num_hidden_layers] });
    measured.push(`  m3-tiny ${bits}-bit: ${fmt(w)}`);
    // Measured here (CPU backend; ColBERT is the worst single token vector over 6 texts × 3 exits): int8 dense 0.999985,
    // sparse 0.999993, ColBERT 0.999916; q4 dense 0.999980, sparse 0.999986, ColBERT 0.999896 (with every matrix at
    // 4 bits, before Q4_4BIT_WEIGHTS, ColBERT was 0.988362).
    const bound = bits === 8 ? { dense: 0.999, sparse: 0.999, colbert: 0.999 } : { dense: 0.99, sparse: 0.99, colbert: 0.99 };
    for (const k of ['dense', 'sparse', 'colbert'] as const) expect(w[k], k).toBeGreaterThanOrEqual(bound[k]);
  });
});

it('a model without quantised matrices is returned unchanged', async () => {
  const m = await loadModel(server.folderUrl('bert-tiny'));
  expect(dequantizedModel(m)).toBe(m);
  expect(dequantizedModel({ ...m, quantized: new Map() }).weights).toBe(m.weights);
});
