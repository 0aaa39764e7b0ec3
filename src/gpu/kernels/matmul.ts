import { ceilDiv, packUniforms, weightAccessor, weightArrayType, type KernelProgram, type KernelSchedule, type WeightDType } from '../kernel.ts';

export type MatmulActivation = 'none' | 'gelu' | 'gelu_tanh' | 'silu' | 'relu';

export interface MatmulShape {
  /** Rows of x and y (batch × tokens): a uniform, never in the WGSL. */
  M: number;
  /** Output features (rows of W). */
  N: number;
  /** Input features (columns of x and W). */
  K: number;
}

export interface MatmulAttrs {
  wDtype: WeightDType;
  bias: boolean;
  activation: MatmulActivation;
  /** Adds r AFTER the activation (post-attention and FFN-output residuals). */
  residual: boolean;
  /**
   * Default 'workgroup' (see KernelSchedule): 64 × 64 tiles of x and W through workgroup memory, or
   * 'registers': 8 rows × 4 columns of y per invocation, x and W rows read straight from storage
   * (2–3× faster than 'workgroup' on SwiftShader at the encoder's shapes).
   */
  schedule?: KernelSchedule;
}

// Tiling: a workgroup of WG×WG invocations computes a TILE×TILE block of y; each invocation a
// BLOCK×BLOCK register block of contiguous rows and columns. K advances TILE_K columns at a time
// through workgroup memory, each invocation loading one quad (4 consecutive K elements) of x and one of W:
// TILE·TILE_K/4 = WG². (TILE_K = 32 ran no faster on SwiftShader and took 3× longer to compile there.)
const WG = 16;
const BLOCK = 4; // one vec4 accumulator per row
const TILE = WG * BLOCK; // 64
const TILE_K = 16;
const QUADS_PER_ROW = TILE_K / 4;
// 'registers' schedule: a REG_WG×REG_WG workgroup; each invocation REG_ROWS rows × 4 columns of y
// (8 × 4 beat 4 × 4 and 2 × 4 on SwiftShader at M = 48..512, N = 384..1536, K = 384..1536).
const REG_WG = 8;
const REG_ROWS = 8;

/** Widest vector (4, 2 or 1 elements) that tiles every row of K elements, so vector loads stay aligned. */
export function matmulVectorWidth(K: number): 4 | 2 | 1 {
  return K % 4 === 0 ? 4 : K % 2 === 0 ? 2 : 1;
}

/**
 * WGSL storage element holding `vw` consecutive K elements, the conversion of one to vecN<f32>, and any
 * helper function that conversion needs.
 */
function vectorStorage(dtype: WeightDType, vw: 4 | 2): { elem: string; toF32: (e: string) => string; decl: string } {
  switch (dtype) {
    case 'f32':
      return { elem: `vec${vw}f`, toF32: (e) => e, decl: '' };
    case 'f16':
      return { elem: `vec${vw}<f16>`, toF32: (e) => `vec${vw}f(${e})`, decl: '' };
    case 'f16x2': // a u32 holds elements 2j (low half) and 2j + 1: rows start on a u32 boundary when K is even
      return vw === 4
        ? {
            elem: 'vec2<u32>',
            toF32: (e) => `unpack_f16x4(${e})`,
            decl: 'fn unpack_f16x4(p: vec2<u32>) -> vec4f { return vec4f(unpack2x16float(p.x), unpack2x16float(p.y)); }',
          }
        : { elem: 'u32', toF32: (e) => `unpack2x16float(${e})`, decl: '' };
  }
}

/**
 * WGSL for `name` (a (rows, K) matrix in `dtype` storage) and `fn load_<name>4(row, k) -> vec4f`:
 * elements k..k+3 of that row, with zeros past the ragged M/N/K edges (k is a multiple of 4).
 */
