import { packUniforms, weightAccessor, weightArrayType, type KernelProgram, type WeightDType } from '../kernel.ts';

/** Threads per workgroup; each workgroup gathers one row at a time. */
const WG = 64;
/** WebGPU's default maxComputeWorkgroupsPerDimension: rows beyond it are reached by a grid-stride loop. */
const MAX_GROUPS = 65535;

/**
 * Embedding gather (Devlin et al. 2019, BERT §3.2 input representation; transformers BertEmbeddings /
 * XLMRobertaEmbeddings; m3BERT embed_tokens + pos_embeddings):
 *
 *   y[m, :] = word[ids[m], :] + pos[posIds[m], :] (+ type[0, :] when tokenType)
 *
 * ids, posIds: (M) u32, M = B·T;  word: (V, H), pos: (P, H), type: (TV, H) in `wDtype` storage;
 * y: (M, H) f32.  M and H are uniforms. Bindings after the uniform block: ids, posIds, word, pos, [type], y.
 * The sum is f32, in that order ((word + pos) + type). Only token type 0 is read: single-sentence
 * embedding never uses another segment.
 *
 * Position ids are computed on the CPU by the engine (src/engine/positions.ts): BERT / m3BERT 0..T−1;
 * RoBERTa / XLM-R as transformers' create_position_ids_from_input_ids, from `input_ids != padding_idx`
 * (not the attention mask): cumsum · mask + padding_idx, so padding and a literal `<pad>` inside a text
 * both read row padding_idx of the position table.
 * The shader validates nothing: the ENGINE must guarantee ids[m] < V and posIds[m] < P before upload
 * (WebGPU's robust buffer access would otherwise clamp or zero an out-of-range read silently, never fault).
 * The following norm (LayerNorm / RMSNorm) is a separate dispatch.
 *
 * Large vocabularies (bge-m3: 250,002 × 1024) can exceed a device's maxStorageBufferBindingSize; the
 * engine then uploads the word table in row chunks: this kernel reads ids < word_rows from the first
 * chunk (others contribute 0) and gather_add.ts adds the rows of each further chunk.
 */
export function embeddingProgram(shape: { M: number; H: number; wordRows: number }, attrs: { wDtype: WeightDType; tokenType: boolean }): KernelProgram {
  const { wDtype, tokenType } = attrs;
  const wt = weightArrayType(wDtype);
  const word = weightAccessor(wDtype, 'word');
  const pos = weightAccessor(wDtype, 'pos');
  const type = weightAccessor(wDtype, 'type_');
  const yb = tokenType ? 6 : 5;
  return {
    name: 'embedding',
    cacheKey: `embedding/${wDtype}/${tokenType ? 'type' : 'notype'}`,
    bindings: tokenType ? ['read', 'read', 'read', 'read', 'read', 'read_write'] : ['read', 'read', 'read', 'read', 'read_write'],
    uniforms: packUniforms([{ u32: shape.M }, { u32: shape.H }, { u32: shape.wordRows }]),
    dispatch: [Math.max(1, Math.min(shape.M, MAX_GROUPS)), 1, 1],
    wgsl: /* wgsl */ `${word.enable}
struct U { M: u32, H: u32, word_rows: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> ids: array<u32>;       // (M) token ids, < V (engine-validated)
@group(0) @binding(2) var<storage, read> pos_ids: array<u32>;   // (M) position ids, < P
@group(0) @binding(3) var<storage, read> word: ${wt};        // (word_rows, H): the table, or its first chunk
@group(0) @binding(4) var<storage, read> pos: ${wt};         // (P, H)
${tokenType ? `@group(0) @binding(5) var<storage, read> type_: ${wt};       // (TV, H), row 0 only` : ''}
@group(0) @binding(${yb}) var<storage, read_write> y: array<f32>;  // (M, H)
${word.decl}
${pos.decl}
${tokenType ? type.decl : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let H = u.H;
  for (var row = wg.x; row < u.M; row += nwg.x) {
    let id = ids[row];
    let in_chunk = id < u.word_rows;
    let wo = select(0u, id * H, in_chunk);
    let po = pos_ids[row] * H;
    for (var i = li; i < H; i += ${WG}u) {
      let w = select(0.0, load_word(wo + i), in_chunk);
      y[row * H + i] = w + load_pos(po + i)${tokenType ? ' + load_type_(i)' : ''};
    }
  }
}`,
  };
}
