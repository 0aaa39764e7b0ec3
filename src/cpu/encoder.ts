/**
 * The CPU backend's BatchEncoder (backend 'cpu'): every family, every output and every (layers, dims)
 * from the safetensors alone. Embeddings, norms, pooling and the sparse head run in TypeScript
 * (host-ops.ts); each encoder block and the ColBERT projection is an onnxruntime-web session on the wasm
 * EP (graphs.ts), chained, so an early exit at k runs exactly k block sessions. f32 throughout: f16 and
 * bf16 checkpoints are upcast at load. Mirrors src/engine/gpu-encoder.ts step for step.
 */
import type { EncoderConfig } from '../model/config.ts';
import type { LoadedModel } from '../model/load.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';
import { bertBlockGraph, BLOCK_IO, llamaBlockGraph } from './graphs.ts';
import { HostEncoder } from './host-encoder.ts';
import { embed, rmsNormRows, type EmbeddingTables } from './host-ops.ts';
import { chooseThreads, ort, type ThreadChoice } from './ort.ts';
import { weightReader } from './weights.ts';

export interface CpuEncoderOptions {
  /** Wasm threads (needs cross-origin isolation); default: onnxruntime-web's own default, 1 without isolation. */
  threads?: number;
  /** Build only the first k blocks (a planner that never runs deeper saves their memory and load time). */
  maxLayers?: number;
  /** Where onnxruntime-web's .wasm files are served (default: next to its module). */
  wasmPaths?: string;
}

export class CpuEncoder extends HostEncoder {
  readonly backend = 'cpu' as const;
  private sessions: ort.InferenceSession[] = [];
  private emb!: EmbeddingTables;
  private finalNorm: Float32Array | null = null;

  private constructor(cfg: EncoderConfig, maxLayers: number, threadChoice: ThreadChoice) {
    super(cfg, maxLayers, threadChoice);
  }

  /** Builds every block's graph from the weights and opens its session (released again if any step fails). */
  static async create(model: LoadedModel, opts: CpuEncoderOptions = {}): Promise<CpuEncoder> {
    const cfg = model.config;
    const enc = new CpuEncoder(cfg, opts.maxLayers ?? cfg.num_hidden_layers, chooseThreads(opts.threads));
    try {
      await enc.build(model, opts.wasmPaths);
    } catch (e) {
      enc.destroy();
      throw e;
    }
    return enc;
  }

  private async build(model: LoadedModel, wasmPaths?: string): Promise<void> {
    const cfg = this.cfg;
    const read = weightReader(cfg, model.weights, this.maxLayers);
    const m3 = cfg.family === 'm3bert';
    this.emb = m3
      ? { word: read('embed_tokens.weight'), pos: read('pos_embeddings.weight'), type0: null, normW: read('input_norm.weight'), normB: null }
      : {
          word: read('embeddings.word_embeddings.weight'),
          pos: read('embeddings.position_embeddings.weight'),
          type0: cfg.type_vocab_size > 0 ? read('embeddings.token_type_embeddings.weight').slice(0, cfg.hidden_size) : null,
          normW: read('embeddings.LayerNorm.weight'),
          normB: read('embeddings.LayerNorm.bias'),
        };
    if (m3) this.finalNorm = read('norm.weight');
    // One graph at a time: its f32 copy of the weights is garbage once onnxruntime holds them.
    for (let i = 0; i < this.maxLayers; i++) this.sessions.push(await this.open(m3 ? llamaBlockGraph(cfg, read, i) : bertBlockGraph(cfg, read, i), wasmPaths));
    await this.buildHeads(model, wasmPaths);
  }

  /** Embeddings → the first `layers` blocks → the exit rule, for one (B, T) batch; returns (B, T, H). */
  protected async forward(batch: EncoderBatch, lengths: number[], layers: number): Promise<Float32Array> {
    const { B, T } = batch;
    const H = this.cfg.hidden_size;
    let x: ort.Tensor = new ort.Tensor('float32', embed(this.cfg, this.emb, batch), [B, T, H]); // (B, T, H)
    const lens = new ort.Tensor('int32', Int32Array.from(lengths), [B]); // (B)
    for (let i = 0; i < layers; i++) x = (await this.sessions[i].run({ [BLOCK_IO.x]: x, [BLOCK_IO.lengths]: lens }))[BLOCK_IO.y] as ort.Tensor;
    const h = x.data as Float32Array; // a copy out of the wasm heap
    if (this.finalNorm) rmsNormRows(h, B * T, H, this.finalNorm, this.cfg.norm_eps); // m3BERT's exit rule: the final norm
    return h;
  }

  protected forwardSessions(): ort.InferenceSession[] {
    const s = this.sessions;
    this.sessions = [];
    return s;
  }
}
