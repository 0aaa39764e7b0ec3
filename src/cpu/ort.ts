/**
 * onnxruntime-web's wasm execution provider, as the CPU backend uses it: the thread count is decided once
 * per JS realm (onnxruntime reads env.wasm.numThreads when its wasm module first initialises), so every
 * CPU engine in a worker shares it, and the encoder reports the count that really took effect.
 */
import * as ort from 'onnxruntime-web/wasm';
import { InvalidInputError } from '../errors.ts';

export { ort };

export interface ThreadChoice {
  threads: number;
  /** Why this many: the planner and the playground show it. */
  reason: string;
}

/** Whether wasm threads can work here: SharedArrayBuffer exists and (in a page or worker) the context is cross-origin isolated. */
export function canUseThreads(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  const g = globalThis as { crossOriginIsolated?: boolean; document?: unknown; WorkerGlobalScope?: unknown };
  const inBrowser = g.document !== undefined || g.WorkerGlobalScope !== undefined;
  return !inBrowser || g.crossOriginIsolated === true;
}

/**
 * The thread count to ask onnxruntime for: the caller's, else onnxruntime-web's own default
 * (min(4, ⌈cores / 2⌉), what transformers.js gets), and 1 without cross-origin isolation.
 */
export function chooseThreads(requested?: number): ThreadChoice {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1)) {
    throw new InvalidInputError('option "threads" must be a positive integer', { expected: 'an integer >= 1, or undefined for the default', received: requested });
  }
  if (!canUseThreads()) return { threads: 1, reason: 'single thread: the page is not cross-origin isolated (no SharedArrayBuffer), so wasm threads are unavailable' };
  if (requested !== undefined) return { threads: requested, reason: `${requested} thread(s), as asked` };
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  const threads = Math.min(4, Math.ceil(cores / 2));
  return { threads, reason: `${threads} thread(s): onnxruntime-web's default for ${cores} logical cores (min(4, ⌈cores/2⌉)), cross-origin isolated` };
}

let realmThreads: number | null = null;

/**
 * Creates a session on the wasm EP. The first call in this realm fixes the thread count (and wasm
 * paths); later calls report the count already in effect.
 */
export async function createSession(bytes: Uint8Array, choice: ThreadChoice, wasmPaths?: string): Promise<{ session: ort.InferenceSession; threads: number }> {
  if (realmThreads === null) {
    ort.env.wasm.numThreads = choice.threads;
    if (wasmPaths) ort.env.wasm.wasmPaths = wasmPaths;
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', executionMode: 'sequential' });
  realmThreads ??= ort.env.wasm.numThreads ?? choice.threads;
  return { session, threads: realmThreads };
}
