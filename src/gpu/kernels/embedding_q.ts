import type { QuantBits } from '../../model/quant.ts';
import { packUniforms, weightAccessor, weightArrayType, type KernelProgram, type WeightDType } from '../kernel.ts';
import { quantBindingCount, quantMatrixWgsl } from '../quant-wgsl.ts';

const WG = 64;
const MAX_GROUPS = 65535;

/**
 * embedding.ts with a quantised word table (issue #18; src/model/QUANT.md): the gathered row is dequantised
 * in the shader, element by element, then the float position (and token-type) rows are added in
 * embedding.ts's order:
 *
 *   y[m, :] = deq(word)[ids[m], :] + pos[posIds[m], :] (+ type[0, :] when tokenType)
 *
 * ids, posIds: (M) u32; word: (word_rows, H) int8 or q4 in quant-wgsl.ts's bindings (the table, or its first
 * row chunk: ids past it contribute 0, gatherAddQProgram adds the other chunks); pos: (P, H), type: (TV, H)
 * in `pDtype` storage; y: (M, H) f32. Bindings after the uniform block: ids, posIds, word (2 or 3), pos,
 * [type], y. M, H and word_rows are uniforms; ids are engine-validated, as in embedding.ts.
 */
export function embeddingQProgram(shape: { M: number; H: number; wordRows: number }, attrs: { bits: QuantBits; pDtype: WeightDType; tokenType: boolean }): KernelProgram {
  const { bits, pDtype, tokenType } = attrs;
  const nw = quantBindingCount(bits);
  const pos = weightAccessor(pDtype, 'pos');
  const type = weightAccessor(pDtype, 'type_');
  const pb = 3 + nw;
  const yb = pb + (tokenType ? 2 : 1);
  return {
    name: 'embedding_q',
    cacheKey: `embedding_q/q${bits}/${pDtype}/${tokenType ? 'type' : 'notype'}`,
    bindings: [...Array.from({ length: yb - 1 }, () => 'read' as const), 'read_write'],
    uniforms: packUniforms([{ u32: shape.M }, { u32: shape.H }, { u32: shape.wordRows }]),
    dispatch: [Math.max(1, Math.min(shape.M, MAX_GROUPS)), 1, 1],
    wgsl: /* wgsl */ `${pos.enable}
struct U { M: u32, H: u32, word_rows: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> ids: array<u32>;       // (M) token ids, < V (engine-validated)
@group(0) @binding(2) var<storage, read> pos_ids: array<u32>;   // (M) position ids, < P
${quantMatrixWgsl('word', bits, 3, 'u.H')}
@group(0) @binding(${pb}) var<storage, read> pos: ${weightArrayType(pDtype)};   // (P, H)
${tokenType ? `@group(0) @binding(${pb + 1}) var<storage, read> type_: ${weightArrayType(pDtype)};   // (TV, H), row 0 only` : ''}
@group(0) @binding(${yb}) var<storage, read_write> y: array<f32>;  // (M, H)
${pos.decl}
${tokenType ? type.decl : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let H = u.H;
  for (var row = wg.x; row < u.M; row += nwg.x) {
    let id = ids[row];
    let in_chunk = id < u.word_rows;
    let wid = select(0u, id, in_chunk);
    let po = pos_ids[row] * H;
    for (var i = li; i < H; i += ${WG}u) {
      let w = select(0.0, word_elem(wid, i), in_chunk);
      y[row * H + i] = w + load_pos(po + i)${tokenType ? ' + load_type_(i)' : ''};
    }
  }
}`,
  };
}

/**
 * gather_add.ts for a quantised table chunk: y[m, :] += deq(table)[ids[m] − row0, :] for the ids in
 * [row0, row0 + rows). Bindings after the uniform block: ids, table (2 or 3, quant-wgsl.ts), y.
 */
export function gatherAddQProgram(shape: { M: number; H: number; row0: number; rows: number }, attrs: { bits: QuantBits }): KernelProgram {
  const nw = quantBindingCount(attrs.bits);
  return {
    name: 'gather_add_q',
    cacheKey: `gather_add_q/q${attrs.bits}`,
    bindings: [...Array.from({ length: 1 + nw }, () => 'read' as const), 'read_write'],
    uniforms: packUniforms([{ u32: shape.M }, { u32: shape.H }, { u32: shape.row0 }, { u32: shape.rows }]),
    dispatch: [Math.max(1, Math.min(shape.M, MAX_GROUPS)), 1, 1],
    wgsl: /* wgsl */ `
struct U { M: u32, H: u32, row0: u32, rows: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> ids: array<u32>;                 // (M)
${quantMatrixWgsl('table', attrs.bits, 2, 'u.H')}
@group(0) @binding(${2 + nw}) var<storage, read_write> y: array<f32>;            // (M, H)

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  for (var row = wg.x; row < u.M; row += nwg.x) {
    let id = ids[row];
    if (id < u.row0 || id >= u.row0 + u.rows) { continue; }
    for (var i = li; i < u.H; i += ${WG}u) { y[row * u.H + i] += table_elem(id - u.row0, i); }
  }
}`,
  };
}
