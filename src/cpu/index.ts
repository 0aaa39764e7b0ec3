/**
 * The CPU backend's entry: `createCpuEngine(model, opts)` is an `Engine` (src/engine/engine.ts) over a
 * CpuEncoder, so it validates, tokenises, batches and assembles BGE-M3 outputs exactly as the WebGPU
 * engine does, with the same `embed(texts, { layers, dims, outputs, ... })`.
 *
 *   const engine = await createCpuEngine(await loadModel(url), { maxLayers: 8 });
 *   engine.encoder.threads;        // wasm threads in effect (1 unless cross-origin isolated)
 *   await engine.embed(texts, { layers: 6, dims: 128 });
 *
 * `createOrtGraphEngine(model, onnxBytes)` is the same Engine over a model's own exported graph (backend 'ort-wasm').
 */
import { Engine } from '../engine/engine.ts';
import { InvalidInputError } from '../errors.ts';
import type { LoadedModel } from '../model/load.ts';
import { dequantizedModel } from './dequantize.ts';
import { CpuEncoder, type CpuEncoderOptions } from './encoder.ts';

import { OrtGraphEncoder, type GraphEncoderOptions } from './graph-encoder.ts';

export { CpuEncoder, type CpuEncoderOptions } from './encoder.ts';
export { ATTENTION_SCORE_BYTES, HostEncoder } from './host-encoder.ts';
export { OrtGraphEncoder, type GraphEncoderOptions } from './graph-encoder.ts';
export { canUseThreads, chooseThreads, type ThreadChoice } from './ort.ts';

export interface CpuEngineOptions extends CpuEncoderOptions {
  /** Cap on padded tokens per batch and so on sequence length (default and maximum: the encoder's batchTokenCap). */
  maxBatchTokens?: number;
}

export async function createCpuEngine(loaded: LoadedModel, opts: CpuEngineOptions = {}): Promise<Engine<CpuEncoder>> {
  const model = dequantizedModel(loaded); // a pre-quantised folder runs as f32 here (dequantize.ts says why)
  const L = model.config.num_hidden_layers;
  const { maxBatchTokens, ...encoderOpts } = opts;
  if (opts.maxLayers !== undefined && (!Number.isInteger(opts.maxLayers) || opts.maxLayers < 1 || opts.maxLayers > L)) {
    throw new InvalidInputError('maxLayers is out of range', { expected: `an integer in 1..${L}`, received: opts.maxLayers });
  }
  if (maxBatchTokens !== undefined && (!Number.isInteger(maxBatchTokens) || maxBatchTokens < 1)) throw new InvalidInputError('maxBatchTokens must be a positive integer', { expected: 'integer >= 1', received: maxBatchTokens });
  const encoder = await CpuEncoder.create(model, encoderOpts);
  return new Engine(model, encoder, maxBatchTokens ?? encoder.batchTokenCap);
}

/** Backend 'ort-wasm': the model's exported ONNX graph (full depth) with the CPU backend's heads and pooling. */
export async function createOrtGraphEngine(model: LoadedModel, onnx: Uint8Array, opts: GraphEncoderOptions & { maxBatchTokens?: number } = {}): Promise<Engine<OrtGraphEncoder>> {
  const { maxBatchTokens, ...encoderOpts } = opts;
  if (maxBatchTokens !== undefined && (!Number.isInteger(maxBatchTokens) || maxBatchTokens < 1)) throw new InvalidInputError('maxBatchTokens must be a positive integer', { expected: 'integer >= 1', received: maxBatchTokens });
  const encoder = await OrtGraphEncoder.create(model, onnx, encoderOpts);
  return new Engine(model, encoder, maxBatchTokens ?? encoder.batchTokenCap);
}
