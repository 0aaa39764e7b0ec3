/**
 * Which weights q4 may take (issue #18): quantises one class of tensors at a time (the rest f32), or a mix of
 * classes at q4 / int8, and reports the worst cosine against the f32 model per family, on the random-weight fixtures
 * (every exit × dims of `npm run parity`'s grid, ColBERT at exit 1 and the last) and on the trained m3-tiny (its
 * trained exits, full width, ColBERT). The forward is the CPU reference (src/reference) on the dequantised weights,
 * which is what every backend computes up to f32 rounding (src/model/QUANT.md: one f32 multiply per weight).
 *   npx tsx tools/quant-sensitivity.ts [--rounding minmax|mse] [--only single|mixes]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, type LoadedModel } from '../src/model/load.ts';
import { dequantize, quantizeInt8, quantizeQ4, quantizedBytes, Q4_CLIP_STEPS, type QuantBits } from '../src/model/quant.ts';
import type { RawTensor } from '../src/model/tensor.ts';
import { toFloat32 } from '../src/model/tensor.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { truncateAndNormalize } from '../src/reference/pooling.ts';
import { startModelServer } from '../tests/helpers/model-server.ts';
import { ensureFixtures } from './fixtures/generate.ts';
import { REPO_ROOT } from './fixtures/paths.ts';
import { parityGrid, parityTexts } from './parity/engine-cases.ts';
import { minRowCosine } from './parity/goldens.ts';

/** Tensor classes, by canonical name (both naming schemes: BERT / XLM-R and m3BERT). */
export const CLASSES: Record<string, RegExp> = {
  word: /^(embeddings\.word_embeddings|embed_tokens)\.weight$/,
  q: /\.(attention\.self\.query|self_attn\.q_proj)\.weight$/,
  k: /\.(attention\.self\.key|self_attn\.k_proj)\.weight$/,
  v: /\.(attention\.self\.value|self_attn\.v_proj)\.weight$/,
  o: /\.(attention\.output\.dense|self_attn\.o_proj)\.weight$/,
  ffn_in: /\.(intermediate\.dense|mlp\.(gate|up)_proj)\.weight$/,
  ffn_out: /^(encoder\.layer\.\d+\.output\.dense|layers\.\d+\.mlp\.down_proj)\.weight$/,
  colbert: /^colbert_linear\.weight$/,
};
const classOf = (name: string) => Object.keys(CLASSES).find((c) => CLASSES[c].test(name)) ?? null;

type Rounding = 'minmax' | 'mse';
/** bits per class; a class not named stays f32. */
type Scheme = Record<string, QuantBits>;

function fake(t: RawTensor, bits: QuantBits, rounding: Rounding): RawTensor {
  const [rows, cols] = t.shape;
  const w = toFloat32(t);
  const q = bits === 8 ? quantizeInt8(w, rows, cols) : quantizeQ4(w, rows, cols, rounding === 'mse' ? Q4_CLIP_STEPS : [1]);
  const d = dequantize(q);
  return { dtype: 'f32', shape: [rows, cols], data: new Uint8Array(d.buffer) };
}

function withScheme(m: LoadedModel, scheme: Scheme, rounding: Rounding): LoadedModel {
  const map = (src: Map<string, RawTensor>) => new Map([...src].map(([n, t]) => [n, classOf(n) && scheme[classOf(n)!] ? fake(t, scheme[classOf(n)!], rounding) : t]));
  return { ...m, weights: map(m.weights), heads: map(m.heads) };
}

interface Case {
  name: string;
  model: LoadedModel;
  texts: string[];
  grid: { layers: number; dims: number }[];
  colbertExits: number[];
}

/** Worst dense cosine over the grid and worst ColBERT token cosine over the exits, quantised vs f32. */
function worst(c: Case, base: ReferenceEncoder, ref: ReferenceEncoder, memo: Map<string, Float32Array | Float32Array[]>): { dense: number; colbert: number } {
  const H = c.model.config.hidden_size;
  let dense = 1;
  const pooled = (e: ReferenceEncoder, layers: number, key: string) => {
    if (!memo.has(key)) memo.set(key, e.embed(c.texts, { layers, normalize: false }).embeddings);
    return memo.get(key) as Float32Array;
  };
  const seen = new Map<number, Float32Array>();
  for (const { layers, dims } of c.grid) {
    const want = truncateAndNormalize(pooled(base, layers, `f32 dense ${layers}`), c.texts.length, H, { dims, normalize: true });
    if (!seen.has(layers)) seen.set(layers, ref.embed(c.texts, { layers, normalize: false }).embeddings);
    const got = truncateAndNormalize(seen.get(layers)!, c.texts.length, H, { dims, normalize: true });
    dense = Math.min(dense, minRowCosine(got, want, c.texts.length, dims));
  }
  let colbert = 1;
  if (c.model.heads.size) {
    for (const layers of c.colbertExits) {
      const key = `f32 colbert ${layers}`;
      if (!memo.has(key)) memo.set(key, base.bgeM3(c.texts, { layers }).colbert);
      const want = memo.get(key) as Float32Array[];
      const got = ref.bgeM3(c.texts, { layers }).colbert;
      got.forEach((g, i) => (colbert = Math.min(colbert, minRowCosine(g, want[i], g.length / ref.colbert!.out, ref.colbert!.out))));
    }
  }
  return { dense, colbert };
}

