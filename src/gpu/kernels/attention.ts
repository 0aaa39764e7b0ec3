import { ceilDiv, packUniforms, type KernelProgram, type KernelSchedule } from '../kernel.ts';

/**
 * Bidirectional multi-head self-attention with a key padding mask, tiled flash-style.
 *
 *   out[b, t, h·d : (h+1)·d] = softmax_j( Q_h[t] · K_h[j]ᵀ / √d + mask[b, j] ) · V_h
 *
 * (scaled dot-product attention, Vaswani et al. 2017, eq. 1), computed with the online softmax
 * (Milakov & Gimelshein 2018): the scores of each key tile update a running max m, a running
 * denominator l and an unnormalised output accumulator, rescaled by exp(m_old − m_new) whenever the
 * max grows, so no T×T score matrix is ever stored (FlashAttention's tiling, Dao et al. 2022).
 * Memory is O(T·H) per sequence; the kernel needs no scratch buffer.
 *
 * Tensors (row-major, f32):
 *   qkv:     (B, T, 3H)  [Q | K | V] per token, the output of one fused QKV matmul:
 *                        Q columns [0, H), K [H, 2H), V [2H, 3H); head h uses columns h·d .. (h+1)·d of each.
 *   lengths: (B) u32     real tokens per sequence (right padding); keys j ≥ lengths[b] are masked out.
 *                        Values above T are clamped to T.
 *   out:     (B, T, H)   heads re-interleaved into H. Padded query rows (t ≥ lengths[b]) are written as
 *                        exact zeros (never NaN), and a sequence of length 0 yields all zeros.
 *
 * Mapping: one workgroup per (query tile of BQ = 32 rows, head, batch) = dispatch (⌈T/32⌉, heads, B), so
 * T up to 2 097 120 stays within maxComputeWorkgroupsPerDimension (65535). 128 invocations: LANES = 4
 * invocations per query row, each holding the strided dims c ≡ lane (mod 4) of its pre-scaled q row and
 * of its output accumulator in registers (MAX_D / 4 = 32 floats each). Per key tile of BK = 16 keys:
 *   1. stage K tile (BK, d) in workgroup memory;           2. each lane writes partial dot products;
 *   3. stage V tile (BK, d) in the same workgroup array;   4. each lane sums the 4 partials of its row,
 *      updates m, l (replicated in the 4 lanes, no extra barrier) and accumulates p·V for its dims.
 * Key tiles at or past lengths[b] are never loaded (the loop stops at ⌈len/BK⌉ and the last tile is cut
 * to len), and query tiles entirely in the padding just write zeros, so padding costs no arithmetic.
 *
 * Workgroup memory: kv (BK·MAX_D f32 = 8 KiB) + partial scores (BQ·BK·LANES f32 = 8 KiB) = 16 KiB,
 * exactly WebGPU's default maxComputeWorkgroupStorageSize (16384 bytes); no higher limit is needed.
 *
 * Head dim d = H / heads is a uniform bounded by MAX_D = 128 (BERT / XLM-R / bge-m3 use 64), so every
 * model shares one pipeline; B, T, H, heads, d and 1/√d all travel in the uniform block.
 */

/** Query rows per workgroup. */
export const ATTN_BQ = 32;
/** Keys per staged K/V tile. */
export const ATTN_BK = 16;
/** Invocations sharing one query row (each owns head dims c ≡ lane mod LANES). */
const LANES = 4;
/** Largest supported head dim (compile-time bound of the workgroup and register arrays). */
export const ATTN_MAX_HEAD_DIM = 128;
const WG = ATTN_BQ * LANES; // 128 invocations
const DPL = ATTN_MAX_HEAD_DIM / LANES; // dims per lane: 32
const WG_BYTES = (ATTN_BK * ATTN_MAX_HEAD_DIM + ATTN_BQ * ATTN_BK * LANES) * 4;
const WG_LIMIT = 16384; // WebGPU default maxComputeWorkgroupStorageSize
if (WG_BYTES > WG_LIMIT) throw new Error(`attention: tiles need ${WG_BYTES} B of workgroup memory > ${WG_LIMIT}`);
const MAX_WORKGROUPS = 65535;

