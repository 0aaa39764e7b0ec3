/**
 * The contract every kernel generator in src/gpu/kernels/ follows (cf. onnxruntime-web's WebGPU
 * ProgramInfo): a pure function from shapes and attributes to a program. Shapes travel in the uniform
 * buffer only; `wgsl` and `cacheKey` depend on attributes alone (dtype, vector width, fused epilogue),
 * so one compiled pipeline serves every sequence length and batch size.
 */

/** Storage access of each binding after the uniform at @binding(0): 'read' = var<storage, read>. */
export type BindingAccess = 'read' | 'read_write';

export interface KernelProgram {
  /** Human name for profiles and errors, e.g. "layernorm". */
  name: string;
  /** Unique per distinct `wgsl`; never contains a shape. */
  cacheKey: string;
  wgsl: string;
  /** Storage bindings 1..n in order; binding 0 is always the uniform block. */
  bindings: BindingAccess[];
  /** The uniform block (shapes, eps, strides…), 4-byte words; padded to 16 bytes by the runtime. */
  uniforms: Uint32Array<ArrayBuffer>;
  /** Workgroup counts. */
  dispatch: [number, number, number];
}

/** Storage type of a weight tensor inside shaders. */
export type WeightDType = 'f32' | 'f16' | 'f16x2';
// 'f16'   native f16 arrays (needs the shader-f16 feature)
// 'f16x2' two f16 packed in each u32, unpacked with unpack2x16float (no shader-f16 needed, e.g. SwiftShader)

/** Packs mixed u32 / f32 / i32 scalars into a uniform block. */
export function packUniforms(values: ({ u32: number } | { f32: number } | { i32: number })[]): Uint32Array<ArrayBuffer> {
  const words = new Uint32Array(Math.ceil(values.length / 4) * 4);
  const f = new Float32Array(words.buffer);
  const i = new Int32Array(words.buffer);
  values.forEach((v, k) => {
    if ('u32' in v) words[k] = v.u32 >>> 0;
    else if ('f32' in v) f[k] = v.f32;
    else i[k] = v.i32 | 0;
  });
  return words;
}

/** ceil(a / b) for workgroup counts. */
export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/**
 * WGSL helpers to read a weight element as f32 whatever its storage dtype. `name` is the storage
 * array; for f16x2 the array is array<u32> holding element pairs (low half = even index).
 */
export function weightAccessor(dtype: WeightDType, name: string, fn = `load_${name}`): { decl: string; enable: string } {
  switch (dtype) {
    case 'f32':
      return { enable: '', decl: `fn ${fn}(i: u32) -> f32 { return ${name}[i]; }` };
    case 'f16':
      return { enable: 'enable f16;', decl: `fn ${fn}(i: u32) -> f32 { return f32(${name}[i]); }` };
    case 'f16x2':
      return { enable: '', decl: `fn ${fn}(i: u32) -> f32 { let p = unpack2x16float(${name}[i >> 1u]); return select(p.x, p.y, (i & 1u) == 1u); }` };
  }
}

/** WGSL element type of a weight storage array. */
export function weightArrayType(dtype: WeightDType): string {
  return dtype === 'f32' ? 'array<f32>' : dtype === 'f16' ? 'array<f16>' : 'array<u32>';
}

/**
 * How a kernel lays out its work, where it has a choice (matmul, attention, LayerNorm, RMSNorm); every
 * schedule computes the same result.
 *   'workgroup': tiles staged through workgroup memory between barriers: data reuse for real GPUs,
 *                whose global memory is far slower than their shared memory.
 *   'registers': no workgroup memory and no barriers; each invocation streams its rows straight from
 *                storage. For CPU adapters (SwiftShader, lavapipe): their caches already give the reuse,
 *                and a barrier there is a switch between every invocation of the workgroup.
 */
export type KernelSchedule = 'workgroup' | 'registers';
export const KERNEL_SCHEDULES: readonly KernelSchedule[] = ['workgroup', 'registers'];
/** Short label of a schedule in test-case names. */
export const scheduleTag = (s: KernelSchedule): string => (s === 'registers' ? 'regs' : 'wg');

/** The schedule for an adapter: 'registers' on CPU implementations (the fallback adapter), 'workgroup' on GPUs. */
export function scheduleFor(isFallbackAdapter: boolean): KernelSchedule {
  return isFallbackAdapter ? 'registers' : 'workgroup';
}
