/**
 * Browser side of `npm run bench` (runs inside a worker, e2e/pages/bench.worker.ts). Holds every engine
 * under test on the same adapter and times them on the same texts, interleaved (A B C … A B C …), with
 * one untimed warm-up call per engine and configuration. The Node driver (tools/bench/run.ts) decides
 * what to run; this file only measures.
 */
import * as ort from 'onnxruntime-web/webgpu';
import { env, pipeline, type FeatureExtractionPipeline } from '@huggingface/transformers';
import { Engine } from '../../src/engine/engine.ts';
import type { GpuEncoder } from '../../src/engine/gpu-encoder.ts';
import type { WeightStorage } from '../../src/engine/gpu-weights.ts';
import { peakMatmulGflops } from '../../src/gpu/kernels/matmul.bench.ts';
import { createDevice, GpuRuntime } from '../../src/gpu/runtime.ts';
import { loadModel, type LoadedModel } from '../../src/model/load.ts';
import { padBatch } from '../../src/tokenize/tokenizer.ts';
import { timeInterleaved } from './interleave.ts';

/** The engines a configuration can time. */
export type EngineId = 'm3web-f32' | 'm3web-f16' | 'm3web-int8' | 'm3web-q4' | 'transformers-webgpu' | 'transformers-wasm' | 'ort-webgpu' | 'ort-webgpu-gpubuf';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  features: string[];
  isFallbackAdapter: boolean;
  userAgent: string;
  hardwareConcurrency: number;
}

export interface RunConfig {
  texts: string[];
  engines: EngineId[];
  runs: number;
  /** Early exit (m3web only; peers always run the whole model). */
  layers?: number;
  /** Per-engine layer counts, for the early-exit sweep: each entry is timed as its own "engine". */
  layerSweep?: number[];
}

type M3Id = 'm3web-f32' | 'm3web-f16' | 'm3web-int8' | 'm3web-q4';
/** m3web's rows by weight storage: int8 / q4 are quantised at load from the fixture's f32 weights (issue #18). */
const M3_WEIGHTS: Record<M3Id, WeightStorage> = { 'm3web-f32': 'f32', 'm3web-f16': 'f16', 'm3web-int8': 'int8', 'm3web-q4': 'q4' };

interface State {
  origin: string;
  fixture: string;
  rt: GpuRuntime;
  model: LoadedModel;
  m3: Partial<Record<WeightStorage, Engine<GpuEncoder>>>;
  tjs: Partial<Record<'webgpu' | 'wasm', FeatureExtractionPipeline>>;
  ort?: ort.InferenceSession;
  /** The same model with preferredOutputLocation 'gpu-buffer' (outputs stay on the GPU until getData()). */
  ortGpuBuf?: ort.InferenceSession;
  notes: string[];
}
let S: State | null = null;

const TJS_ORT_DIST = '/node_modules/@huggingface/transformers/node_modules/onnxruntime-web/dist/';

function configureTransformers(origin: string): void {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  // A path, not a URL: transformers.js 4.3 skips its local-file existence checks (tokenizer!) for http(s) URLs.
  env.localModelPath = '/models/';
  env.useBrowserCache = false; // cold starts really fetch; warm runs never touch the network anyway
  env.useWasmCache = false;
  env.backends.onnx.wasm!.wasmPaths = `${origin}${TJS_ORT_DIST}`;
}

async function adapterInfo(): Promise<{ adapter: GPUAdapter; info: AdapterInfo }> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter');
  const i = adapter.info;
  return {
    adapter,
    info: {
      vendor: i.vendor,
      architecture: i.architecture,
      description: i.description,
      features: [...adapter.features].sort(),
      isFallbackAdapter: (i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
      userAgent: navigator.userAgent,
      hardwareConcurrency: navigator.hardwareConcurrency,
    },
  };
}