export interface AttentionShape {
  /** Batch size (sequences). */
  B: number;
  /** Padded sequence length. */
  T: number;
  /** Hidden size (= heads · head dim). */
  H: number;
  /** Number of attention heads. */
  heads: number;
}

function checkShape(s: AttentionShape): number {
  for (const k of ['B', 'T', 'H', 'heads'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) throw new Error(`attention: ${k} must be a positive integer, got ${s[k]}`);
  }
  if (s.H % s.heads !== 0) throw new Error(`attention: hidden size H=${s.H} is not divisible by heads=${s.heads}`);
  const d = s.H / s.heads;
  if (d > ATTN_MAX_HEAD_DIM) throw new Error(`attention: head dim ${d} (H=${s.H} / heads=${s.heads}) exceeds the kernel's maximum ${ATTN_MAX_HEAD_DIM}`);
  if (ceilDiv(s.T, ATTN_BQ) > MAX_WORKGROUPS || s.heads > MAX_WORKGROUPS || s.B > MAX_WORKGROUPS) {
    throw new Error(`attention: dispatch (${ceilDiv(s.T, ATTN_BQ)}, ${s.heads}, ${s.B}) exceeds ${MAX_WORKGROUPS} workgroups per dimension`);
  }
  if (s.B * s.T * 3 * s.H > 0xffffffff) throw new Error(`attention: B·T·3H = ${s.B * s.T * 3 * s.H} elements overflows u32 indexing`);
  return d;
}

