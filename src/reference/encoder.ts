import { WeightError } from '../errors.ts';
import type { EncoderConfig } from '../model/config.ts';
import { addInPlace, attention, gelu, geluTanh, layerNorm, linear, mapInPlace, relu, rmsNorm, silu } from './ops.ts';

/**
 * The CPU reference encoder: a direct transcription of the three families' forward passes.
 * - bert / xlm-roberta: post-LN blocks (Devlin et al. 2019; transformers BertLayer):
 *     h = LN(x + O(attn(Q x, K x, V x)));  y = LN(h + W2 act(W1 h))
 * - m3bert: pre-norm Llama block without attention bias, bidirectional (XMUDeepLIT/m3bert
 *   ModifiedLlamaDecoderLayer): h = x + O(attn(RMS(x)));  y = h + down(silu(gate(RMS(h))) * up(RMS(h)))
 *   with embeddings = input_norm(embed_tokens + pos_embeddings) and the final `norm` applied at the exit.
 */

export type { EncoderBatch } from '../tokenize/tokenizer.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';

export interface ForwardOptions {
  /** Run exactly the first `layers` blocks (early exit). Default: all. */
  layers?: number;
  /** Keep every hidden state: [embeddings, block 1, ..., block k]. */
  keepHiddenStates?: boolean;
}

export interface ForwardResult {
  /** (B, T, H) exit hidden states after the family's exit rule (m3bert: final RMSNorm). */
  lastHidden: Float32Array;
  /** (B, T, H) each: embeddings output then each block's output (before any exit norm). */
  hiddenStates?: Float32Array[];
}

export type WeightMap = Map<string, Float32Array>;

function w(weights: WeightMap, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new WeightError(`reference encoder: weight ${name} not loaded`, { expected: `${name} in the checkpoint`, received: 'no such tensor' });
  return t;
}

/**
 * Position ids per token: BERT/m3bert 0..T-1; RoBERTa/XLM-R as transformers'
 * create_position_ids_from_input_ids: mask = input_ids != padding_idx, cumsum(mask) * mask + padding_idx.
 * The mask comes from the ids, not the attention mask: a literal <pad> inside a text gets padding_idx.
 */
export function positionIds(cfg: EncoderConfig, batch: EncoderBatch): Int32Array {
  const { B, T, inputIds } = batch;
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let seen = 0;
    for (let t = 0; t < T; t++) {
      if (cfg.family !== 'xlm-roberta') {
        pos[b * T + t] = t;
        continue;
      }
      const real = inputIds[b * T + t] !== cfg.pad_token_id;
      if (real) seen++;
      pos[b * T + t] = real ? cfg.pad_token_id + seen : cfg.pad_token_id;
    }
  }
  return pos;
}

/** Embedding output (B, T, H). */
export function embed(cfg: EncoderConfig, weights: WeightMap, batch: EncoderBatch): Float32Array {
  const { B, T, inputIds } = batch;
  const H = cfg.hidden_size;
  const pos = positionIds(cfg, batch);
  const x = new Float32Array(B * T * H);
  const m3 = cfg.family === 'm3bert';
  const word = w(weights, m3 ? 'embed_tokens.weight' : 'embeddings.word_embeddings.weight');
  const posW = w(weights, m3 ? 'pos_embeddings.weight' : 'embeddings.position_embeddings.weight');
  // Token type is always 0 for single-sentence embedding.
  const typeW = !m3 && cfg.type_vocab_size > 0 ? w(weights, 'embeddings.token_type_embeddings.weight') : null;
  for (let i = 0; i < B * T; i++) {
    const id = inputIds[i];
    const p = pos[i];
    for (let c = 0; c < H; c++) {
      x[i * H + c] = word[id * H + c] + posW[p * H + c] + (typeW ? typeW[c] : 0);
    }
  }
  if (m3) return rmsNorm(x, B * T, H, w(weights, 'input_norm.weight'), cfg.norm_eps);
  return layerNorm(x, B * T, H, w(weights, 'embeddings.LayerNorm.weight'), w(weights, 'embeddings.LayerNorm.bias'), cfg.norm_eps);
}

function activation(cfg: EncoderConfig): (v: number) => number {
  switch (cfg.hidden_act) {
    case 'gelu':
      return gelu;
    case 'gelu_tanh':
      return geluTanh;
    case 'relu':
      return relu;
    case 'silu':
      return silu;
  }
}

