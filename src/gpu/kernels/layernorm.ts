import { packUniforms, weightAccessor, weightArrayType, type KernelProgram, type KernelSchedule, type WeightDType } from '../kernel.ts';

/** Threads per workgroup; each workgroup normalises one row at a time. */
const WG = 64;
/** WebGPU's default maxComputeWorkgroupsPerDimension: rows beyond it are reached by a grid-stride loop. */
const MAX_GROUPS = 65535;

/**
 * LayerNorm over the last axis (Ba et al. 2016, "Layer Normalization"; torch.nn.LayerNorm with biased
 * variance). The post-LN residual add (BERT / XLM-R: LN(x + sublayer(x))) is fused into the matmul
 * before it (matmul.ts `residual`), so this kernel normalises its input alone:
 *
 *   μ = mean(x);  σ² = mean((x − μ)²);  y = (x − μ) / sqrt(σ² + eps) · γ + β
 *
 * x: (M, H) f32;  gamma, beta: (H) in `wDtype` storage;  y: (M, H) f32.  M, H and eps are uniforms
 * (eps is an attribute of the call but never enters the WGSL or cacheKey: BERT 1e-12, XLM-R 1e-5).
 * Bindings after the uniform block: x, gamma, beta, y (y must not alias x).
 *
 * Schedule 'workgroup' (default): one 64-thread workgroup per row (grid-stride over rows when M > 65535),
 * both moments f32 tree reductions in workgroup memory; 'registers' (CPU adapters, see KernelSchedule):
 * one invocation per row, moments summed in a loop. Either way two-pass (never E[s²] − E[s]², which
 * cancels), and on data shifted by the row's first element (the "shifted data" variance algorithm) so a
 * large common offset does not eat the f32 mantissa of μ. The row is re-read from global memory for each pass (it stays in cache).
 */
export function layernormProgram(shape: { M: number; H: number }, attrs: { wDtype: WeightDType; eps: number; schedule?: KernelSchedule }): KernelProgram {
  const { wDtype } = attrs;
  const g = weightAccessor(wDtype, 'gamma');
  const b = weightAccessor(wDtype, 'beta');
  const wt = weightArrayType(wDtype);
  // One 64-thread workgroup per row, moments by workgroup tree reductions.
  const tiledMain = /* wgsl */ `// Sum of one value per thread over the workgroup (f32 tree). Call from uniform control flow.
var<workgroup> part: array<f32, ${WG}>;
fn wg_sum(li: u32, v: f32) -> f32 {
  part[li] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { part[li] += part[li + s]; }
    workgroupBarrier();
  }
  let total = part[0];
  workgroupBarrier(); // every thread has read the total before part[] is reused
  return total;
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let H = u.H;
  let fH = f32(H);
  for (var row = wg.x; row < u.M; row += nwg.x) {
    let o = row * H;
    // Shift by s[row, 0]: the first pass's rounding is then relative to the row's spread, not its offset.
    let shift = load_s(o);
    var acc = 0.0;
    for (var i = li; i < H; i += ${WG}u) { acc += load_s(o + i) - shift; }
    let mean_d = wg_sum(li, acc) / fH; // μ − shift
    acc = 0.0;
    for (var i = li; i < H; i += ${WG}u) { let d = load_s(o + i) - shift - mean_d; acc += d * d; }
    let inv = 1.0 / sqrt(wg_sum(li, acc) / fH + u.eps); // 1 / sqrt(σ² + eps), biased σ²
    for (var i = li; i < H; i += ${WG}u) {
      y[o + i] = (load_s(o + i) - shift - mean_d) * inv * load_gamma(i) + load_beta(i);
    }
  }
}`;
  // 'registers' (CPU adapters, see KernelSchedule): one invocation per row, moments summed in a loop.
  const rowsMain = /* wgsl */ `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let H = u.H;
  let fH = f32(H);
  for (var row = gid.x; row < u.M; row += nwg.x * ${WG}u) {
    let o = row * H;
    let shift = load_s(o);
    var acc = 0.0;
    for (var i = 0u; i < H; i++) { acc += load_s(o + i) - shift; }
    let mean_d = acc / fH; // μ − shift
    acc = 0.0;
    for (var i = 0u; i < H; i++) { let d = load_s(o + i) - shift - mean_d; acc += d * d; }
    let inv = 1.0 / sqrt(acc / fH + u.eps);
    for (var i = 0u; i < H; i++) {
      y[o + i] = (load_s(o + i) - shift - mean_d) * inv * load_gamma(i) + load_beta(i);
    }
  }
}`;
  return {
    name: 'layernorm',
    cacheKey: `layernorm/${attrs.schedule ?? 'workgroup'}/${wDtype}`,
    bindings: ['read', 'read', 'read', 'read_write'],
    uniforms: packUniforms([{ u32: shape.M }, { u32: shape.H }, { f32: attrs.eps }]),
    dispatch: [Math.max(1, Math.min(attrs.schedule === 'registers' ? Math.ceil(shape.M / WG) : shape.M, MAX_GROUPS)), 1, 1],
    wgsl: /* wgsl */ `${g.enable}
struct U { M: u32, H: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // (M, H)
@group(0) @binding(2) var<storage, read> gamma: ${wt};        // (H)
@group(0) @binding(3) var<storage, read> beta: ${wt};         // (H)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;   // (M, H)
${g.decl}
${b.decl}
// Element j of the flattened (M, H) input.
fn load_s(j: u32) -> f32 { return x[j]; }

${attrs.schedule === 'registers' ? rowsMain : tiledMain}`,
  };
}