const WGSL = /* wgsl */ `
// Flash-style bidirectional MHA (Vaswani et al. 2017; online softmax: Milakov & Gimelshein 2018;
// tiling: Dao et al. 2022). See src/gpu/kernels/attention.ts for the layout.
struct U { B: u32, T: u32, H: u32, heads: u32, d: u32, scale: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;         // (B, T, 3H)
@group(0) @binding(2) var<storage, read> lengths: array<u32>;     // (B)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;   // (B, T, H)

const BQ = ${ATTN_BQ}u;
const BK = ${ATTN_BK}u;
const LANES = ${LANES}u;
const MAX_D = ${ATTN_MAX_HEAD_DIM}u;
const DPL = ${DPL}u;
const WG = ${WG}u;
const NEG_BIG = -3.0e38;

var<workgroup> kv: array<f32, ${ATTN_BK * ATTN_MAX_HEAD_DIM}>;          // (BK, MAX_D): K tile, then V tile
var<workgroup> sp: array<f32, ${ATTN_BQ * ATTN_BK * LANES}>;            // (BQ, BK, LANES) partial q·k

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let b = wg.z;
  let h = wg.y;
  let q0 = wg.x * BQ;
  let T = u.T;
  let d = u.d;
  let row = 3u * u.H;                       // qkv row stride
  let len = min(lengths[b], T);             // uniform: read-only storage at a uniform index
  let qi = li / LANES;
  let lane = li % LANES;
  let t = q0 + qi;                          // this invocation's query row
  let ob = (b * T + t) * u.H + h * d;       // out[b, t, h·d]

  if (q0 >= len) {                          // whole query tile is padding: zeros, no work
    if (t < T) {
      for (var c = lane; c < d; c += LANES) { out[ob + c] = 0.0; }
    }
    return;
  }

  // q (pre-scaled by 1/√d) and the output accumulator, dims c = lane + LANES·i, in registers.
  var q: array<f32, DPL>;
  var acc: array<f32, DPL>;
  let qb = (b * T + t) * row + h * d;
  for (var i = 0u; i < DPL; i++) {
    let c = lane + i * LANES;
    acc[i] = 0.0;
    q[i] = 0.0;
    if (c < d && t < T) { q[i] = qkv[qb + c] * u.scale; }
  }
  var m = NEG_BIG;                          // running max of the scores
  var l = 0.0;                              // running Σ exp(s − m)

  let kb = b * T * row + u.H + h * d;       // K of token 0 of this (b, h); V is at kb + H
  let ntiles = (len + BK - 1u) / BK;        // key tiles past the length are never visited
  for (var kt = 0u; kt < ntiles; kt++) {
    let j0 = kt * BK;
    let nk = min(BK, len - j0);             // valid keys in this tile (≥ 1)
    let n = nk * d;

    // 1. K tile (nk, d) → kv
    for (var e = li; e < n; e += WG) {
      let j = e / d;
      let c = e - j * d;
      kv[j * MAX_D + c] = qkv[kb + (j0 + j) * row + c];
    }
    workgroupBarrier();

    // 2. partial scores over this lane's dims
    for (var j = 0u; j < BK; j++) {
      if (j >= nk) { break; }
      var s = 0.0;
      for (var i = 0u; i < DPL; i++) {
        let c = lane + i * LANES;
        if (c >= d) { break; }
        s += q[i] * kv[j * MAX_D + c];
      }
      sp[(qi * BK + j) * LANES + lane] = s;
    }
    workgroupBarrier();

    // 3. V tile (nk, d) → kv (everyone finished reading K above)
    for (var e = li; e < n; e += WG) {
      let j = e / d;
      let c = e - j * d;
      kv[j * MAX_D + c] = qkv[kb + u.H + (j0 + j) * row + c];
    }
    workgroupBarrier();

    // 4. online softmax update (each lane of a row computes the same m, l) and acc += p · V
    var sc: array<f32, BK>;
    var mt = m;
    for (var j = 0u; j < BK; j++) {
      if (j >= nk) { break; }
      let o = (qi * BK + j) * LANES;
      var s = 0.0;
      for (var r = 0u; r < LANES; r++) { s += sp[o + r]; }
      sc[j] = s;
      mt = max(mt, s);
    }
    let corr = exp(m - mt);                 // 0 on the first tile, ≤ 1 afterwards: never overflows
    l *= corr;
    for (var i = 0u; i < DPL; i++) { acc[i] *= corr; }
    for (var j = 0u; j < BK; j++) {
      if (j >= nk) { break; }
      let p = exp(sc[j] - mt);
      l += p;
      for (var i = 0u; i < DPL; i++) {
        let c = lane + i * LANES;
        if (c >= d) { break; }
        acc[i] += p * kv[j * MAX_D + c];
      }
    }
    m = mt;
    workgroupBarrier();                     // kv and sp are overwritten by the next tile
  }

  if (t < T) {
    let inv = select(0.0, 1.0 / l, t < len); // padded query rows → 0
    for (var i = 0u; i < DPL; i++) {
      let c = lane + i * LANES;
      if (c >= d) { break; }
      out[ob + c] = acc[i] * inv;
    }
  }
}`;

/** Query rows per workgroup of the 'registers' schedule (one invocation per row). */
const ROWS_WG = 64;
/** Keys per step of the 'registers' schedule: their scores share one rescaling of the accumulator. */
const ROWS_BK = 4;
const KEYS = Array.from({ length: ROWS_BK }, (_, k) => k);

/**
 * The 'registers' schedule, for CPU adapters (see KernelSchedule in kernel.ts for why): no workgroup
 * memory and no barriers. One invocation per (query row, head, sequence) keeps its pre-scaled q row and
 * its output accumulator as vec4s in private memory and streams K and V rows straight from storage,
 * ROWS_BK keys per online-softmax step (same recurrence as above). Needs d % 4 == 0 (vec4 rows).
 */
