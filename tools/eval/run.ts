/**
 * `npm run eval [-- --json] [--skip-grid] [--quick]`: evaluates the shipped m3-tiny (public/models/m3-tiny) over its whole trained
 * grid and writes, into that folder, m3web.json (the quality table the planner reads: src/client/planner.ts Sidecar),
 * eval.json (every number) and quality.png (the plot).
 *
 * 1. tools/eval/grid.py (PyTorch on the shipped f16 folder; one forward gives every exit): SciFact test nDCG@10 +
 *    recall@100, MS MARCO subset nDCG@10, Tatoeba xxx→eng accuracy, XQuAD cross-lingual question→paragraph
 *    recall@1, for dense at every (layers, dims), sparse, ColBERT and hybrid at every exit.
 * 2. BM25 (minisearch, tools/eval/bm25.ts) on exactly the same splits (grid.py --splits writes them).
 * 3. The engine check: tests/m3-tiny.test.ts runs the same folder through m3web (WebGPU on Node and the CPU
 *    reference) against grid.py's embeddings (tools/eval/golden-m3-tiny.json); run it with
 *    `npx vitest run tests/m3-tiny.test.ts`. Here grid.py --golden refreshes that file.
 *
 * `npm run eval -- --quick --dtype int8|q4` measures one quantised dtype instead (tools/eval/dtype.ts): `npm run quantize`
 * writes the quantised folder, it is dequantised exactly as the backends dequantise, grid.py runs SciFact and Tatoeba on
 * it (same scope and splits as the f32 grid), and the dense SciFact rows go into m3web.json's `quality_by_dtype.<dtype>`
 * (the planner's per-dtype quality, src/client/planner.ts Sidecar) and eval.json's `by_dtype`, tagged with the sha256 of
 * the model.safetensors they were measured on; rows of other weights are dropped when the f32 grid is rewritten.
 * Needs ../shared/data; without it, stops with one line saying so.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { REPO_ROOT, SHARED_DATA, sharedDataAvailable } from '../fixtures/paths.ts';
import { bm25Baseline, type Splits } from './bm25.ts';
import { compare, fileSha256, prepareDtypeFolder, type DtypeEval, type EvalDType } from './dtype.ts';

const MODEL = resolve(REPO_ROOT, 'public/models/m3-tiny');
const QUICK = process.argv.includes('--quick');
if (QUICK) process.env.M3_EVAL_SCOPE = 'quick'; // read by tools/eval/datasets.py in every child
const WORK = resolve(REPO_ROOT, 'training/runs/eval', QUICK ? 'quick' : 'full');
const PY = '/usr/bin/python3';
const args = process.argv.slice(2);
const log = (s: string) => process.stderr.write(s + '\n');

function py(script: string, ...a: string[]): void {
  execFileSync(PY, [resolve(REPO_ROOT, 'tools/eval', script), ...a], { stdio: ['ignore', 'ignore', 'inherit'] });
}

function pyAsync(script: string, ...a: string[]): Promise<void> {
  return new Promise((ok, fail) => {
    const p = spawn(PY, [resolve(REPO_ROOT, 'tools/eval', script), ...a], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`${script} ${a.join(' ')} exited with ${code}`))));
  });
}

interface Grid {
  pooling: string;
  grid: { layers: number[]; dims: number[] };
  scifact: Record<string, { 'ndcg@10': number; 'recall@100': number }>;
  msmarco: Record<string, { 'ndcg@10': number; 'recall@100': number }>;
  tatoeba: Record<string, { acc_all: number; acc_xquad_langs: number }>;
  xquad: Record<string, { 'recall@1_cross': number }>;
  [k: string]: unknown;
}

const dtypeArg = args.includes('--dtype') ? args[args.indexOf('--dtype') + 1] : null;

/** m3web.json rows for one dtype: dense SciFact nDCG@10 per trained (layers, dims), as in `quality`. */
function dtypeRows(r: DtypeEval, layers: number[], dims: number[]) {
  return { metric: 'scifact-test ndcg@10 (dense)', model_sha256: r.model_sha256, table: layers.flatMap((k) => dims.map((d) => ({ layers: k, dims: d, score: r.scifact[`${k}/dense/${d}`]['ndcg@10'] }))) };
}

