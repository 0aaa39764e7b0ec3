/**
 * One ONNX graph per encoder block (and one for the ColBERT head), built from the checkpoint's weights,
 * for onnxruntime-web's wasm execution provider. A graph per block makes early exit plain stopping:
 * onnxruntime always runs a whole graph, whatever outputs are fetched (microsoft/onnxruntime #16483).
 *
 * The blocks use onnxruntime's fused CPU contrib ops (com.microsoft; docs/ContribOperators.md), the same
 * kernels its graph optimiser substitutes into a BERT export at level 'all':
 *   Attention (q|k|v projection + bias + masked softmax(qkᵀ/√d)v, mask_index = key lengths of right-padded rows),
 *   SkipLayerNormalization (LN(x + skip + bias)), BiasGelu (erf GELU of x + bias), FastGelu (tanh GELU),
 *   SkipSimplifiedLayerNormalization (RMSNorm(x + skip), also returning the sum), SimplifiedLayerNormalization (RMSNorm).
 * Each mirrors one step of src/reference/encoder.ts (the oracle the tests compare with).
 */
import type { Activation, EncoderConfig } from '../model/config.ts';
import { FLOAT, GraphBuilder, INT32 } from './onnx-graph.ts';
import { concat, transposeConcat } from './weights.ts';

const MS = 'com.microsoft';

/** Block graph I/O: x (B, T, H) f32 and lengths (B) int32 in; y (B, T, H) out. */
export const BLOCK_IO = { x: 'x', lengths: 'lengths', y: 'y' } as const;

type Read = (name: string) => Float32Array;

/** act(x + bias); bias may be absent (m3BERT's gate). */
function activation(g: GraphBuilder, x: string, bias: string | null, act: Activation): string {
  switch (act) {
    case 'gelu':
      return bias ? g.op('BiasGelu', [x, bias], {}, MS) : g.op('Gelu', [x], {}, MS);
    case 'gelu_tanh':
      return g.op('FastGelu', bias ? [x, bias] : [x], {}, MS);
    case 'relu':
      return g.op('Relu', [bias ? g.op('Add', [x, bias]) : x]);
    case 'silu': {
      const v = bias ? g.op('Add', [x, bias]) : x;
      return g.op('Mul', [v, g.op('Sigmoid', [v])]);
    }
  }
}

function blockInputs(g: GraphBuilder, H: number): { x: string; lengths: string } {
  const x = g.input(BLOCK_IO.x, FLOAT, ['B', 'T', H]); // (B, T, H)
  const lengths = g.input(BLOCK_IO.lengths, INT32, ['B']); // (B) real tokens per right-padded row
  g.output(BLOCK_IO.y, FLOAT, ['B', 'T', H]);
  return { x, lengths };
}

/** Post-LN BERT / XLM-R block i:  h = LN(x + O·attn(x) + b_O);  y = LN(h + W2·act(W1·h + b1) + b2). */
export function bertBlockGraph(cfg: EncoderConfig, read: Read, i: number): Uint8Array {
  const H = cfg.hidden_size;
  const I = cfg.intermediate_size;
  const p = `encoder.layer.${i}`;
  const g = new GraphBuilder(`${cfg.family} block ${i}`);
  const { x, lengths } = blockInputs(g, H);
  const qkv = ['query', 'key', 'value'].map((n) => `${p}.attention.self.${n}`);
  const wqkv = g.weight(
    'qkv.weight',
    transposeConcat(
      qkv.map((n) => read(`${n}.weight`)),
      H,
    ),
    [H, 3 * H],
  ); // (H, 3H)
  const bqkv = g.weight('qkv.bias', concat(qkv.map((n) => read(`${n}.bias`))), [3 * H]);
  const ctx = g.op('Attention', [x, wqkv, bqkv, lengths], { num_heads: cfg.num_attention_heads }, MS); // (B, T, H)
  const o = g.op('MatMul', [ctx, g.weight('o.weight', transposeConcat([read(`${p}.attention.output.dense.weight`)], H), [H, H])]);
  const ln1 = `${p}.attention.output.LayerNorm`;
  const h = g.op('SkipLayerNormalization', [o, x, g.weight('ln1.weight', read(`${ln1}.weight`), [H]), g.weight('ln1.bias', read(`${ln1}.bias`), [H]), g.weight('o.bias', read(`${p}.attention.output.dense.bias`), [H])], { epsilon: cfg.norm_eps }, MS);
  const f1 = g.op('MatMul', [h, g.weight('ffn1.weight', transposeConcat([read(`${p}.intermediate.dense.weight`)], H), [H, I])]); // (B, T, I)
  const a = activation(g, f1, g.weight('ffn1.bias', read(`${p}.intermediate.dense.bias`), [I]), cfg.hidden_act);
  const f2 = g.op('MatMul', [a, g.weight('ffn2.weight', transposeConcat([read(`${p}.output.dense.weight`)], I), [I, H])]);
  const ln2 = `${p}.output.LayerNorm`;
  g.node('SkipLayerNormalization', [f2, h, g.weight('ln2.weight', read(`${ln2}.weight`), [H]), g.weight('ln2.bias', read(`${ln2}.bias`), [H]), g.weight('ffn2.bias', read(`${p}.output.dense.bias`), [H])], {
    attrs: { epsilon: cfg.norm_eps },
    domain: MS,
    outputs: [BLOCK_IO.y],
  });
  return g.toBytes();
}

