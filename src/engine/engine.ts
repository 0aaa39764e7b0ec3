import { EngineDestroyedError, InvalidInputError, ModelFormatError } from '../errors.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import type { LoadedModel } from '../model/load.ts';
import { padBatch, validateTexts } from '../tokenize/tokenizer.ts';
import { planBatches } from './batching.ts';
import { GpuEncoder } from './gpu-encoder.ts';
import type { BackendKind, BatchEncoder, EmbedBackend } from './backend.ts';
import { insertMcls } from './mcls.ts';
import { WEIGHT_STORAGES, type WeightStorage } from './gpu-weights.ts';
import type { QuantizeProgress } from '../model/load.ts';
import { KERNEL_SCHEDULES, type KernelSchedule } from '../gpu/kernel.ts';
import { resolveRequest, throwIfAborted, type EmbedOptions } from './options.ts';
import { applyModules, encoderOptions, moduleConfig, resolvePrompt } from './modules.ts';
import type { OutputOptions } from './outputs.ts';
import { assertFinite, combineTokenWeights, type SparseVector } from './postprocess.ts';

export interface EngineOptions {
  /**
   * 'auto' keeps the checkpoint's precision (f16/bf16 checkpoints → f16 storage, f32 → f32, a pre-quantised
   * folder → its bits). 'int8' / 'q4' quantise the matmul weights and word embeddings at load (src/model/QUANT.md).
   */
  weights?: 'auto' | WeightStorage;
  /** Reports each weight quantised at load (storage 'int8' / 'q4'). */
  onProgress?: (p: QuantizeProgress) => void;
  /** Cap on padded tokens (batch size × longest sequence) per GPU batch. */
  maxBatchTokens?: number;
  /** Lower the per-binding byte limit below the device's (tests use it to force split tables). */
  maxBindingBytes?: number;
  /** Upload only the first k blocks (a planner that will never run deeper saves their memory). */
  maxLayers?: number;
  /**
   * Matmul, attention and norm layout; default: 'registers' on a CPU fallback adapter, 'workgroup' on a GPU
   * (KernelSchedule). Attention keeps its flash kernel when the head dim is not a multiple of 4.
   */
  schedule?: KernelSchedule;
}

export type EngineRequest = EmbedOptions &
  OutputOptions & {
    /** A prompt name of the model ('query', 'passage', ...) or literal text, prepended before tokenisation (src/engine/modules.ts). */
    prompt?: string;
  };

/** One text's ColBERT vectors: (count, dim) row-major, count = tokens − 1 (CLS dropped, </s> kept). */
export interface ColbertBlock {
  data: Float32Array;
  count: number;
  dim: number;
}

export interface EngineEmbedding {
  /** Dense vectors (n, dims) row-major, in input order; empty when 'dense' was not requested. */
  embeddings: Float32Array;
  /** Per text, when 'sparse' was requested: lexical weights by token id (ascending), tokens if asked. */
  sparse?: (SparseVector & { tokens?: string[] })[];
  /** Per text, when 'colbert' was requested. */
  colbert?: ColbertBlock[];
  n: number;
  dims: number;
  layers: number;
  /** How many texts were cut to the model's maximum length. */
  truncated: number;
  /** Tokens each text became (after truncation and MCLS), counted by the model's own tokenizer. */
  tokens: Uint32Array;
  /** Indices of the texts that were cut to the model's maximum length. */
  truncatedRows: number[];
  /** GPU batches run for this call. */
  batches: number;
}

/** Chooses the weight storage: f16 checkpoints stay f16 (half the memory), f32 ones stay exact unless forced. */
export function chooseStorage(model: LoadedModel, requested: EngineOptions['weights'] = 'auto'): WeightStorage {
  if (requested !== 'auto' && !WEIGHT_STORAGES.includes(requested)) throw new InvalidInputError('weights must be "auto", "f32", "f16", "int8" or "q4"', { expected: '"auto" | "f32" | "f16" | "int8" | "q4"', received: requested });
  // A pre-quantised folder holds codes, not floats: it runs with its own bits only.
  const stored = model.quantization ? (model.quantization.bits === 8 ? 'int8' : 'q4') : null;
  if (stored && requested !== 'auto' && requested !== stored) {
    throw new InvalidInputError(`this model folder is pre-quantised (${stored}); weights "${requested}" cannot be made from it`, { expected: `weights "auto" or "${stored}"`, received: requested });
  }
  if (stored) return stored;
  if (requested !== 'auto') return requested;
  const first = model.weights.values().next().value;
  return first && first.dtype !== 'f32' ? 'f16' : 'f32';
}

