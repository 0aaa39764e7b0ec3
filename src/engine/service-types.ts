/**
 * The data the embedding worker's API (EmbedService, src/engine/service.ts) takes and returns: load options, the
 * loaded model's description, one embed call's result, the config sizes the client plans with. Types only, so the
 * client (src/client) and the public index import them without pulling in the service.
 */
import type { AdapterReport } from '../gpu/adapter.ts';
import type { LoadOptions as ModelLoadOptions } from '../model/load.ts';
import type { BackendKind } from './backend.ts';
import type { EngineEmbedding, EngineOptions } from './engine.ts';

export interface ModelInfo {
  source: string;
  family: string;
  layers: number;
  hidden: number;
  heads: number;
  maxTokens: number;
  pooling: string;
  normalize: boolean;
  /** m3BERT's trained exits and prefixes, when the config has them. */
  mrlLayers?: number[];
  mrlDims?: number[];
  hasBgeM3Heads: boolean;
  backend: Backend;
  /** Weight dtype inside the shaders ('f32', 'f16', or 'f16x2' = f16 pairs packed in u32), or 'f32' on the CPU. */
  dtype: string;
  /** Blocks the backend holds (a plan that never runs deeper uploads fewer: EngineOptions.maxLayers). */
  maxLayers: number;
  /** Backends load() built, serving one first; more than one until selectBackend() keeps one. */
  backends?: Backend[];
  /** Why this backend (shown by the plan and the playground). */
  backendReason?: string;
  /** wasm threads of the CPU backend. */
  threads?: number;
  /** sentence-transformers prompts (config_sentence_transformers.json: name → prefix) and the default one. */
  prompts?: Record<string, string>;
  defaultPrompt?: string | null;
}

/** 'ort-wasm' runs a model's own exported ONNX graph (full depth) through the same Engine as every backend. */
export type Backend = BackendKind;

/** One embed call's result as the worker returns it: the engine's outputs plus which backend computed them. */
export interface EmbedResult extends Omit<EngineEmbedding, 'batches'> {
  backend: Backend;
  /** The dtype of the backend this call ran on (not of a model loaded since). */
  dtype: string;
  ms: number;
}

/** Where a model comes from: the loader's hub options (hub endpoint, revision, subfolder, access token). */
export type SourceOptions = Pick<ModelLoadOptions, 'hubEndpoint' | 'revision' | 'subfolder' | 'token'>;

export interface LoadOptions extends EngineOptions, SourceOptions {
  /** Scan weights for NaN/Inf at load (NonFiniteWeightError); default true. */
  checkFinite?: boolean;
  /**
   * 'auto': WebGPU on a hardware adapter; on a software adapter (SwiftShader, lavapipe) WebGPU and the
   * CPU backend both (the client calibrates each, then selectBackend keeps one); without WebGPU the CPU
   * backend. 'cpu-ref' is the CPU reference (the oracle, for tests).
   */
  backend?: 'auto' | Backend;
  /** wasm threads for the CPU backend (default: onnxruntime-web's, 1 without cross-origin isolation). */
  threads?: number;
  /** Where onnxruntime-web's .wasm files are served, for the CPU backend (default: next to its module). */
  wasmPaths?: string;
  /** Cancels the download and the upload; the model that was serving keeps serving. */
  signal?: AbortSignal;
  /** A download that delivers no byte for this long fails with StallTimeoutError (default: the loader's). */
  stallTimeoutMs?: number;
  /** Keep the JS copies of the weights after the GPU upload (default false: they are released). */
  keepWeights?: boolean;
  /**
   * Backend 'ort-wasm' only: the exported graph, as a path inside the model folder (default
   * 'onnx/model.onnx', as transformers.js and BAAI/bge-m3 lay it out) or an absolute URL.
   */
  onnx?: string;
}

/** Model sizes read from config.json (EmbedService.inspect). */
export interface ModelShapeInfo {
  family: string;
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
  typeVocab: number;
  maxTokens: number;
  mrlLayers?: number[];
  mrlDims?: number[];
  /** A pre-quantised folder's bits (config.json `quantization_config`, src/model/QUANT.md); null for float weights. */
  quantizedBits?: 8 | 4 | null;
}

export type GpuProbe = { ok: true; adapter: AdapterReport } | { ok: false; reason: string };