const WGSL_ROWS = /* wgsl */ `
// Bidirectional MHA, one query row per invocation (Vaswani et al. 2017; online softmax: Milakov &
// Gimelshein 2018). See src/gpu/kernels/attention.ts.
struct U { B: u32, T: u32, H: u32, heads: u32, d: u32, scale: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> qkv: array<vec4f>;       // (B, T, 3H) as vec4s
@group(0) @binding(2) var<storage, read> lengths: array<u32>;     // (B)
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>; // (B, T, H) as vec4s

const D4 = ${ATTN_MAX_HEAD_DIM / 4}u;
const NEG_BIG = -3.0e38;

@compute @workgroup_size(${ROWS_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let b = wg.z;
  let h = wg.y;
  let t = wg.x * ${ROWS_WG}u + li;
  let T = u.T;
  if (t >= T) { return; }
  let d4 = u.d / 4u;
  let H4 = u.H / 4u;
  let row4 = 3u * H4;                        // qkv row stride in vec4s
  let len = min(lengths[b], T);
  let ob = (b * T + t) * H4 + h * d4;        // out[b, t, h·d]
  if (t >= len) {                            // padded query row: zeros
    for (var c = 0u; c < d4; c++) { out[ob + c] = vec4f(0.0); }
    return;
  }
  var q: array<vec4f, D4>;
  var acc: array<vec4f, D4>;
  let qb = (b * T + t) * row4 + h * d4;
  for (var c = 0u; c < d4; c++) { q[c] = qkv[qb + c] * u.scale; acc[c] = vec4f(0.0); }
  var m = NEG_BIG;                           // running max of the scores
  var l = 0.0;                               // running Σ exp(s − m)
  let kb = b * T * row4 + H4 + h * d4;       // K of token 0 of this (b, h); V is H4 further
  for (var j0 = 0u; j0 < len; j0 += ${ROWS_BK}u) {
    // Scores of keys j0 .. j0 + ROWS_BK − 1; keys past len are clamped to the last one and given p = 0.
${KEYS.map((k) => `    let k${k} = kb + min(j0 + ${k}u, len - 1u) * row4;\n    var s${k} = 0.0;`).join('\n')}
    for (var c = 0u; c < d4; c++) {
      let qc = q[c];
${KEYS.map((k) => `      s${k} += dot(qc, qkv[k${k} + c]);`).join('\n')}
    }
    var mt = max(m, s0);
${KEYS.slice(1)
  .map((k) => `    mt = max(mt, select(NEG_BIG, s${k}, j0 + ${k}u < len));`)
  .join('\n')}
    let corr = exp(m - mt);                  // 0 on the first step, ≤ 1 afterwards
${KEYS.map((k) => `    let p${k} = ${k === 0 ? 'exp(s0 - mt)' : `select(0.0, exp(s${k} - mt), j0 + ${k}u < len)`};`).join('\n')}
    l = l * corr + ${KEYS.map((k) => `p${k}`).join(' + ')};
    for (var c = 0u; c < d4; c++) {
      acc[c] = acc[c] * corr${KEYS.map((k) => ` + p${k} * qkv[k${k} + H4 + c]`).join('')};
    }
    m = mt;
  }
  let inv = 1.0 / l;
  for (var c = 0u; c < d4; c++) { out[ob + c] = acc[c] * inv; }
}`;

/**
 * Program for one attention call. Bindings (after the uniform block): qkv (read), lengths (read),
 * out (read_write). Shapes go in the uniforms only; the WGSL and cacheKey are constant per schedule.
 * 'registers' (CPU adapters) runs only when the head dim is a multiple of 4; otherwise, and by
 * default, the flash-style 'workgroup' schedule runs.
 */
export function attentionProgram(shape: AttentionShape, attrs: { schedule?: KernelSchedule } = {}): KernelProgram {
  const d = checkShape(shape);
  const rows = attrs.schedule === 'registers' && d % 4 === 0;
  return {
    name: 'attention',
    cacheKey: rows ? `attention/rows-f32/wg${ROWS_WG}-bk${ROWS_BK}-dmax${ATTN_MAX_HEAD_DIM}` : `attention/flash-f32/bq${ATTN_BQ}-bk${ATTN_BK}-dmax${ATTN_MAX_HEAD_DIM}`,
    bindings: ['read', 'read', 'read_write'],
    uniforms: packUniforms([{ u32: shape.B }, { u32: shape.T }, { u32: shape.H }, { u32: shape.heads }, { u32: d }, { f32: 1 / Math.sqrt(d) }]),
    dispatch: [ceilDiv(shape.T, rows ? ROWS_WG : ATTN_BQ), shape.heads, shape.B],
    wgsl: rows ? WGSL_ROWS : WGSL,
  };
}