/** bge-m3's weight bytes under a scheme (the classes' shapes at 24 layers, H 1024, I 4096, V 250,002). */
function bgeM3Bytes(scheme: Scheme): number {
  const H = 1024;
  const I = 4096;
  const shapes: [string, number, number, number][] = [
    ['word', 250002, H, 1],
    ['q', H, H, 24],
    ['k', H, H, 24],
    ['v', H, H, 24],
    ['o', H, H, 24],
    ['ffn_in', I, H, 24],
    ['ffn_out', H, I, 24],
    ['colbert', H, H, 1],
  ];
  return shapes.reduce((s, [c, r, k, n]) => s + n * (scheme[c] ? quantizedBytes(scheme[c], r, k) : 4 * r * k), 0);
}

const ALL = Object.keys(CLASSES);
const uniform = (bits: QuantBits, except: Scheme = {}): Scheme => ({ ...Object.fromEntries(ALL.map((c) => [c, bits])), ...except });
const int8 = (...cs: string[]): Scheme => Object.fromEntries(cs.map((c) => [c, 8 as QuantBits]));

export const MIXES: [string, Scheme][] = [
  ['all q4', uniform(4)],
  ['q4, word + colbert int8', uniform(4, int8('word', 'colbert'))],
  ['int8, ffn_in q4', uniform(8, { ffn_in: 4 })],
  ['int8, ffn_in + ffn_out q4', uniform(8, { ffn_in: 4, ffn_out: 4 })],
  ['int8, ffn_in + q q4', uniform(8, { ffn_in: 4, q: 4 })],
  ['all int8', uniform(8)],
];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounding: { type: 'string', default: 'minmax' }, only: { type: 'string' } } });
  const rounding = values.rounding as Rounding;
  ensureFixtures();
  const fixtures = await startModelServer();
  const shipped = await startModelServer(resolve(REPO_ROOT, 'public/models'));
  const cases: Case[] = [];
  try {
    for (const f of ['bert-tiny', 'xlmr-tiny', 'm3bert-tiny']) {
      const model = await loadModel(fixtures.folderUrl(f), { keepWeights: true });
      const c = model.config;
      cases.push({ name: f, model, texts: parityTexts(), grid: parityGrid(c.num_hidden_layers, c.hidden_size, c.mrl_dims), colbertExits: [...new Set([c.num_hidden_layers, 1])] });
    }
    const tiny = await loadModel(shipped.folderUrl('m3-tiny'), { keepWeights: true });
    const exits = tiny.config.mrl_layers ?? [tiny.config.num_hidden_layers];
    cases.push({ name: 'm3-tiny', model: tiny, texts: parityTexts().slice(0, 6), grid: exits.flatMap((layers) => [32, 128].map((dims) => ({ layers, dims }))), colbertExits: exits });
  } finally {
    await fixtures.close();
    await shipped.close();
  }
  const schemes: [string, Scheme][] = [];
  if (values.only !== 'mixes') for (const c of ALL) schemes.push([`${c} q4 (rest f32)`, { [c]: 4 }]);
  if (values.only === 'single') schemes.push(MIXES[0]);
  else schemes.push(...MIXES);
  const memos = new Map(cases.map((c) => [c.name, new Map<string, Float32Array | Float32Array[]>()]));
  const bases = new Map(cases.map((c) => [c.name, new ReferenceEncoder(c.model)]));
  console.log(`rounding: ${rounding}; worst cosine vs f32 (dense over exits × dims; ColBERT token vectors)`);
  console.log(`| scheme | ${cases.map((c) => `${c.name} dense | ${c.model.heads.size ? `${c.name} ColBERT |` : ''}`).join(' ')} min | bge-m3 weights MiB |`);
  for (const [label, scheme] of schemes) {
    const cells: string[] = [];
    let min = 1;
    for (const c of cases) {
      const ref = new ReferenceEncoder(withScheme(c.model, scheme, rounding));
      const w = worst(c, bases.get(c.name)!, ref, memos.get(c.name)!);
      cells.push(w.dense.toFixed(4));
      if (c.model.heads.size) cells.push(w.colbert.toFixed(4));
      min = Math.min(min, w.dense, w.colbert);
    }
    console.log(`| ${label} | ${cells.join(' | ')} | ${min.toFixed(4)} | ${(bgeM3Bytes(scheme) / 2 ** 20).toFixed(0)} |`);
  }
}

await main();
