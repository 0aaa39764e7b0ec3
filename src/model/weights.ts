import { WeightError } from '../errors.ts';
import type { EncoderConfig } from './config.ts';
import { numel, toFloat32, type RawTensor } from './tensor.ts';

/**
 * Weight names per family, verbatim from Hugging Face checkpoints:
 * - bert / xlm-roberta: transformers' BertModel / XLMRobertaModel (`embeddings.*`, `encoder.layer.{i}.*`).
 * - m3bert: XMUDeepLIT/m3bert CustomLlamaModel (`embed_tokens`, `pos_embeddings`, `input_norm`,
 *   `layers.{i}.self_attn.{q,k,v,o}_proj`, `layers.{i}.mlp.{gate,up,down}_proj`, `norm`).
 * Checkpoints saved from a task model carry a prefix (`bert.`, `roberta.`, `model.`), which we strip.
 * Linear weights keep PyTorch's (out_features, in_features) layout.
 */

const PREFIXES = ['bert.', 'roberta.', 'model.', 'encoder_model.'];

/** The task-model prefix most names carry ('' when none does). */
export function canonicalPrefix(names: readonly string[]): string {
  for (const prefix of PREFIXES) {
    const prefixed = names.filter((k) => k.startsWith(prefix));
    if (prefixed.length > 0 && prefixed.length >= names.length / 2) return prefix;
  }
  return '';
}

/** Strips a task-model prefix when every encoder weight carries it; keeps head names (colbert_linear.*) as they are. */
export function canonicalNames(tensors: Map<string, RawTensor>): Map<string, RawTensor> {
  const prefix = canonicalPrefix([...tensors.keys()]);
  if (!prefix) return tensors;
  const out = new Map<string, RawTensor>();
  for (const [k, v] of tensors) out.set(k.startsWith(prefix) ? k.slice(prefix.length) : k, v);
  return out;
}

export interface WeightSpec {
  name: string;
  shape: number[];
  /** Older BERT checkpoints call LayerNorm parameters gamma/beta. */
  aliases?: string[];
}

function ln(prefix: string, h: number): WeightSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [h], aliases: [`${prefix}.gamma`] },
    { name: `${prefix}.bias`, shape: [h], aliases: [`${prefix}.beta`] },
  ];
}
function linear(prefix: string, out: number, inp: number, bias = true): WeightSpec[] {
  const specs: WeightSpec[] = [{ name: `${prefix}.weight`, shape: [out, inp] }];
  if (bias) specs.push({ name: `${prefix}.bias`, shape: [out] });
  return specs;
}

/** Every weight the encoder needs for its first `layers` blocks, with expected shapes. */
export function encoderWeightSpecs(cfg: EncoderConfig, layers = cfg.num_hidden_layers): WeightSpec[] {
  const H = cfg.hidden_size;
  const I = cfg.intermediate_size;
  const specs: WeightSpec[] = [];
  if (cfg.family === 'm3bert') {
    specs.push({ name: 'embed_tokens.weight', shape: [cfg.vocab_size, H] });
    specs.push({ name: 'pos_embeddings.weight', shape: [cfg.max_position_embeddings, H] });
    specs.push({ name: 'input_norm.weight', shape: [H] });
    for (let i = 0; i < layers; i++) {
      const p = `layers.${i}`;
      specs.push({ name: `${p}.input_layernorm.weight`, shape: [H] });
      for (const x of ['q', 'k', 'v', 'o']) specs.push(...linear(`${p}.self_attn.${x}_proj`, H, H, false));
      specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [H] });
      specs.push(...linear(`${p}.mlp.gate_proj`, I, H, false), ...linear(`${p}.mlp.up_proj`, I, H, false), ...linear(`${p}.mlp.down_proj`, H, I, false));
    }
    specs.push({ name: 'norm.weight', shape: [H] });
    return specs;
  }
  specs.push({ name: 'embeddings.word_embeddings.weight', shape: [cfg.vocab_size, H] });
  specs.push({ name: 'embeddings.position_embeddings.weight', shape: [cfg.max_position_embeddings, H] });
  if (cfg.type_vocab_size > 0) specs.push({ name: 'embeddings.token_type_embeddings.weight', shape: [cfg.type_vocab_size, H] });
  specs.push(...ln('embeddings.LayerNorm', H));
  for (let i = 0; i < layers; i++) {
    const p = `encoder.layer.${i}`;
    for (const x of ['query', 'key', 'value']) specs.push(...linear(`${p}.attention.self.${x}`, H, H));
    specs.push(...linear(`${p}.attention.output.dense`, H, H), ...ln(`${p}.attention.output.LayerNorm`, H));
    specs.push(...linear(`${p}.intermediate.dense`, I, H));
    specs.push(...linear(`${p}.output.dense`, H, I), ...ln(`${p}.output.LayerNorm`, H));
  }
  return specs;
}

/** BGE-M3 heads (FlagEmbedding m3.py): colbert_linear Linear(H, H), sparse_linear Linear(H, 1). */
export function headWeightSpecs(hidden: number, colbertDim = hidden): WeightSpec[] {
  return [...linear('colbert_linear', colbertDim, hidden), ...linear('sparse_linear', 1, hidden)];
}

/** Looks up a weight by name (or alias) and checks its shape; throws WeightError naming what is wrong. */
export function pickWeight(tensors: Map<string, RawTensor>, spec: WeightSpec): RawTensor {
  const t = tensors.get(spec.name) ?? spec.aliases?.map((a) => tensors.get(a)).find((x) => x !== undefined);
  if (!t) {
    throw new WeightError(`missing weight "${spec.name}"`, { expected: `a tensor of shape [${spec.shape.join(', ')}]`, received: 'nothing with that name' });
  }
  if (t.shape.length !== spec.shape.length || t.shape.some((s, i) => s !== spec.shape[i])) {
    // Some checkpoints store vectors as [1, H]; accept them when the element count matches.
    if (!(numel(t.shape) === numel(spec.shape) && spec.shape.length === 1)) {
      throw new WeightError(`weight "${spec.name}" has the wrong shape`, { expected: `[${spec.shape.join(', ')}]`, received: `[${t.shape.join(', ')}]` });
    }
  }
  return t;
}

/** All named weights as Float32Arrays (the CPU reference's view), validated against the specs. */
export function float32Weights(tensors: Map<string, RawTensor>, specs: WeightSpec[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const spec of specs) out.set(spec.name, toFloat32(pickWeight(tensors, spec)));
  return out;
}
