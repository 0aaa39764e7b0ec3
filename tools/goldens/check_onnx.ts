/**
 * `npx tsx tools/goldens/check_onnx.ts [fixture...]`: runs fixtures/onnx/<fixture>/model.onnx (exported by
 * tools/goldens/make_goldens.py) with onnxruntime-web's wasm backend in Node on the golden ids of case (a)
 * (all golden texts, one right-padded batch) and compares last_hidden_state at unpadded positions with
 * the golden exit[L-1]. Exits non-zero when the max abs error exceeds 1e-4.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-web';
import { GOLDENS_DIR, REPO_ROOT } from '../fixtures/paths.ts';

const TOLERANCE = 1e-4;

interface Golden {
  fixture: string;
  family: string;
  ids: number[][];
  pad_token_id: number;
  hidden_size: number;
  num_layers: number;
  cases: { batch: number[]; exit: string[][] }[];
}

function decode(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  const out = new Float32Array(buf.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

export async function checkOnnx(fixture: string): Promise<number> {
  const golden = JSON.parse(readFileSync(resolve(GOLDENS_DIR, `${fixture}.json`), 'utf8')) as Golden;
  const c = golden.cases[0];
  const seqs = c.batch.map((i) => golden.ids[i]);
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  const H = golden.hidden_size;
  const ids = new BigInt64Array(B * T).fill(BigInt(golden.pad_token_id));
  const mask = new BigInt64Array(B * T);
  seqs.forEach((s, b) =>
    s.forEach((id, t) => {
      ids[b * T + t] = BigInt(id);
      mask[b * T + t] = 1n;
    }),
  );
  const model = readFileSync(resolve(REPO_ROOT, 'fixtures/onnx', fixture, 'model.onnx'));
  const session = await ort.InferenceSession.create(new Uint8Array(model), { executionProviders: ['wasm'] });
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', ids, [B, T]),
    attention_mask: new ort.Tensor('int64', mask, [B, T]),
  };
  if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(B * T), [B, T]);
  const result = await session.run(feeds);
  const out = result.last_hidden_state;
  if (out.dims.join() !== [B, T, H].join()) throw new Error(`${fixture}: last_hidden_state dims ${out.dims} != ${[B, T, H]}`);
  const data = out.data as Float32Array;
  let maxErr = 0;
  seqs.forEach((s, b) => {
    const want = decode(c.exit[golden.num_layers - 1][b]);
    for (let t = 0; t < s.length; t++) {
      for (let h = 0; h < H; h++) maxErr = Math.max(maxErr, Math.abs(data[(b * T + t) * H + h] - want[t * H + h]));
    }
  });
  await session.release();
  return maxErr;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const fixtures = process.argv.slice(2).length ? process.argv.slice(2) : ['bert-tiny', 'xlmr-tiny'];
  ort.env.wasm.numThreads = 1;
  let ok = true;
  for (const f of fixtures) {
    const err = await checkOnnx(f);
    const pass = err <= TOLERANCE;
    ok &&= pass;
    console.log(`${f}: onnxruntime-web (wasm) vs golden exit[L-1], max abs error ${err.toExponential(3)} ${pass ? 'ok' : `FAIL (> ${TOLERANCE})`}`);
  }
  if (!ok) process.exit(1);
}
