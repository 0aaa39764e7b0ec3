import { packUniforms, weightAccessor, weightArrayType, type KernelProgram, type KernelSchedule, type WeightDType } from '../kernel.ts';

/** Threads per workgroup; each workgroup normalises one row at a time. */
const WG = 64;
/** WebGPU's default maxComputeWorkgroupsPerDimension: rows beyond it are reached by a grid-stride loop. */
const MAX_GROUPS = 65535;

/**
 * RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization"), as transformers' LlamaRMSNorm
 * used by m3BERT: y = x · rsqrt(mean(x²) + eps) · w, computed in f32 (Llama upcasts to f32 too).
 *
 * x: (M, H) f32;  w: (H) in `wDtype` storage;  y: (M, H) f32.  M, H, eps are uniforms.
 * Bindings after the uniform block: x, w, y (y must not alias x).
 *
 * Schedule 'workgroup' (default): one 64-thread workgroup per row (grid-stride over rows when M > 65535),
 * the sum of squares an f32 tree reduction in workgroup memory; 'registers' (CPU adapters, see
 * KernelSchedule): one invocation per row, the sum of squares in a loop.
 */
export function rmsnormProgram(shape: { M: number; H: number }, attrs: { wDtype: WeightDType; eps: number; schedule?: KernelSchedule }): KernelProgram {
  const w = weightAccessor(attrs.wDtype, 'w');
  // One 64-thread workgroup per row, the sum of squares by a workgroup tree reduction.
  const tiledMain = /* wgsl */ `var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let H = u.H;
  for (var row = wg.x; row < u.M; row += nwg.x) {
    let o = row * H;
    var ss = 0.0;
    for (var i = li; i < H; i += ${WG}u) { let v = x[o + i]; ss += v * v; }
    part[li] = ss;
    workgroupBarrier();
    for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
      if (li < s) { part[li] += part[li + s]; }
      workgroupBarrier();
    }
    let inv = inverseSqrt(part[0] / f32(H) + u.eps);
    workgroupBarrier(); // every thread has read part[0] before the next row overwrites it
    for (var i = li; i < H; i += ${WG}u) { y[o + i] = x[o + i] * inv * load_w(i); }
  }
}`;
  // 'registers' (CPU adapters, see KernelSchedule): one invocation per row, the sum of squares in a loop.
  const rowsMain = /* wgsl */ `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let H = u.H;
  for (var row = gid.x; row < u.M; row += nwg.x * ${WG}u) {
    let o = row * H;
    var ss = 0.0;
    for (var i = 0u; i < H; i++) { let v = x[o + i]; ss += v * v; }
    let inv = inverseSqrt(ss / f32(H) + u.eps);
    for (var i = 0u; i < H; i++) { y[o + i] = x[o + i] * inv * load_w(i); }
  }
}`;
  return {
    name: 'rmsnorm',
    cacheKey: `rmsnorm/${attrs.schedule ?? 'workgroup'}/${attrs.wDtype}`,
    bindings: ['read', 'read', 'read_write'],
    uniforms: packUniforms([{ u32: shape.M }, { u32: shape.H }, { f32: attrs.eps }]),
    dispatch: [Math.max(1, Math.min(attrs.schedule === 'registers' ? Math.ceil(shape.M / WG) : shape.M, MAX_GROUPS)), 1, 1],
    wgsl: /* wgsl */ `${w.enable}
struct U { M: u32, H: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // (M, H)
@group(0) @binding(2) var<storage, read> w: ${weightArrayType(attrs.wDtype)};            // (H)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;   // (M, H)
${w.decl}

${attrs.schedule === 'registers' ? rowsMain : tiledMain}`,
  };
}