/** Loads the model into every engine asked for (weights fetched from the vite server's /models/). */
export async function setup(origin: string, fixture: string, engines: EngineId[]): Promise<{ adapter: AdapterInfo; notes: string[]; dtypes: Partial<Record<EngineId, string>> }> {
  const { adapter, info } = await adapterInfo();
  const rt = new GpuRuntime(await createDevice(adapter));
  const model = await loadModel(`${origin}/models/${fixture}/`);
  const s: State = { origin, fixture, rt, model, m3: {}, tjs: {}, notes: [] };
  configureTransformers(origin);
  const maxBatchTokens = 32 * 512; // one GPU batch per call at every size the bench uses
  for (const e of engines) {
    if (e in M3_WEIGHTS) {
      const w = M3_WEIGHTS[e as M3Id];
      s.m3[w] = await Engine.create(rt, model, { weights: w, maxBatchTokens }); // int8 / q4: quantised at load (src/model/QUANT.md)
      if (w === 'f32') s.notes.push(`m3web kernel schedule (matmul, attention, norms): ${s.m3[w]!.encoder.schedule} (${rt.fallbackAdapter ? 'CPU fallback adapter' : 'GPU adapter'})`);
      if (w === 'f16') s.notes.push(`m3web-f16 ran as ${s.m3[w]!.dtype} (${rt.hasF16 ? 'native shader-f16' : 'no shader-f16 on this adapter: packed f16 pairs in u32, unpacked in the shader'})`);
    } else if (e === 'transformers-webgpu' || e === 'transformers-wasm') {
      const device = e === 'transformers-webgpu' ? 'webgpu' : 'wasm';
      s.tjs[device] = await pipeline('feature-extraction', fixture, { device, dtype: 'fp32' });
    } else if (e === 'ort-webgpu') {
      ort.env.wasm.wasmPaths = `${origin}/node_modules/onnxruntime-web/dist/`;
      s.ort = await ort.InferenceSession.create(`${origin}/models/${fixture}/onnx/model.onnx`, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' });
      s.notes.push('ort-webgpu: onnxruntime-web ' + ort.env.versions.web + ', executionProviders [webgpu], graphOptimizationLevel all, outputs on the CPU (mean pooling + L2 in JS); graph capture not used (it needs static shapes)');
    } else if (e === 'ort-webgpu-gpubuf') {
      ort.env.wasm.wasmPaths = `${origin}/node_modules/onnxruntime-web/dist/`;
      s.ortGpuBuf = await ort.InferenceSession.create(`${origin}/models/${fixture}/onnx/model.onnx`, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all', preferredOutputLocation: 'gpu-buffer' });
      s.notes.push("ort-webgpu-gpubuf: as ort-webgpu, with preferredOutputLocation 'gpu-buffer' (IO binding of the output); last_hidden_state is read back with getData() for the same JS pooling, and disposed");
    }
  }
  S = s;
  // What each engine really computed with: m3web's f16 is 'f16x2' (packed pairs) without shader-f16.
  const dtypes: Partial<Record<EngineId, string>> = {};
  for (const e of engines) dtypes[e] = e in M3_WEIGHTS ? s.m3[M3_WEIGHTS[e as M3Id]]!.dtype : 'fp32';
  return { adapter: info, notes: s.notes, dtypes };
}

function state(): State {
  if (!S) throw new Error('bench: setup() first');
  return S;
}

/** onnxruntime-web directly: tokenise with the model's tokenizer, run, mean-pool and L2-normalise. */
async function ortEmbed(s: State, texts: string[], session: ort.InferenceSession): Promise<Float32Array> {
  const enc = s.model.tokenizer.encode(texts, s.model.config.max_tokens);
  const b = padBatch(enc.ids, s.model.tokenizer.padId);
  const dims = [b.B, b.T];
  const out = await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(b.inputIds, BigInt), dims),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(b.attentionMask, BigInt), dims),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(b.B * b.T), dims),
  });
  const h = (await out.last_hidden_state.getData(true)) as Float32Array; // true: release a GPU-side output once read
  for (const [name, t] of Object.entries(out)) if (name !== 'last_hidden_state') t.dispose();
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

/** One embedding call of `engine` on `texts` (every engine returns pooled, L2-normalised vectors). */
async function embedOnce(s: State, engine: EngineId, texts: string[], layers?: number): Promise<void> {
  switch (engine) {
    case 'm3web-f32':
    case 'm3web-f16':
    case 'm3web-int8':
    case 'm3web-q4':
      await s.m3[M3_WEIGHTS[engine]]!.embed(texts, layers ? { layers } : {});
      return;
    case 'transformers-webgpu':
    case 'transformers-wasm': {
      const extract = s.tjs[engine === 'transformers-webgpu' ? 'webgpu' : 'wasm']!;
      const t = await extract(texts, { pooling: 'mean', normalize: true });
      t.dispose();
      return;
    }
    case 'ort-webgpu':
      await ortEmbed(s, texts, s.ort!);
      return;
    case 'ort-webgpu-gpubuf':
      await ortEmbed(s, texts, s.ortGpuBuf!);
  }
}

/**
 * Times one configuration: a warm-up call per engine (excluded), then `runs` rounds, each calling
 * every engine once in turn (interleaved). Returns wall-clock ms per call, per engine (or per layer
 * count for an early-exit sweep, keyed "m3web-f32@k").
 */