/**
 * m3BERT's pre-norm bidirectional Llama block i (XMUDeepLIT/m3bert ModifiedLlamaDecoderLayer):
 *   h = x + O·attn(RMS(x));  y = h + down(act(gate(RMS(h))) * up(RMS(h))).  No biases (Attention gets zeros).
 */
export function llamaBlockGraph(cfg: EncoderConfig, read: Read, i: number): Uint8Array {
  const H = cfg.hidden_size;
  const I = cfg.intermediate_size;
  const p = `layers.${i}`;
  const g = new GraphBuilder(`m3bert block ${i}`);
  const { x, lengths } = blockInputs(g, H);
  const xn = g.op('SimplifiedLayerNormalization', [x, g.weight('input_layernorm.weight', read(`${p}.input_layernorm.weight`), [H])], { axis: -1, epsilon: cfg.norm_eps });
  const wqkv = g.weight(
    'qkv.weight',
    transposeConcat(
      ['q', 'k', 'v'].map((n) => read(`${p}.self_attn.${n}_proj.weight`)),
      H,
    ),
    [H, 3 * H],
  );
  const ctx = g.op('Attention', [xn, wqkv, g.weight('qkv.bias', new Float32Array(3 * H), [3 * H]), lengths], { num_heads: cfg.num_attention_heads }, MS);
  const o = g.op('MatMul', [ctx, g.weight('o.weight', transposeConcat([read(`${p}.self_attn.o_proj.weight`)], H), [H, H])]);
  // Outputs: RMS(o + x) and, fourth, the sum h = o + x itself (the residual for the MLP).
  const [hn, , , h] = g.node('SkipSimplifiedLayerNormalization', [o, x, g.weight('post_attention_layernorm.weight', read(`${p}.post_attention_layernorm.weight`), [H])], { attrs: { epsilon: cfg.norm_eps }, domain: MS, outputs: ['hn', '', '', 'h'] });
  const gu = g.op('MatMul', [hn, g.weight('gate_up.weight', transposeConcat([read(`${p}.mlp.gate_proj.weight`), read(`${p}.mlp.up_proj.weight`)], H), [H, 2 * I])]); // (B, T, 2I)
  const [gate, up] = g.node('Split', [gu, g.ints('split', [I, I])], { attrs: { axis: -1 }, outputs: 2 });
  const a = g.op('Mul', [activation(g, gate, null, cfg.hidden_act), up]); // (B, T, I)
  const down = g.op('MatMul', [a, g.weight('down.weight', transposeConcat([read(`${p}.mlp.down_proj.weight`)], I), [I, H])]);
  g.op('Add', [down, h], undefined, undefined, BLOCK_IO.y);
  return g.toBytes();
}

/** ColBERT head graph: h (M, H) → colbert_linear(h) (M, Hc). */
export function colbertGraph(H: number, weight: Float32Array, bias: Float32Array, Hc: number): Uint8Array {
  const g = new GraphBuilder('colbert_linear');
  const h = g.input('h', FLOAT, ['M', H]);
  g.output('y', FLOAT, ['M', Hc]);
  g.op('Add', [g.op('MatMul', [h, g.weight('colbert_linear.weight', transposeConcat([weight], H), [H, Hc])]), g.weight('colbert_linear.bias', bias, [Hc])], undefined, undefined, 'y');
  return g.toBytes();
}
