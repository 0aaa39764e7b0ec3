import type { Pooling } from '../../model/config.ts';
import { ceilDiv, packUniforms, type KernelProgram } from '../kernel.ts';

/** Threads per workgroup, one hidden channel each. */
const WG = 64;

/**
 * Sentence pooling, sentence-transformers models.Pooling.forward (sentence_transformers/models/Pooling.py):
 * (B, T, H) hidden states → (B, H), with mask[b, t] = t < len_b (RIGHT padding):
 *   cls:          y[b, :] = x[b, 0, :]
 *   mean:         Σ_{t < len} x[b, t, :] / max(len, 1)
 *   mean_sqrt_len_tokens: Σ_{t < len} x[b, t, :] / sqrt(max(len, 1))
 *   weightedmean: Σ_{t < len} (t + 1)·x[b, t, :] / max(len·(len + 1)/2, 1)   (weights torch.arange(1, T + 1), masked)
 *   max:          max over the real tokens, padded positions counting as -1e9 (Pooling.py sets them to -1e9
 *                 before torch.max, so a row with padding never goes below -1e9 and an all-padding row is -1e9)
 *   lasttoken:    x[b, len − 1, :]; an all-padding row is zeros (Pooling.py clamps the index at 0, then masks)
 * sentence-transformers divides by clamp(Σ weights, min=1e-9); the weight sums are integers here, so max(·, 1)
 * gives the same result and an all-padding row (len 0) pools to zeros.
 *
 * x: (B, T, H) f32;  lengths: (B) u32, real tokens per row (clamped to T);  y: (B, H) f32.  B, T, H are
 * uniforms; the mode is in the cache key. Bindings after the uniform block: x, lengths, y.
 *
 * Dispatch (ceil(H / 64), B): one thread per (b, channel), reducing over t in f32 in token order;
 * adjacent threads read adjacent channels, so every load of a token row is coalesced.
 */
export function poolingProgram(shape: { B: number; T: number; H: number }, attrs: { mode: Pooling }): KernelProgram {
  return {
    name: 'pooling',
    cacheKey: `pooling/${attrs.mode}`,
    bindings: ['read', 'read', 'read_write'],
    uniforms: packUniforms([{ u32: shape.B }, { u32: shape.T }, { u32: shape.H }]),
    dispatch: [Math.max(1, ceilDiv(shape.H, WG)), Math.max(1, shape.B), 1],
    wgsl: /* wgsl */ `
struct U { B: u32, T: u32, H: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // (B, T, H)
@group(0) @binding(2) var<storage, read> lengths: array<u32>;  // (B)${attrs.mode === 'cls' ? ' (unused by CLS, bound for a uniform layout)' : ''}
@group(0) @binding(3) var<storage, read_write> y: array<f32>;  // (B, H)

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let b = gid.y;
  if (c >= u.H || b >= u.B) { return; }
  ${BODY[attrs.mode]}
}`,
  };
}

const SUM = (weight: string, den: string): string => `let len = min(lengths[b], u.T);
  var acc = 0.0;
  for (var t = 0u; t < len; t++) { acc += ${weight}x[(b * u.T + t) * u.H + c]; }
  y[b * u.H + c] = acc / ${den};`;

const BODY: Record<Pooling, string> = {
  cls: 'y[b * u.H + c] = x[b * u.T * u.H + c];',
  mean: SUM('', 'f32(max(len, 1u))'),
  mean_sqrt_len_tokens: SUM('', 'sqrt(f32(max(len, 1u)))'),
  weightedmean: SUM('f32(t + 1u) * ', 'f32(max(len * (len + 1u) / 2u, 1u))'),
  max: `let len = min(lengths[b], u.T);
  var m = -1e9;
  if (len > 0u) { m = x[b * u.T * u.H + c]; }
  for (var t = 1u; t < len; t++) { m = max(m, x[(b * u.T + t) * u.H + c]); }
  if (len < u.T) { m = max(m, -1e9); }
  y[b * u.H + c] = m;`,
  lasttoken: `let len = min(lengths[b], u.T);
  var v = 0.0;
  if (len > 0u) { v = x[(b * u.T + len - 1u) * u.H + c]; }
  y[b * u.H + c] = v;`,
};
