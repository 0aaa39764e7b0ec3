/**
 * The per-dtype half of `npm run eval -- --dtype int8|q4` (tools/eval/run.ts): what m3web computes with quantised weights,
 * as a folder PyTorch (grid.py) can read.
 *
 * 1. `npm run quantize`'s own code (tools/quantize.ts) writes the pre-quantised folder a user would ship;
 * 2. that file is read back through the format's reader (fromQuantTensors, src/model/quant.ts) and every quantised
 *    matrix is dequantised to f32 exactly as the backends do (dequantize: f32((code − zero) · scale); the CPU backend
 *    dequantises at load to these very values, the GPU kernels compute the same products in their inner loop);
 * 3. an f32 safetensors with the original weight names is written beside it, plus the tokenizer and module files.
 * So grid.py's numbers for that folder are the quantised model's numbers, up to f32 accumulation order.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dequantize, fromQuantTensors, type QuantBits, type QuantFileTensor } from '../../src/model/quant.ts';
import { headerLength, parseHeader } from '../../src/model/safetensors.ts';
import type { RawTensor } from '../../src/model/tensor.ts';
import { writeSafetensors } from '../fixtures/safetensors-writer.ts';
import { quantizeFolder } from '../quantize.ts';

export type EvalDType = 'int8' | 'q4';
export const BITS: Record<EvalDType, QuantBits> = { int8: 8, q4: 4 };

/** sha256 of a file, hex: ties a per-dtype row to the weights it was measured on. */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

const FILE_DTYPES: Record<string, QuantFileTensor['dtype'] | RawTensor['dtype']> = { U32: 'u32', F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** Reads a quantised folder's model.safetensors and writes `out/model.safetensors` with every quantised matrix as f32 again. */
export function dequantizedCopy(quantized: string, bits: QuantBits, out: string): { matrices: number } {
  const b = new Uint8Array(readFileSync(join(quantized, 'model.safetensors')));
  const h = parseHeader(b.subarray(8, 8 + headerLength(b)), b.byteLength);
  const all = new Map(h.entries.map((e) => [e.name, { dtype: FILE_DTYPES[e.fileDtype], shape: e.shape, data: b.subarray(h.dataStart + e.begin, h.dataStart + e.end) }]));
  const modules = Object.keys(h.metadata)
    .filter((k) => k.endsWith('.shape'))
    .map((k) => k.slice(0, -'.shape'.length));
  const owned = new Set(modules.flatMap((m) => ['qweight', 'scales', 'qzeros'].map((s) => `${m}.${s}`)));
  const tensors: [string, RawTensor][] = [];
  for (const m of modules) {
    const q = fromQuantTensors(m, bits, (n) => all.get(n) as QuantFileTensor | undefined, h.metadata);
    const w = dequantize(q);
    tensors.push([`${m}.weight`, { dtype: 'f32', shape: [q.rows, q.cols], data: new Uint8Array(w.buffer) }]);
  }
  for (const [name, t] of all) if (!owned.has(name)) tensors.push([name, t as RawTensor]);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'model.safetensors'), writeSafetensors(tensors));
  for (const f of readdirSync(quantized)) {
    if (f === 'model.safetensors') continue;
    const p = join(quantized, f);
    if (statSync(p).isDirectory()) cpSync(p, join(out, f), { recursive: true });
    else copyFileSync(p, join(out, f));
  }
  return { matrices: modules.length };
}

/** Quantises `model` with `dtype` into `<work>/<dtype>/quantized` and writes its dequantised f32 twin into `<work>/<dtype>/f32`. */
export async function prepareDtypeFolder(model: string, dtype: EvalDType, work: string): Promise<{ folder: string; quantizedBytes: number; matrices: number }> {
  const qdir = join(work, dtype, 'quantized');
  const fdir = join(work, dtype, 'f32');
  const r = await quantizeFolder(model, BITS[dtype], qdir);
  const { matrices } = dequantizedCopy(qdir, BITS[dtype], fdir);
  return { folder: fdir, quantizedBytes: r.outBytes, matrices };
}

/** What grid.py measured on one dtype's folder, beside the f32 grid of the same scope. */
export interface DtypeEval {
  dtype: EvalDType;
  /** sha256 of the source model.safetensors the rows were measured on (stale rows are dropped when it changes). */
  model_sha256: string;
  quantized_bytes: number;
  source_bytes: number;
  scifact: Record<string, { 'ndcg@10': number; 'recall@100': number }>;
  tatoeba: Record<string, { acc_all: number; acc_xquad_langs: number }>;
}

type GridPart = Pick<DtypeEval, 'scifact' | 'tatoeba'>;

/** Relative change of b against a, in percent (negative: quantised is worse). */
const rel = (a: number, b: number) => (100 * (b - a)) / a;

/**
 * The comparison the issue asks for (int8 within 1 %, q4 within 3 % of f32), on the full (layers, dims) and as the
 * worst cell of the trained grid, for SciFact nDCG@10 (dense and hybrid) and Tatoeba accuracy (dense and hybrid).
 */
export function compare(f32: GridPart, q: GridPart, layers: number[], dims: number[]): { metric: string; f32: number; q: number; deltaPct: number; worstCellPct: number }[] {
  const L = Math.max(...layers);
  const D = Math.max(...dims);
  const cells = layers.flatMap((k) => dims.map((d) => [k, d] as const));
  const rows: { metric: string; get: (g: GridPart, k: number, d: number) => number }[] = [
    { metric: 'SciFact nDCG@10 dense', get: (g, k, d) => g.scifact[`${k}/dense/${d}`]['ndcg@10'] },
    { metric: 'SciFact nDCG@10 hybrid', get: (g, k, d) => g.scifact[`${k}/hybrid/${d}`]['ndcg@10'] },
    { metric: 'Tatoeba acc dense', get: (g, k, d) => g.tatoeba[`${k}/dense/${d}`].acc_all },
    { metric: 'Tatoeba acc hybrid', get: (g, k, d) => g.tatoeba[`${k}/hybrid/${d}`].acc_all },
  ];
  return rows.map(({ metric, get }) => ({
    metric,
    f32: get(f32, L, D),
    q: get(q, L, D),
    deltaPct: rel(get(f32, L, D), get(q, L, D)),
    worstCellPct: Math.min(...cells.map(([k, d]) => rel(get(f32, k, d), get(q, k, d)))),
  }));
}
