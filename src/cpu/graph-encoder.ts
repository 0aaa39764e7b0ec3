/**
 * Backend 'ort-wasm': a model's own exported ONNX graph (inputs input_ids, attention_mask[, token_type_ids];
 * output last_hidden_state) on onnxruntime-web's wasm EP, for people who already ship an export. The graph
 * has no exits, so it runs at full depth only (`exits` = [L]: the Engine refuses other depths); pooling,
 * BGE-M3's sparse and ColBERT heads (from colbert_linear.pt / sparse_linear.pt), truncation and
 * normalisation are the CPU backend's own (host-encoder.ts), so every output matches backend 'cpu'.
 */
import { ModelFormatError } from '../errors.ts';
import type { LoadedModel } from '../model/load.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';
import { HostEncoder } from './host-encoder.ts';
import { chooseThreads, ort } from './ort.ts';

export interface GraphEncoderOptions {
  /** Wasm threads (needs cross-origin isolation); default: onnxruntime-web's own default, 1 without isolation. */
  threads?: number;
  /** Where onnxruntime-web's .wasm files are served (default: next to its module). */
  wasmPaths?: string;
}

export class OrtGraphEncoder extends HostEncoder {
  readonly backend = 'ort-wasm' as const;
  readonly exits: readonly number[];
  private session: ort.InferenceSession | null = null;
  private output = 'last_hidden_state';

  private constructor(model: LoadedModel, threads?: number) {
    const L = model.config.num_hidden_layers;
    super(model.config, L, chooseThreads(threads));
    this.exits = [L];
  }

  /** Opens the graph and checks its inputs and output; the heads come from the loaded model. */
  static async create(model: LoadedModel, onnx: Uint8Array, opts: GraphEncoderOptions = {}): Promise<OrtGraphEncoder> {
    const enc = new OrtGraphEncoder(model, opts.threads);
    try {
      let session: ort.InferenceSession;
      try {
        session = await enc.open(onnx, opts.wasmPaths);
      } catch (cause) {
        throw new ModelFormatError(`onnxruntime-web could not open the ONNX graph: ${(cause as Error)?.message ?? String(cause)}`, { expected: 'an ONNX model file', received: `${onnx.byteLength} bytes`, cause });
      }
      enc.session = session;
      for (const need of ['input_ids', 'attention_mask']) {
        if (!session.inputNames.includes(need)) throw new ModelFormatError(`the ONNX graph has no input "${need}"`, { expected: 'inputs input_ids, attention_mask[, token_type_ids]', received: session.inputNames.join(', ') });
      }
      if (!session.outputNames.includes(enc.output)) {
        if (session.outputNames.length !== 1) throw new ModelFormatError('the ONNX graph has no output "last_hidden_state"', { expected: 'last_hidden_state (B, T, hidden)', received: session.outputNames.join(', ') });
        enc.output = session.outputNames[0];
      }
      await enc.buildHeads(model, opts.wasmPaths);
    } catch (e) {
      enc.destroy();
      throw e;
    }
    return enc;
  }

  /** The whole graph on one (B, T) batch: last_hidden_state (B, T, H). `layers` is always L (exits). */
  protected async forward(batch: EncoderBatch, _lengths: number[], _layers: number): Promise<Float32Array> {
    const { B, T } = batch;
    const H = this.cfg.hidden_size;
    const session = this.session!;
    const shape = [B, T];
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(batch.inputIds, BigInt), shape), // (B, T)
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(batch.attentionMask, BigInt), shape), // (B, T)
    };
    if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(B * T), shape);
    const y = (await session.run(feeds))[this.output];
    if (y.dims.length !== 3 || y.dims[0] !== B || y.dims[1] !== T || y.dims[2] !== H) {
      throw new ModelFormatError('the ONNX graph returned an unexpected shape', { expected: `(${B}, ${T}, ${H}) = (B, T, hidden_size)`, received: `(${y.dims.join(', ')})` });
    }
    return y.data as Float32Array; // (B, T, H)
  }

  protected forwardSessions(): ort.InferenceSession[] {
    const s = this.session;
    this.session = null;
    return s ? [s] : [];
  }
}
