/** M3Client's public option and result types (the façade is src/client/client.ts). */
import type { Pooling } from '../model/config.ts';
import type { CalibrationCache } from './cache.ts';
import type { WeightsOption } from './dtypes.ts';
import type { Budget, Plan } from './planner.ts';
import type { RequestResult } from './scheduler.ts';

export type ClientProgress =
  | { phase: 'download'; file: string; loaded: number; total: number | null }
  | { phase: 'loaded'; bytes: number }
  /** Weights 'int8' / 'q4': one report per weight the worker quantised at load (or took pre-quantised from the folder). */
  | { phase: 'quantize'; name: string; done: number; total: number; prequantized: boolean }
  | { phase: 'calibrate'; done: number; total: number; cached: boolean }
  | { phase: 'ready'; plan: Plan }
  | { phase: 'recover'; reason: string; restarts: number }
  | { phase: 'replan'; reason: string; plan: Plan };

export interface M3ClientOptions {
  /** Hub id or base URL of a model folder. */
  model: string;
  budget?: Budget;
  /**
   * 'auto' (default): WebGPU on a hardware adapter; the CPU backend (onnxruntime-web wasm kernels per
   * block, early exit kept) without WebGPU; on a software adapter (SwiftShader, lavapipe) both are
   * calibrated and the faster plan wins (`plan.backendReason` says why). 'webgpu' / 'cpu' force one;
   * 'ort-wasm' runs the model's whole exported ONNX graph (full depth only).
   */
  backend?: 'auto' | 'webgpu' | 'cpu' | 'ort-wasm';
  /** The ONNX export for backend 'ort-wasm': a URL (relative to the page), or 'auto' (default) for `<model>/onnx/model.onnx`. */
  onnx?: string;
  /** wasm threads for the CPU backend (default: onnxruntime-web's; 1 unless the page is cross-origin isolated). */
  threads?: number;
  /** Where onnxruntime-web's .wasm files are served, for the CPU backend and 'ort-wasm' (default: next to its module; a built app may need e.g. `${origin}/ort/`). */
  ortWasmPaths?: string;
  /**
   * Weight dtype. 'auto' (default): the planner chooses among the dtypes the backend can load the model in
   * (WebGPU: f32, f16, int8, q4 quantised at load; the CPU backend and 'ort-wasm': f32), keeping the
   * model's own unless the budget needs another (`plan.dtype`, `plan.dtypeReason`; src/client/dtypes.ts).
   * Anything else pins it.
   */
  weights?: WeightsOption;
  /** For a hub id: an HF_ENDPOINT-style mirror, a branch / tag / commit, a folder in the repo, and an access token (gated repos; never logged). */
  hubEndpoint?: string;
  revision?: string;
  subfolder?: string;
  token?: string;
  /** Scan weights for NaN/Inf at load (default true). */
  checkFinite?: boolean;
  onProgress?: (p: ClientProgress) => void;
  /** Calibration cache (default: IndexedDB). */
  cache?: CalibrationCache;
  /** 'auto' measures (or reads the cache); 'skip' uses the flops-based default cost model. */
  calibration?: 'auto' | 'skip';
  /** Creates the worker (default: workers/embed.worker.ts). */
  workerFactory?: () => Worker;
  /** A ping every intervalMs; no answer within timeoutMs means the worker is dead. */
  heartbeat?: { intervalMs: number; timeoutMs: number };
  /** Worker restarts one request may live through before it rejects (default 3). */
  maxRestarts?: number;
  /** Texts per fairness slice (default 4) and per worker call (default 32). */
  chunkTexts?: number;
  maxBatchTexts?: number;
}

export interface ClientEmbedOptions {
  layers?: number;
  dims?: number;
  /** Override the model's pooling (sentence-transformers' modes; src/model/config.ts POOLING_MODES). */
  pooling?: Pooling;
  normalize?: boolean;
  /** Any subset of BGE-M3's outputs, all from one encoder pass (default ['dense']). */
  outputs?: ('dense' | 'sparse' | 'colbert')[];
  /** Truncate each ColBERT vector to its first k values, then re-normalise. */
  colbertDims?: number;
  /** Also return the token string of each sparse id. */
  sparseTokens?: boolean;
  /** BGE-M3's MCLS for long documents: a CLS every this many tokens, dense = mean of their states. */
  mcls?: number;
  /** The model's prompt by name ('query', 'passage', from config_sentence_transformers.json) or a literal prefix; '' for none. */
  prompt?: string;
  signal?: AbortSignal;
  /** Slices of this call done so far. */
  onProgress?: (p: { done: number; total: number }) => void;
}

/** Dense rows (n × dims), sparse and ColBERT per text when asked, with exact token counts and truncation. */
export type ClientEmbedResult = RequestResult;

export interface ClientStats {
  calibration: 'measured' | 'cache' | 'skipped';
  /** Calibration embeds run by this client (0 when the cache answered). */
  calibrationRuns: number;
  restarts: number;
  workerCalls: number;
  replans: number;
  /** On a software WebGPU adapter: each backend's calibrated plan for the budget (null: none fits). */
  backendTrials?: { backend: string; plan: Pick<Plan, 'layers' | 'dims' | 'dtype' | 'latencyMs' | 'quality'> | null }[];
}
