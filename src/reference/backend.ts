/**
 * The CPU reference encoder behind the EmbedBackend interface, for tests and parity: a test hands it
 * to `new EmbedService({ referenceBackend })` to drive the worker API on the oracle. Production never
 * imports it (the CPU fallback is src/cpu). It is an Engine over the reference's BatchEncoder, so it validates, tokenises (MCLS included),
 * batches by length and checks outputs exactly as the GPU engine does (issue #10 items 4 and 8).
 */
import { ReferenceBatchEncoder } from './batch-encoder.ts';
import { ReferenceEncoder } from './model.ts';
import type { LoadedModel } from '../model/load.ts';
import type { EmbedBackend } from '../engine/backend.ts';
import { Engine, type EngineEmbedding, type EngineRequest } from '../engine/engine.ts';

export class CpuReferenceBackend implements EmbedBackend {
  readonly kind = 'cpu-ref' as const;
  readonly dtype = 'f32';
  private engine: Engine<ReferenceBatchEncoder>;

  constructor(
    readonly model: LoadedModel,
    maxBatchTokens = 8192,
  ) {
    this.engine = new Engine(model, new ReferenceBatchEncoder(new ReferenceEncoder(model, maxBatchTokens)), maxBatchTokens);
  }

  get maxLayers(): number {
    return this.engine.maxLayers;
  }

  embed(texts: readonly string[], opts: EngineRequest = {}): Promise<EngineEmbedding> {
    return this.engine.embed(texts, opts);
  }

  destroy(): void {
    this.engine.destroy();
  }
}
