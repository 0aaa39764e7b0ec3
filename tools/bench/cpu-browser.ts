/**
 * Browser side of the bench's CPU rows (inside a worker, e2e/pages/bench-cpu.worker.ts): m3web's CPU
 * backend (src/cpu) against transformers.js's wasm backend and onnxruntime-web's wasm EP on the model's
 * ONNX export, all with the same wasm thread count, timed interleaved on the same texts (tools/bench/cpu.ts
 * drives it). The onnxruntime-web peer shares the CPU backend's onnxruntime module, hence its thread pool.
 */
import { env, pipeline, type FeatureExtractionPipeline } from '@huggingface/transformers';
import { createCpuEngine, type CpuEncoder } from '../../src/cpu/index.ts';
import { ort } from '../../src/cpu/ort.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { loadModel, type LoadedModel } from '../../src/model/load.ts';
import { padBatch } from '../../src/tokenize/tokenizer.ts';
import { timeInterleaved } from './interleave.ts';

export type CpuEngineId = 'm3web-cpu' | 'transformers-wasm' | 'ort-wasm';

interface State {
  model: LoadedModel;
  cpu: Engine<CpuEncoder>;
  tjs?: FeatureExtractionPipeline;
  ort?: ort.InferenceSession;
}
let S: State | null = null;

const TJS_ORT_DIST = '/node_modules/@huggingface/transformers/node_modules/onnxruntime-web/dist/';

/** Loads the fixture into the CPU backend and, when the ONNX export exists (`peers`), into both peers at the CPU backend's thread count. */
export async function setup(origin: string, fixture: string, peers: boolean): Promise<{ threads: number; threadReason: string; crossOriginIsolated: boolean; notes: string[] }> {
  const model = await loadModel(`${origin}/models/${fixture}/`);
  const cpu = await createCpuEngine(model, { wasmPaths: `${origin}/node_modules/onnxruntime-web/dist/` });
  const threads = cpu.encoder.threads;
  const s: State = { model, cpu };
  const notes = [`m3web-cpu: onnxruntime-web ${ort.env.versions.web} wasm EP, one session per block (src/cpu), ${threads} thread(s): ${cpu.encoder.threadReason}`];
  if (peers) {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = '/models/';
    env.useBrowserCache = false;
    env.useWasmCache = false;
    env.backends.onnx.wasm!.wasmPaths = `${origin}${TJS_ORT_DIST}`;
    env.backends.onnx.wasm!.numThreads = threads;
    s.tjs = await pipeline('feature-extraction', fixture, { device: 'wasm', dtype: 'fp32' });
    s.ort = await ort.InferenceSession.create(`${origin}/models/${fixture}/onnx/model.onnx`, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    notes.push(
      `cpu peers: transformers.js wasm (numThreads ${threads}) and onnxruntime-web ${ort.env.versions.web} wasm EP (graphOptimizationLevel all, the CPU backend's own onnxruntime module and threads) on the ONNX export; mean pooling + L2 in JS for the latter`,
    );
  }
  S = s;
  return { threads, threadReason: cpu.encoder.threadReason, crossOriginIsolated: self.crossOriginIsolated, notes };
}

function state(): State {
  if (!S) throw new Error('bench-cpu: setup() first');
  return S;
}

/** onnxruntime-web directly: tokenise, run the export, mean-pool and L2-normalise (as tools/bench/browser.ts's ortEmbed). */
async function ortEmbed(s: State, texts: string[]): Promise<Float32Array> {
  const enc = s.model.tokenizer.encode(texts, s.model.config.max_tokens);
  const b = padBatch(enc.ids, s.model.tokenizer.padId);
  const dims = [b.B, b.T];
  const out = await s.ort!.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(b.inputIds, BigInt), dims),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(b.attentionMask, BigInt), dims),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(b.B * b.T), dims),
  });
  const h = out.last_hidden_state.data as Float32Array; // (B, T, H)
  const H = s.model.config.hidden_size;
  const pooled = new Float32Array(b.B * H);
  for (let r = 0; r < b.B; r++) {
    let n = 0;
    for (let t = 0; t < b.T; t++) {
      if (!b.attentionMask[r * b.T + t]) continue;
      n++;
      for (let j = 0; j < H; j++) pooled[r * H + j] += h[(r * b.T + t) * H + j];
    }
    let norm = 0;
    for (let j = 0; j < H; j++) norm += (pooled[r * H + j] /= n) ** 2;
    for (let j = 0; j < H; j++) pooled[r * H + j] /= Math.sqrt(norm) || 1;
  }
  return pooled;
}

async function embedOnce(s: State, engine: CpuEngineId, texts: string[], layers?: number): Promise<void> {
  if (engine === 'm3web-cpu') await s.cpu.embed(texts, layers ? { layers } : {});
  else if (engine === 'transformers-wasm') (await s.tjs!(texts, { pooling: 'mean', normalize: true })).dispose();
  else await ortEmbed(s, texts);
}

/** Interleaved timing (tools/bench/interleave.ts): per engine, or per layer count ("m3web-cpu@k") for the early-exit sweep. */
export async function runConfig(cfg: { texts: string[]; engines: CpuEngineId[]; runs: number; layerSweep?: number[] }): Promise<Record<string, number[]>> {
  const s = state();
  const jobs = cfg.layerSweep ? cfg.layerSweep.map((k) => ({ key: `m3web-cpu@${k}`, call: () => embedOnce(s, 'm3web-cpu', cfg.texts, k) })) : cfg.engines.map((e) => ({ key: e, call: () => embedOnce(s, e, cfg.texts) }));
  return timeInterleaved(jobs, cfg.runs);
}

export async function teardown(): Promise<void> {
  const s = S;
  S = null;
  if (!s) return;
  s.cpu.destroy();
  await s.tjs?.dispose();
  await s.ort?.release();
}