async function evalDtype(dtype: EvalDType, gridPath: string): Promise<void> {
  if (!existsSync(gridPath)) throw new Error(`eval --dtype: ${gridPath} is missing; run npm run eval${QUICK ? ' -- --quick' : ''} first (the f32 grid to compare with)`);
  const sha = fileSha256(resolve(MODEL, 'model.safetensors'));
  const prep = await prepareDtypeFolder(MODEL, dtype, WORK);
  log(`eval: ${dtype}: ${prep.matrices} matrices quantised (${prep.quantizedBytes} bytes); grid.py on SciFact and Tatoeba (2 processes) …`);
  const outs = ['scifact', 'tatoeba'].map((only) => resolve(WORK, `grid.${dtype}.${only}.json`));
  await Promise.all(['scifact', 'tatoeba'].map((only, i) => pyAsync('grid.py', '--model', prep.folder, '--only', only, '--out', outs[i], ...(QUICK ? ['--plen', '96'] : []))));
  const part = Object.assign({}, ...outs.map((o) => JSON.parse(readFileSync(o, 'utf8')))) as Grid;
  const grid = JSON.parse(readFileSync(gridPath, 'utf8')) as Grid;
  const r: DtypeEval = { dtype, model_sha256: sha, quantized_bytes: prep.quantizedBytes, source_bytes: statSync(resolve(MODEL, 'model.safetensors')).size, scifact: part.scifact, tatoeba: part.tatoeba };
  const evalPath = resolve(MODEL, 'eval.json');
  const evalJson = JSON.parse(readFileSync(evalPath, 'utf8'));
  const cmp = compare(grid, r, grid.grid.layers, grid.grid.dims);
  evalJson.by_dtype = { ...(evalJson.by_dtype ?? {}), [dtype]: { ...r, vs_f32: cmp } };
  writeFileSync(evalPath, JSON.stringify(evalJson, null, 1) + '\n');
  const sidecarPath = resolve(MODEL, 'm3web.json');
  const sidecar = JSON.parse(readFileSync(sidecarPath, 'utf8'));
  sidecar.quality_by_dtype = { ...(sidecar.quality_by_dtype ?? {}), [dtype]: dtypeRows(r, grid.grid.layers, grid.grid.dims) };
  writeFileSync(sidecarPath, JSON.stringify(sidecar, null, 1) + '\n');
  console.log(`${dtype} vs f32 (${QUICK ? 'quick' : 'full'} scope; weights ${r.source_bytes} → ${r.quantized_bytes} bytes):`);
  for (const c of cmp) console.log(`  ${c.metric}: f32 ${c.f32} → ${dtype} ${c.q} (${c.deltaPct.toFixed(2)}% at full size; worst trained cell ${c.worstCellPct.toFixed(2)}%)`);
}