export async function runConfig(cfg: RunConfig): Promise<Record<string, number[]>> {
  const s = state();
  const jobs: { key: string; engine: EngineId; layers?: number }[] = cfg.layerSweep ? cfg.layerSweep.map((k) => ({ key: `${cfg.engines[0]}@${k}`, engine: cfg.engines[0], layers: k })) : cfg.engines.map((e) => ({ key: e, engine: e, layers: cfg.layers }));
  return timeInterleaved(
    jobs.map((j) => ({ key: j.key, call: () => embedOnce(s, j.engine, cfg.texts, j.layers) })),
    cfg.runs,
  );
}

/** Token counts (with specials, after truncation to the model's limit) as our tokenizer gives them. */
export function tokenLengths(texts: string[]): number[] {
  const s = state();
  return s.model.tokenizer.encode(texts, s.model.config.max_tokens).ids.map((x) => x.length);
}

export interface KernelProfile {
  /** GPU ns per kernel name for one forward of `texts` (timestamp-query, one pass per dispatch). */
  kernels: { name: string; ns: number; share: number }[];
  matmul_gflops: number;
  peak_matmul_gflops: number;
  /** Where the microbenchmark found its peak, and the schedule the encoder ran. */
  peak_matmul: { schedule: string; size: number };
  encoder_matmul_schedule: string;
  matmul_flops: number;
}

/** Per-kernel GPU time of one m3web-f32 batch, and its matmul rate against the matmul microbenchmark's best. */
export async function kernelProfile(texts: string[]): Promise<KernelProfile> {
  const s = state();
  const engine = s.m3.f32!;
  const cfg = s.model.config;
  await engine.embed(texts); // warm
  s.rt.profiling = true;
  await s.rt.takeProfile();
  await engine.embed(texts);
  const prof = await s.rt.takeProfile();
  s.rt.profiling = false;
  const total = [...prof.values()].reduce((a, b) => a + b, 0);
  const kernels = [...prof].map(([name, ns]) => ({ name, ns, share: ns / total })).sort((a, b) => b.ns - a.ns);
  // Matmul FLOPs of that forward: per layer qkv (3H×H), out (H×H), FFN in (I×H) and out (H×I), on B×T padded rows.
  const lens = tokenLengths(texts);
  const M = texts.length * Math.max(...lens);
  const H = cfg.hidden_size;
  const I = cfg.intermediate_size;
  const matmulFlops = 2 * M * cfg.num_hidden_layers * (4 * H * H + 2 * H * I);
  const matmulNs = prof.get('matmul') ?? 0;
  const peak = await peakMatmulGflops(s.rt);
  return {
    kernels,
    matmul_flops: matmulFlops,
    matmul_gflops: matmulNs ? matmulFlops / matmulNs : 0,
    peak_matmul_gflops: peak.gflops,
    peak_matmul: { schedule: peak.schedule, size: peak.size },
    encoder_matmul_schedule: engine.encoder.schedule,
  };
}

export async function teardown(): Promise<void> {
  const s = S;
  S = null;
  if (!s) return;
  for (const e of Object.values(s.m3)) e.destroy();
  for (const p of Object.values(s.tjs)) await p.dispose();
  await s.ort?.release();
  await s.ortGpuBuf?.release();
  s.rt.device.destroy();
}

/**
 * Cold start in a fresh page: ms from the page's navigation start (`pageOrigin` = the page's
 * performance.timeOrigin) to "model ready" and to "first embedding returned".
 */
export async function coldStart(origin: string, fixture: string, engine: 'm3web-f32' | 'transformers-webgpu', pageOrigin: number, text: string): Promise<{ ready_ms: number; first_ms: number }> {
  const now = () => performance.timeOrigin + performance.now() - pageOrigin;
  if (engine === 'm3web-f32') {
    const { adapter } = await adapterInfo();
    const rt = new GpuRuntime(await createDevice(adapter));
    const e = await Engine.create(rt, await loadModel(`${origin}/models/${fixture}/`), { weights: 'f32' });
    const ready = now();
    await e.embed([text]);
    return { ready_ms: ready, first_ms: now() };
  }
  configureTransformers(origin);
  const p = await pipeline('feature-extraction', fixture, { device: 'webgpu', dtype: 'fp32' });
  const ready = now();
  (await p([text], { pooling: 'mean', normalize: true })).dispose();
  return { ready_ms: ready, first_ms: now() };
}