/**
 * The embedding engine over one loaded model and one compute backend (a BatchEncoder: WebGPU or CPU):
 * validate → tokenize → batch by length → encode → reorder. Every backend goes through this one path.
 *
 * Lifetime: destroy() marks the engine destroyed at once; a call in flight rejects with
 * EngineDestroyedError at its next batch boundary (it never returns rows from a torn-down encoder), and
 * the encoder's memory is released when the last in-flight call has left.
 */
export class Engine<E extends BatchEncoder = BatchEncoder> implements EmbedBackend {
  private destroyed = false;
  private inflight = 0;
  readonly maxBatchTokens: number;

  constructor(
    readonly model: LoadedModel,
    readonly encoder: E,
    maxBatchTokens = 8192,
  ) {
    if (!Number.isInteger(maxBatchTokens) || maxBatchTokens < 1) throw new InvalidInputError('maxBatchTokens must be a positive integer', { expected: 'integer >= 1', received: maxBatchTokens });
    this.maxBatchTokens = Math.min(maxBatchTokens, encoder.batchTokenCap);
  }

  get kind(): BackendKind {
    return this.encoder.backend;
  }

  get maxLayers(): number {
    return this.encoder.maxLayers;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** The WebGPU engine: uploads the weights (and destroys them again if anything in create fails). */
  static async create(rt: GpuRuntime, model: LoadedModel, opts: EngineOptions = {}): Promise<Engine<GpuEncoder>> {
    const storage = chooseStorage(model, opts.weights);
    const requested = opts.maxBatchTokens ?? 8192;
    if (!Number.isInteger(requested) || requested < 1) throw new InvalidInputError('maxBatchTokens must be a positive integer', { expected: 'integer >= 1', received: requested });
    const L = model.config.num_hidden_layers;
    const maxLayers = opts.maxLayers ?? L;
    if (!Number.isInteger(maxLayers) || maxLayers < 1 || maxLayers > L) throw new InvalidInputError('maxLayers is out of range', { expected: `an integer in 1..${L}`, received: opts.maxLayers });
    const schedule = opts.schedule;
    if (schedule !== undefined && !KERNEL_SCHEDULES.includes(schedule)) {
      throw new InvalidInputError('schedule must be "workgroup" or "registers"', { expected: '"workgroup" | "registers" | undefined (by adapter)', received: schedule });
    }
    if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new InvalidInputError('onProgress must be a function', { expected: 'a function or undefined', received: opts.onProgress });
    const encoder = await GpuEncoder.create(rt, model, storage, { maxBindingBytes: opts.maxBindingBytes, maxLayers, schedule, onProgress: opts.onProgress });
    return new Engine(model, encoder, requested);
  }

  /** The weights' dtype: the shaders' float dtype ('f32', 'f16', 'f16x2'), or 'int8' / 'q4' when quantised. */
  get dtype(): string {
    const q = (this.encoder as { quant?: number | null }).quant;
    return q === 8 ? 'int8' : q === 4 ? 'q4' : this.encoder.dtype;
  }

  private checkAlive(): void {
    if (this.destroyed) throw new EngineDestroyedError('the engine was destroyed', { expected: 'an engine that is alive (load a model again)', received: 'a destroyed engine' });
  }

  async embed(texts: readonly string[], options: EngineRequest = {}): Promise<EngineEmbedding> {
    this.checkAlive();
    this.inflight++;
    try {
      return await this.run(texts, options);
    } finally {
      this.inflight--;
      if (this.destroyed && this.inflight === 0) this.encoder.destroy();
    }
  }

  private async run(texts: readonly string[], options: EngineRequest): Promise<EngineEmbedding> {
    // One validation for every backend (src/engine/options.ts resolveRequest). sentence-transformers
    // modules (src/engine/modules.ts): dims count the last Dense layer's output; prompts prefix the texts.
    const { o, want, signal } = resolveRequest(moduleConfig(this.model), this.model.pooling, options, this.encoder);
    const promptText = resolvePrompt(this.model, options?.prompt);
    const valid = promptText ? validateTexts(texts).map((t) => promptText + t) : validateTexts(texts);
    const tok = this.model.tokenizer;
    const enc = tok.encode(valid, this.model.config.max_tokens);
    if (o.mcls) {
      enc.ids = enc.ids.map((seq, i) => {
        const r = insertMcls(seq, o.mcls!, this.model.config.max_tokens);
        enc.truncated[i] ||= r.cut;
        return r.ids;
      });
    }
    const lengths = enc.ids.map((s) => s.length);
    // The embedding kernel trusts ids (robust access would silently clamp): a tokenizer that emits ids
    // past the model's vocabulary is a mismatched model folder.
    const V = this.model.config.vocab_size;
    const badText = enc.ids.findIndex((s) => s.some((id) => id < 0 || id >= V));
    if (badText >= 0) {
      throw new ModelFormatError('the tokenizer produced a token id outside the model vocabulary (tokenizer.json does not belong to this model?)', { expected: `ids < vocab_size ${V}`, received: Math.max(...enc.ids[badText]) });
    }
    const tooLong = lengths.findIndex((n) => n > this.maxBatchTokens);
    if (tooLong >= 0) {
      const why = this.kind === 'webgpu' ? "this GPU's storage binding limit" : `the ${this.kind} backend's per-batch token cap`;
      throw new InvalidInputError(`texts[${tooLong}] is too long for ${why}`, { expected: `at most ${this.maxBatchTokens} tokens per sequence on the ${this.kind} backend`, received: `${lengths[tooLong]} tokens` });
    }
    const dense = new Float32Array(want.dense ? valid.length * o.dims : 0);
    const sparse: EngineEmbedding['sparse'] = want.sparse ? new Array(valid.length) : undefined;
    const colbert: ColbertBlock[] | undefined = want.colbert ? new Array(valid.length) : undefined;
    const batches = planBatches(lengths, this.maxBatchTokens);
    for (const idx of batches) {
      this.checkAlive();
      throwIfAborted(signal);
      const batch = padBatch(
        idx.map((i) => enc.ids[i]),
        tok.padId,
      );
      const T = batch.T;
      const r = await this.encoder.embedBatch(
        batch,
        idx.map((i) => lengths[i]),
        encoderOptions(this.model, o),
        want,
      );
      if (r.dense) r.dense = applyModules(this.model, r.dense, idx.length, o);
      // The encoder may have been destroyed while this batch was on the device: its rows are not trusted.
      this.checkAlive();
      // A NaN or Inf (overflowing f16, a corrupt weight) never reaches the caller (NumericError).
      if (r.dense) assertFinite(r.dense, 'dense embeddings');
      if (r.tokenWeights) assertFinite(r.tokenWeights, 'sparse token weights');
      if (r.colbert) assertFinite(r.colbert.data, 'ColBERT vectors');
      idx.forEach((i, row) => {
        if (r.dense) dense.set(r.dense.subarray(row * o.dims, (row + 1) * o.dims), i * o.dims);
        if (sparse && r.tokenWeights) {
          const s = combineTokenWeights(r.tokenWeights.subarray(row * T, (row + 1) * T), enc.ids[i], batch.attentionMask.subarray(row * T, (row + 1) * T), lengths[i], tok.specialIds);
          sparse[i] = want.sparseTokens ? { ...s, tokens: [...s.ids].map((id) => tok.idToToken(id) ?? '') } : s;
        }
        if (colbert && r.colbert) {
          // Tokens 1..n−1 of this row: CLS dropped, padding never included (FlagEmbedding _process_colbert_vecs).
          const d = r.colbert.dim;
          const count = Math.max(lengths[i] - 1, 0);
          colbert[i] = { data: r.colbert.data.slice((row * T + 1) * d, (row * T + 1 + count) * d), count, dim: d };
        }
      });
    }
    const truncatedRows = enc.truncated.flatMap((t, i) => (t ? [i] : []));
    return { embeddings: dense, sparse, colbert, n: valid.length, dims: o.dims, layers: o.layers, truncated: truncatedRows.length, tokens: Uint32Array.from(lengths), truncatedRows, batches: batches.length };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.inflight === 0) this.encoder.destroy();
  }
}