/** One post-LN BERT/XLM-R block. x: (B, T, H) → (B, T, H). */
export function bertBlock(cfg: EncoderConfig, weights: WeightMap, i: number, x: Float32Array, batch: EncoderBatch): Float32Array {
  const { B, T, attentionMask } = batch;
  const H = cfg.hidden_size;
  const I = cfg.intermediate_size;
  const M = B * T;
  const p = `encoder.layer.${i}`;
  const q = linear(x, M, H, w(weights, `${p}.attention.self.query.weight`), H, w(weights, `${p}.attention.self.query.bias`));
  const k = linear(x, M, H, w(weights, `${p}.attention.self.key.weight`), H, w(weights, `${p}.attention.self.key.bias`));
  const v = linear(x, M, H, w(weights, `${p}.attention.self.value.weight`), H, w(weights, `${p}.attention.self.value.bias`));
  const ctx = attention(q, k, v, attentionMask, B, T, H, cfg.num_attention_heads); // (B, T, H)
  const attnOut = linear(ctx, M, H, w(weights, `${p}.attention.output.dense.weight`), H, w(weights, `${p}.attention.output.dense.bias`));
  const h = layerNorm(addInPlace(attnOut, x), M, H, w(weights, `${p}.attention.output.LayerNorm.weight`), w(weights, `${p}.attention.output.LayerNorm.bias`), cfg.norm_eps);
  const inter = mapInPlace(linear(h, M, H, w(weights, `${p}.intermediate.dense.weight`), I, w(weights, `${p}.intermediate.dense.bias`)), activation(cfg)); // (B, T, I)
  const out = linear(inter, M, I, w(weights, `${p}.output.dense.weight`), H, w(weights, `${p}.output.dense.bias`));
  return layerNorm(addInPlace(out, h), M, H, w(weights, `${p}.output.LayerNorm.weight`), w(weights, `${p}.output.LayerNorm.bias`), cfg.norm_eps);
}

/** One pre-norm bidirectional Llama block (m3BERT). x: (B, T, H) → (B, T, H). */
export function llamaBlock(cfg: EncoderConfig, weights: WeightMap, i: number, x: Float32Array, batch: EncoderBatch): Float32Array {
  const { B, T, attentionMask } = batch;
  const H = cfg.hidden_size;
  const I = cfg.intermediate_size;
  const M = B * T;
  const p = `layers.${i}`;
  const xn = rmsNorm(x, M, H, w(weights, `${p}.input_layernorm.weight`), cfg.norm_eps);
  const q = linear(xn, M, H, w(weights, `${p}.self_attn.q_proj.weight`), H, null);
  const k = linear(xn, M, H, w(weights, `${p}.self_attn.k_proj.weight`), H, null);
  const v = linear(xn, M, H, w(weights, `${p}.self_attn.v_proj.weight`), H, null);
  const ctx = attention(q, k, v, attentionMask, B, T, H, cfg.num_attention_heads);
  const h = addInPlace(linear(ctx, M, H, w(weights, `${p}.self_attn.o_proj.weight`), H, null), x);
  const hn = rmsNorm(h, M, H, w(weights, `${p}.post_attention_layernorm.weight`), cfg.norm_eps);
  // LlamaMLP: down(act(gate(x)) * up(x)), act = silu for m3BERT (SwiGLU, Shazeer 2020).
  const gate = mapInPlace(linear(hn, M, H, w(weights, `${p}.mlp.gate_proj.weight`), I, null), activation(cfg));
  const up = linear(hn, M, H, w(weights, `${p}.mlp.up_proj.weight`), I, null);
  for (let j = 0; j < gate.length; j++) gate[j] *= up[j];
  return addInPlace(linear(gate, M, I, w(weights, `${p}.mlp.down_proj.weight`), H, null), h);
}

/** The family's exit rule applied to block k's output: m3bert's final RMSNorm; identity otherwise. */
export function exitNorm(cfg: EncoderConfig, weights: WeightMap, x: Float32Array, M: number): Float32Array {
  return cfg.family === 'm3bert' ? rmsNorm(x, M, cfg.hidden_size, w(weights, 'norm.weight'), cfg.norm_eps) : x;
}

export function forward(cfg: EncoderConfig, weights: WeightMap, batch: EncoderBatch, opts: ForwardOptions = {}): ForwardResult {
  const layers = opts.layers ?? cfg.num_hidden_layers;
  let x = embed(cfg, weights, batch);
  const hiddenStates = opts.keepHiddenStates ? [x] : undefined;
  for (let i = 0; i < layers; i++) {
    x = cfg.family === 'm3bert' ? llamaBlock(cfg, weights, i, x, batch) : bertBlock(cfg, weights, i, x, batch);
    hiddenStates?.push(x);
  }
  return { lastHidden: exitNorm(cfg, weights, x, batch.B * batch.T), hiddenStates };
}