function quadLoader(name: string, binding: number, dtype: WeightDType, vw: 4 | 2 | 1, rows: string): string {
  if (vw === 1) {
    // Odd K: rows start at odd element offsets, so read element by element (f16x2 pairs may straddle rows).
    const acc = weightAccessor(dtype, name);
    return `@group(0) @binding(${binding}) var<storage, read> ${name}: ${weightArrayType(dtype)};
${acc.decl}
fn load_${name}4(row: u32, k: u32) -> vec4f {
  var v = vec4f(0.0);
  if (row >= ${rows}) { return v; }
  for (var j = 0u; j < 4u; j++) {
    if (k + j < u.K) { v[j] = load_${name}(row * u.K + k + j); }
  }
  return v;
}`;
  }
  const s = vectorStorage(dtype, vw);
  // vec2: the second pair is past the row's end when k + 2 == K; that read is discarded (and, like every
  // access in WebGPU, bounds-checked).
  const body = vw === 4 ? `return ${s.toF32(`${name}[i]`)};` : `return vec4f(${s.toF32(`${name}[i]`)}, select(vec2f(0.0), ${s.toF32(`${name}[i + 1u]`)}, k + 2u < u.K));`;
  return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<${s.elem}>;${s.decl ? `\n${s.decl}` : ''}
fn load_${name}4(row: u32, k: u32) -> vec4f {
  if (row >= ${rows} || k >= u.K) { return vec4f(0.0); }
  let i = (row * u.K + k) / ${vw}u;
  ${body}
}`;
}

/**
 * float32 erf for GELU (WGSL has none). |x| < 0.5: Maclaurin series to x¹¹ (truncation < 2e-8, relative);
 * otherwise erfc by the Chebyshev fit of Numerical Recipes (Press et al., 2nd ed. §6.2 `erfcc`,
 * fractional error < 1.2e-7). Max |error| over [-6, 6], emulated in f32, is 1.9e-7 (at |x| ≈ 0.5),
 * i.e. GELU(v) is off by at most 0.5·|v|·1.9e-7, plus the platform's exp error.
 */
const ERF = /* wgsl */ `
fn erf_f32(x: f32) -> f32 {
  let z = abs(x);
  if (z < 0.5) {
    let x2 = x * x;
    // 2/√π Σ (-1)ⁿ x²ⁿ⁺¹ / (n! (2n+1)), n = 0..5
    return x * (1.1283791671 + x2 * (-0.3761263890 + x2 * (0.1128379167 + x2 * (-0.0268661706 + x2 * (0.0052239776 + x2 * -0.0008548327)))));
  }
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let erfc = t * exp(p - z * z);
  return select(erfc - 1.0, 1.0 - erfc, x >= 0.0);
}`;

/**
 * WGSL expression silu(v) = v·σ(v) (SiLU / swish, Elfwing et al. 2018) for v of WGSL type `type` (f32 or a
 * vector). exp's argument is clamped so it stays finite: for v < -80, |silu(v)| < 2e-33 either way.
 */
export function wgslSilu(v: string, type = 'f32'): string {
  return `${v} / (1.0 + exp(-max(${v}, ${type}(-80.0))))`;
}

/** Activations in f32, matching src/reference/ops.ts; arguments of exp/tanh are clamped so no inf reaches them. */
const ACTIVATION_WGSL: Record<MatmulActivation, { fns: string; apply: (v: string) => string }> = {
  none: { fns: '', apply: (v) => v },
  // BERT "gelu": 0.5·v·(1 + erf(v/√2)) (Hendrycks & Gimpel 2016, eq. 1).
  gelu: { fns: ERF, apply: (v) => `0.5 * ${v} * (1.0 + erf_f32(${v} * 0.70710678118654752))` },
  // "gelu_new" / "gelu_pytorch_tanh": 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))) (Hendrycks & Gimpel 2016, §2).
  // tanh(±10) is ±1 in f32, so clamping changes nothing but keeps exp-based tanh lowerings finite.
  gelu_tanh: { fns: '', apply: (v) => `0.5 * ${v} * (1.0 + tanh(clamp(0.7978845608028654 * (${v} + 0.044715 * ${v} * ${v} * ${v}), -10.0, 10.0)))` },
  silu: { fns: '', apply: (v) => wgslSilu(v) },
  relu: { fns: '', apply: (v) => `max(${v}, 0.0)` },
};

/**
 * Where a matmul reads W from: its storage bindings and the WGSL that turns them into f32 quads. The float
 * dtypes are one source (floatWeights); the quantised kernels (matmul_q8.ts, matmul_q4.ts) are others, so
 * both schedules and the fused epilogue stay one generator.
 */
export interface MatmulWeights {
  /** Part of the cache key: distinct per distinct WGSL. */
  key: string;
  /** `enable` directives the WGSL needs. */
  enable: string;
  /** Storage bindings (all 'read') W takes, from binding 2 on. */
  bindings: number;
  /** Declares those bindings from `first` on and `fn load_W4(row: u32, k: u32) -> vec4f`: W[row][k .. k+3], zeros past N or K (k % 4 == 0). */
  decl(first: number): string;
  /**
   * The 'registers' schedule's unchecked reads when K % 4 == 0: `setup(j, row)` is a statement run once for
   * output column j (row already clamped below N), `load(j)` the vec4f expression for its quad at `k` / `q = k / 4`.
   */
  direct: { setup: (j: number, row: string) => string; load: (j: number) => string };
  /** WGSL array type and accessor (`load_b`) of the bias. */
  bias: { type: string; decl: string };
}

/** W in a float storage dtype (f32, native f16, or f16 pairs in u32), read as vec4/vec2/scalar by K (matmulVectorWidth). */
function floatWeights(dtype: WeightDType, K: number): MatmulWeights {
  const vw = matmulVectorWidth(K);
  const toF32 = vw === 4 ? vectorStorage(dtype, 4).toF32 : (e: string) => e;
  return {
    key: `${dtype}/v${vw}`,
    enable: dtype === 'f16' ? 'enable f16;' : '',
    bindings: 1,
    decl: (first) => quadLoader('W', first, dtype, vw, 'u.N'),
    direct: { setup: (j, row) => `let wr${j} = ${row} * K4;`, load: (j) => toF32(`W[wr${j} + q]`) },
    bias: { type: weightArrayType(dtype), decl: weightAccessor(dtype, 'b').decl },
  };
}

/**
 * y = act(x · Wᵀ + b) (+ r): the encoder's linear layers (QKV as one N = 3H matmul over concatenated
 * weights, attention output, FFN up/down), with bias, activation and residual fused into the store.
 *
 * Bindings (after the uniform block at 0), in order:
 *   x: (M, K) f32 · W: (N, K) in `wDtype` (PyTorch's (out, in) layout) · [b: (N) in `wDtype`, if bias]
 *   · [r: (M, N) f32, if residual] · y: (M, N) f32.
 * Accumulation is f32 whatever the weights' storage. Loads are vec4/vec2/scalar by K's divisibility
 * (see matmulVectorWidth; a cacheKey attribute, fine because K is a model constant), M and N edges are
 * bounds-checked, and M, N, K all travel in the uniform block.
 */
export function matmulProgram(shape: MatmulShape, attrs: MatmulAttrs): KernelProgram {
  const { wDtype, ...rest } = attrs;
  return matmulWithWeights('matmul', shape, rest, floatWeights(wDtype, shape.K));
}

/**
 * The matmul generator over any weight source (matmulProgram's contract, with W taking `weights.bindings`
 * bindings and the bias in `weights.bias.type`). `name` prefixes the cache key.
 */
export function matmulWithWeights(name: string, shape: MatmulShape, attrs: Omit<MatmulAttrs, 'wDtype'>, weights: MatmulWeights): KernelProgram {
  const { bias, activation, residual } = attrs;
  const vw = matmulVectorWidth(shape.K);
  const bindings: KernelProgram['bindings'] = ['read', ...Array.from({ length: weights.bindings }, () => 'read' as const)];
  const bBinding = bias ? bindings.push('read') : 0;
  const rBinding = residual ? bindings.push('read') : 0;
  const yBinding = bindings.push('read_write');
  const act = ACTIVATION_WGSL[activation];
  const schedule = attrs.schedule ?? 'workgroup';
  const block = Array.from({ length: BLOCK }, (_, i) => i);
  const regRows = Array.from({ length: REG_ROWS }, (_, i) => i);
  const lane = ['x', 'y', 'z', 'w'];
  // Both schedules end alike: acc<i> holds y[m0 + i][n0 .. n0 + 3]; store what lies inside M × N.
  const storeRows = (rows: number[]) => rows.map((i) => `  if (m0 + ${i}u < u.M) {\n${block.map((j) => `    if (n0 + ${j}u < u.N) { store(m0 + ${i}u, n0 + ${j}u, acc${i}.${lane[j]}); }`).join('\n')}\n  }`).join('\n');

  const workgroupMain = /* wgsl */ `// Tiles transposed to k-major: xs[k][m / 4] holds x rows m..m+3 at column k, ws[k][n / 4] likewise for W.
var<workgroup> xs: array<vec4f, ${(TILE_K * TILE) / 4}>;
var<workgroup> ws: array<vec4f, ${(TILE_K * TILE) / 4}>;

@compute @workgroup_size(${WG}, ${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * ${TILE}u; // first row of y (and x) in this tile
  let col0 = wg.x * ${TILE}u; // first column of y (= row of W)
  let tr = li / ${QUADS_PER_ROW}u; // the tile row this invocation loads (of x and of W)
  let kq = (li % ${QUADS_PER_ROW}u) * 4u; // and its first of 4 columns
${block.map((i) => `  var acc${i} = vec4f(0.0); // y[m0 + ${i}][n0 .. n0 + 3]`).join('\n')}
  for (var k0 = 0u; k0 < u.K; k0 += ${TILE_K}u) {
    let xv = load_x4(row0 + tr, k0 + kq);
    let wv = load_W4(col0 + tr, k0 + kq);
${block.map((j) => `    xs[(kq + ${j}u) * ${TILE / 4}u + tr / 4u][tr % 4u] = xv.${lane[j]};\n    ws[(kq + ${j}u) * ${TILE / 4}u + tr / 4u][tr % 4u] = wv.${lane[j]};`).join('\n')}
    workgroupBarrier();
    for (var k = 0u; k < ${TILE_K}u; k++) {
      let a = xs[k * ${TILE / 4}u + lid.y]; // x[m0 .. m0 + 3][k0 + k]
      let w = ws[k * ${TILE / 4}u + lid.x]; // W[n0 .. n0 + 3][k0 + k]
${block.map((i) => `      acc${i} += a.${lane[i]} * w;`).join('\n')}
    }
    workgroupBarrier();
  }
  let m0 = row0 + lid.y * ${BLOCK}u;
  let n0 = col0 + lid.x * ${BLOCK}u;
${storeRows(block)}
}`;

  // y[m0 .. m0 + REG_ROWS - 1][n0 .. n0 + 3], K four elements at a time straight from storage. With vec4
  // rows (K % 4 == 0) the loads skip load_*4's edge checks: rows past M or N are clamped to the last one
  // (computed, never stored) and k + 3 < K always holds; other K fall back to the checked loaders.
  const direct = vw === 4;
  const loadW = (j: number) => (direct ? weights.direct.load(j) : `load_W4(n0 + ${j}u, k)`);
  const loadX = (i: number) => (direct ? `x[xr${i} + q]` : `load_x4(m0 + ${i}u, k)`);
  const registersMain = /* wgsl */ `
@compute @workgroup_size(${REG_WG}, ${REG_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n0 = gid.x * 4u;
  let m0 = gid.y * ${REG_ROWS}u;
${
  direct
    ? `  let K4 = u.K / 4u;
${block.map((j) => `  ${weights.direct.setup(j, `min(n0 + ${j}u, u.N - 1u)`)}`).join('\n')}
${regRows.map((i) => `  let xr${i} = min(m0 + ${i}u, u.M - 1u) * K4;`).join('\n')}`
    : ''
}
${regRows.map((i) => `  var acc${i} = vec4f(0.0); // y[m0 + ${i}][n0 .. n0 + 3]`).join('\n')}
  for (var k = 0u; k < u.K; k += 4u) {
${direct ? '    let q = k / 4u;' : ''}
${block.map((j) => `    let w${j} = ${loadW(j)};`).join('\n')}
${regRows.map((i) => `    { let a = ${loadX(i)}; acc${i} += vec4f(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3)); }`).join('\n')}
  }
${storeRows(regRows)}
}`;

  const wgsl = /* wgsl */ `${weights.enable}
struct U { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> u: U;
${quadLoader('x', 1, 'f32', vw, 'u.M')}
${weights.decl(2)}
${bias ? `@group(0) @binding(${bBinding}) var<storage, read> b: ${weights.bias.type};\n${weights.bias.decl}` : ''}
${residual ? `@group(0) @binding(${rBinding}) var<storage, read> r: array<f32>;` : ''}
@group(0) @binding(${yBinding}) var<storage, read_write> y: array<f32>;
${act.fns}

// The fused epilogue: bias, activation, residual.
fn store(m: u32, n: u32, acc: f32) {
  let v = acc${bias ? ' + load_b(n)' : ''};
  y[m * u.N + n] = ${act.apply('v')}${residual ? ' + r[m * u.N + n]' : ''};
}

${schedule === 'registers' ? registersMain : workgroupMain}`;

  return {
    name,
    cacheKey: `${name}/${schedule}/${weights.key}/${bias ? 'bias' : 'nobias'}/${activation}/${residual ? 'res' : 'nores'}`,
    wgsl,
    bindings,
    uniforms: packUniforms([{ u32: shape.M }, { u32: shape.N }, { u32: shape.K }]),
    dispatch: schedule === 'registers' ? [ceilDiv(shape.N, 4 * REG_WG), ceilDiv(shape.M, REG_ROWS * REG_WG), 1] : [ceilDiv(shape.N, TILE), ceilDiv(shape.M, TILE), 1],
  };
}
