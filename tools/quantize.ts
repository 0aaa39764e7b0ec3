/**
 * `npm run quantize -- <model folder> [--bits 8|4] [--out dir]`: writes a pre-quantised copy of a Hugging Face model
 * folder in m3web's layout (src/model/QUANT.md), so the download shrinks and the engine loads the codes directly.
 *
 * - Weights are read by the loader (model.safetensors or pytorch_model.bin, single or sharded, f32 / f16 / bf16, bge-m3's
 *   colbert_linear.pt / sparse_linear.pt heads) and written as one `model.safetensors` under their names in the source:
 *   each weight `isQuantizedWeight` names becomes `<module>.qweight` (U32) + `<module>.scales` (int8 F32, q4 F16)
 *   [+ `<module>.qzeros` (U32, q4)], its `[rows, cols]` and bits in the header's `__metadata__` as `<module>.shape` and
 *   `<module>.bits` (under --bits 4, weightBits keeps some matrices at int8); every
 *   other tensor is copied in its own dtype. The heads go into that file too (the loader reads them from there).
 * - `config.json` gains `quantization_config` (quantizationConfig(bits)); every other file (tokenizer, modules.json
 *   and its module folders, m3web.json, README) is copied as it is. Source weight files and `onnx/` (f32 again) are not.
 * - Prints the bytes of the source weight files and of the written one.
 *
 * Default --bits 8, --out `<folder>-int8` / `<folder>-q4`. A failure prints one line (the error's class and message)
 * and exits 1; bad usage exits 2.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { InvalidInputError, M3Error } from '../src/errors.ts';
import { loadModel } from '../src/node.ts';
import { isQuantizedWeight, quantizationConfig, quantizeWeight, quantTensors, weightBits, type QuantBits } from '../src/model/quant.ts';
import type { RawTensor } from '../src/model/tensor.ts';
import { canonicalPrefix } from '../src/model/weights.ts';
import { writeSafetensors, type WritableTensor } from './fixtures/safetensors-writer.ts';

const USAGE = 'usage: npm run quantize -- <model folder> [--bits 8|4] [--out dir]';

/** Files that hold weights in the source (replaced by the one quantised model.safetensors) or an f32 export. */
const WEIGHT_FILE = /^(model\.safetensors|pytorch_model\.bin)(\.index\.json)?$|^(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)$|^(colbert_linear|sparse_linear)\.pt$/;
const SKIP_DIRS = new Set(['onnx']);

export interface QuantizeReport {
  out: string;
  bits: QuantBits;
  /** Bytes of the source's weight files (as read). */
  sourceBytes: number;
  /** Bytes of the written model.safetensors. */
  outBytes: number;
  quantized: number;
  /** Of the quantised matrices, those stored at 8 bits (all of them with --bits 8). */
  atInt8: number;
  kept: number;
  copied: string[];
}

function copyTree(src: string, dst: string, top: boolean, copied: string[], rel = ''): void {
  mkdirSync(dst, { recursive: true });
  for (const name of readdirSync(src)) {
    const s = join(src, name);
    const r = rel ? `${rel}/${name}` : name;
    if (statSync(s).isDirectory()) {
      if (!(top && SKIP_DIRS.has(name))) copyTree(s, join(dst, name), false, copied, r);
      continue;
    }
    if (top && (WEIGHT_FILE.test(name) || name === 'config.json')) continue;
    copyFileSync(s, join(dst, name));
    copied.push(r);
  }
}

/** Quantises `folder` into `out` (created; an existing quantised model.safetensors there is overwritten). */
export async function quantizeFolder(folder: string, bits: QuantBits, out: string): Promise<QuantizeReport> {
  const src = resolve(folder);
  const dst = resolve(out);
  if (!existsSync(join(src, 'config.json'))) throw new InvalidInputError('model folder has no config.json', { expected: 'a Hugging Face model folder', received: src });
  if (dst === src) throw new InvalidInputError('--out must differ from the model folder (the source is read, never overwritten)', { received: dst });
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (config.quantization_config !== undefined) throw new InvalidInputError('the model folder is already quantised', { expected: 'config.json without quantization_config', received: JSON.stringify(config.quantization_config) });
  // Weights under their names in the file (a task-model prefix such as `model.` stays, QUANT.md), in file order.
  const raw: [string, RawTensor][] = [];
  const model = await loadModel(pathToFileURL(src).href, { heads: true, keepWeights: false, onTensor: (name, t) => void raw.push([name, t]) });
  const seen = new Set(raw.map(([n]) => n));
  const prefix = canonicalPrefix([...seen]);
  for (const [name, t] of model.heads) if (!seen.has(name)) raw.push([name, t]); // bge-m3's colbert_linear.pt / sparse_linear.pt
  const tensors: [string, WritableTensor][] = [];
  const metadata: Record<string, string> = { format: 'pt' };
  let quantized = 0;
  let atInt8 = 0;
  let kept = 0;
  for (const [name, t] of raw) {
    const canonical = prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name;
    if (isQuantizedWeight(canonical) && t.shape.length === 2) {
      // Each matrix's own bits (q4 keeps weightBits' int8 weights at 8), recorded as "<module>.bits" (layout version 2).
      const own = weightBits(canonical, bits);
      const q = quantTensors(name.slice(0, -'.weight'.length), quantizeWeight(canonical, t, bits));
      tensors.push(...q.tensors);
      Object.assign(metadata, q.metadata);
      quantized++;
      if (own === 8) atInt8++;
    } else {
      tensors.push([name, t]);
      kept++;
    }
  }
  mkdirSync(dst, { recursive: true });
  const bytes = writeSafetensors(tensors, metadata);
  writeFileSync(join(dst, 'model.safetensors'), bytes);
  writeFileSync(join(dst, 'config.json'), JSON.stringify({ ...config, quantization_config: quantizationConfig(bits) }, null, 2) + '\n');
  const copied: string[] = [];
  copyTree(src, dst, true, copied);
  const sourceBytes = readdirSync(src)
    .filter((f) => WEIGHT_FILE.test(f) && !f.endsWith('.json'))
    .reduce((s, f) => s + statSync(join(src, f)).size, 0);
  return { out: dst, bits, sourceBytes, outBytes: bytes.byteLength, quantized, atInt8, kept, copied };
}

const MB = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

async function main(): Promise<void> {
  let values: { bits?: string; out?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ options: { bits: { type: 'string', default: '8' }, out: { type: 'string' } }, allowPositionals: true }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (positionals.length !== 1 || (values.bits !== '8' && values.bits !== '4')) {
    console.error(USAGE);
    process.exit(2);
  }
  const bits = Number(values.bits) as QuantBits;
  const folder = resolve(positionals[0]);
  const out = values.out ?? `${folder.replace(/\/+$/, '')}-${bits === 8 ? 'int8' : 'q4'}`;
  try {
    const r = await quantizeFolder(folder, bits, out);
    console.log(`${basename(folder)} → ${r.out} (${bits === 8 ? 'int8 per output channel' : 'q4, blocks of 32, zero points, clipping search; some matrices int8 (QUANT.md)'})`);
    console.log(`weights: ${MB(r.sourceBytes)} → ${MB(r.outBytes)} (${((100 * r.outBytes) / r.sourceBytes).toFixed(1)}%): ${r.quantized} matrices quantised (${r.atInt8} at int8), ${r.kept} tensors kept as they were`);
    console.log(`copied: config.json (+ quantization_config), ${r.copied.join(', ')}`);
  } catch (e) {
    console.error(e instanceof M3Error ? `${e.name}: ${e.message}` : String((e as Error)?.stack ?? e));
    process.exit(1);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