async function main(): Promise<void> {
  if (!sharedDataAvailable()) {
    log(`eval: skipped — ${SHARED_DATA} (../shared/data) is absent; the evaluation sets live there`);
    return;
  }
  if (!existsSync(resolve(MODEL, 'model.safetensors'))) throw new Error(`eval: ${MODEL} has no model.safetensors; run npm run train first`);
  mkdirSync(WORK, { recursive: true });
  if (dtypeArg !== null) {
    if (dtypeArg !== 'int8' && dtypeArg !== 'q4') throw new Error(`eval: --dtype must be int8 or q4, received ${dtypeArg}`);
    return evalDtype(dtypeArg, resolve(WORK, 'grid.json'));
  }
  const gridPath = resolve(WORK, 'grid.json');
  if (!args.includes('--skip-grid') || !existsSync(gridPath)) {
    // Two processes (SciFact alone is half the tokens): the machine has 2 cores, grid.py uses one thread each.
    log('eval: grid.py over the whole grid (PyTorch, CPU, 2 processes) …');
    const parts = [
      ['scifact', 'xquad'],
      ['msmarco', 'tatoeba'],
    ];
    const outs = parts.map((_, i) => resolve(WORK, `grid.part${i}.json`));
    await Promise.all(parts.map((only, i) => pyAsync('grid.py', '--only', only.join(','), '--out', outs[i], ...(QUICK ? ['--plen', '96'] : []))));
    const merged = Object.assign({}, ...outs.map((o) => JSON.parse(readFileSync(o, 'utf8'))));
    writeFileSync(gridPath, JSON.stringify(merged, null, 1) + '\n');
  }
  const golden = resolve(REPO_ROOT, 'tools/eval/golden-m3-tiny.json');
  py('grid.py', '--golden', golden);
  // grid.py writes one line; the committed file keeps the repo's prettier layout (npm test runs format:check).
  execFileSync(resolve(REPO_ROOT, 'node_modules/.bin/prettier'), ['--write', golden], { stdio: 'ignore' });
  const splitsPath = resolve(WORK, 'splits.json');
  if (!existsSync(splitsPath)) py('grid.py', '--splits', splitsPath);
  // BM25 depends only on the splits: cached beside them, recomputed when splits.json is newer.
  const bm25Path = resolve(WORK, 'bm25.json');
  let bm25: ReturnType<typeof bm25Baseline>;
  if (existsSync(bm25Path) && statSync(bm25Path).mtimeMs > statSync(splitsPath).mtimeMs) bm25 = JSON.parse(readFileSync(bm25Path, 'utf8'));
  else {
    log('eval: BM25 baseline (minisearch) …');
    bm25 = bm25Baseline(JSON.parse(readFileSync(splitsPath, 'utf8')) as Splits);
    writeFileSync(bm25Path, JSON.stringify(bm25, null, 1) + '\n');
  }
  const grid = JSON.parse(readFileSync(gridPath, 'utf8')) as Grid;
  const { layers, dims } = grid.grid;
  const at = (k: number, d: number) => ({
    layers: k,
    dims: d,
    scifact_dense: grid.scifact[`${k}/dense/${d}`],
    scifact_hybrid: grid.scifact[`${k}/hybrid/${d}`],
    msmarco_dense: grid.msmarco[`${k}/dense/${d}`]['ndcg@10'],
    tatoeba_dense: grid.tatoeba[`${k}/dense/${d}`],
    xquad_dense: grid.xquad[`${k}/dense/${d}`]['recall@1_cross'],
  });
  const table = layers.flatMap((k) => dims.map((d) => at(k, d)));
  const perExit = layers.map((k) => ({
    layers: k,
    scifact_sparse: grid.scifact[`${k}/sparse`],
    scifact_colbert: grid.scifact[`${k}/colbert`],
    msmarco_sparse: grid.msmarco[`${k}/sparse`]['ndcg@10'],
    msmarco_colbert: grid.msmarco[`${k}/colbert`]['ndcg@10'],
    msmarco_hybrid: grid.msmarco[`${k}/hybrid/${Math.max(...dims)}`]['ndcg@10'],
    tatoeba: { sparse: grid.tatoeba[`${k}/sparse`], colbert: grid.tatoeba[`${k}/colbert`], hybrid: grid.tatoeba[`${k}/hybrid/${Math.max(...dims)}`] },
    xquad: { sparse: grid.xquad[`${k}/sparse`]['recall@1_cross'], colbert: grid.xquad[`${k}/colbert`]['recall@1_cross'], hybrid: grid.xquad[`${k}/hybrid/${Math.max(...dims)}`]['recall@1_cross'] },
  }));
  // Per-dtype rows survive only while they describe these weights (npm run eval -- --dtype wrote them with this sha256).
  const sha = fileSha256(resolve(MODEL, 'model.safetensors'));
  const readJson = (p: string) => (existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : {});
  const fresh = <T extends { model_sha256?: string }>(m: Record<string, T> | undefined) => Object.fromEntries(Object.entries(m ?? {}).filter(([, v]) => v.model_sha256 === sha));
  const byDtype = fresh(readJson(resolve(MODEL, 'eval.json')).by_dtype);
  const qualityByDtype = fresh(readJson(resolve(MODEL, 'm3web.json')).quality_by_dtype);
  const evalJson = { scope: QUICK ? 'quick' : 'full', model: grid, bm25, table, perExit, ...(Object.keys(byDtype).length ? { by_dtype: byDtype } : {}) };
  writeFileSync(resolve(MODEL, 'eval.json'), JSON.stringify(evalJson, null, 1) + '\n');
  // The planner's sidecar: dense SciFact nDCG@10 per trained (layers, dims); it normalises by the best score.
  const sidecar = {
    quality: { metric: 'scifact-test ndcg@10 (dense)', model_sha256: sha, table: table.map((r) => ({ layers: r.layers, dims: r.dims, score: r.scifact_dense['ndcg@10'] })) },
    ...(Object.keys(qualityByDtype).length ? { quality_by_dtype: qualityByDtype } : {}),
    baseline: { bm25: { scifact_ndcg10: bm25.scifact['ndcg@10'], library: 'minisearch', k1: bm25.params.k, b: bm25.params.b, d: bm25.params.d } },
    scope: QUICK ? 'quick (subsets: see README.md)' : 'full',
    source: 'npm run eval (tools/eval/run.ts); every number is in eval.json',
  };
  writeFileSync(resolve(MODEL, 'm3web.json'), JSON.stringify(sidecar, null, 1) + '\n');
  py('plot.py', resolve(MODEL, 'eval.json'), resolve(MODEL, 'quality.png'));
  if (args.includes('--json')) process.stdout.write(JSON.stringify(evalJson) + '\n');
  else {
    console.log(`layers dims | SciFact nDCG@10 dense / hybrid | MS MARCO | Tatoeba all / xquad-langs | XQuAD R@1`);
    for (const r of table) {
      console.log(`${r.layers} ${r.dims} | ${r.scifact_dense['ndcg@10']} / ${r.scifact_hybrid['ndcg@10']} | ${r.msmarco_dense} | ${r.tatoeba_dense.acc_all} / ${r.tatoeba_dense.acc_xquad_langs} | ${r.xquad_dense}`);
    }
    console.log(
      `BM25 (minisearch k1=${bm25.params.k} b=${bm25.params.b} d=${bm25.params.d}): SciFact ${bm25.scifact['ndcg@10']} (R@100 ${bm25.scifact['recall@100']}), MS MARCO ${bm25.msmarco['ndcg@10']}, Tatoeba ${bm25.tatoeba.acc_all} / ${bm25.tatoeba.acc_xquad_langs}, XQuAD ${bm25.xquad['recall@1_cross']}`,
    );
  }
}

await main();
