/**
 * Interim CPU fallback: the CPU reference encoder behind the EmbedBackend interface, until the fast
 * CPU backend (src/cpu, issue #15) replaces it. It is the only production import of src/reference.
 */
import { ReferenceEncoder } from '../reference/model.ts';
import type { LoadedModel } from '../model/load.ts';
import { EngineDestroyedError } from '../errors.ts';
import type { EmbedBackend } from './backend.ts';
import type { EngineEmbedding, EngineRequest } from './engine.ts';
import { resolveOutputs } from './outputs.ts';

export class CpuReferenceBackend implements EmbedBackend {
  readonly kind = 'cpu-ref' as const;
  readonly dtype = 'f32';
  private cpu: ReferenceEncoder | null;

  constructor(readonly model: LoadedModel) {
    this.cpu = new ReferenceEncoder(model);
  }

  get maxLayers(): number {
    return this.model.config.num_hidden_layers;
  }

  async embed(texts: readonly string[], opts: EngineRequest = {}): Promise<EngineEmbedding> {
    const cpu = this.cpu;
    if (!cpu) throw new EngineDestroyedError('the CPU backend was destroyed', { expected: 'a backend that is alive (load a model again)', received: 'a destroyed backend' });
    const { outputs, colbertDims, sparseTokens, ...embedOpts } = opts;
    const want = resolveOutputs({ outputs, colbertDims, sparseTokens }, cpu.colbert?.out ?? null);
    const list = [...texts];
    const dense = want.dense ? cpu.embed(list, embedOpts) : null;
    // The reference runs the heads in a second forward: it exists for correctness, not speed.
    const heads = want.sparse || want.colbert ? cpu.bgeM3(list, { layers: embedOpts.layers, colbertDims: want.colbertDims }) : null;
    const tok = this.model.tokenizer;
    const enc = tok.encode(list, this.model.config.max_tokens);
    return {
      embeddings: dense?.embeddings ?? new Float32Array(0),
      sparse: want.sparse ? heads!.sparse.map((s) => (want.sparseTokens ? { ...s, tokens: [...s.ids].map((id) => tok.idToToken(id) ?? '') } : s)) : undefined,
      colbert: want.colbert ? heads!.colbert.map((data, i) => ({ data, count: enc.ids[i].length - 1, dim: want.colbertDims })) : undefined,
      n: list.length,
      dims: dense?.dims ?? 0,
      layers: embedOpts.layers ?? this.model.config.num_hidden_layers,
      truncated: enc.truncated.filter(Boolean).length,
      tokens: Uint32Array.from(enc.ids, (s) => s.length),
      truncatedRows: enc.truncated.flatMap((t, i) => (t ? [i] : [])),
      batches: 1,
    };
  }

  destroy(): void {
    this.cpu = null;
  }
}
