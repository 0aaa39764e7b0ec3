/// <reference lib="webworker" />
// Dedicated worker that proves real WebGPU compute works off the main thread (no mocks).
// Exposed with comlink; the page (gpu-smoke.ts) forwards `window.__smoke()` to `probe()`.
import * as Comlink from 'comlink';

export interface SmokeParams {
  /** Element count; odd so the last workgroup is partial. */
  n: number;
  /** y[i] = a * x[i] + b  (integers keep f32 exact). */
  a: number;
  b: number;
}

export interface SmokeAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean | null;
  subgroupMinSize: number | null;
  subgroupMaxSize: number | null;
  /** Where the info came from: `adapter.info` (current) or `adapter.requestAdapterInfo()` (older). */
  source: 'info' | 'requestAdapterInfo' | 'none';
}

export interface SmokeResult {
  hasNavigatorGpu: boolean;
  isSecureContext: boolean;
  crossOriginIsolated: boolean;
  userAgent: string;
  adapterInfo: SmokeAdapterInfo;
  adapterFeatures: string[];
  deviceFeatures: string[];
  /** features.has(...) answers, to compare with the lists above. */
  has: { timestampQuery: boolean; subgroups: boolean; shaderF16: boolean };
  adapterLimits: Record<string, number>;
  deviceLimits: Record<string, number>;
  /** The saxpy-like kernel: inputs and outputs, plus the sentinel tail past n (must be untouched). */
  saxpy: { n: number; a: number; b: number; x: number[]; y: number[]; tail: number[]; sentinel: number; ms: number };
  /** Only when 'subgroups' is available: subgroupAdd(1u) per invocation and the subgroup_size builtin. */
  subgroups: { size: number; sums: number[] } | null;
  /** Only when 'timestamp-query' is available: begin/end of the saxpy pass in ns. */
  timestamps: { begin: number; end: number } | null;
  errors: string[];
}

const LIMIT_KEYS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
  'minStorageBufferOffsetAlignment',
] as const;

const WG = 64;

const SAXPY_WGSL = /* wgsl */ `
struct Params { n: u32, a: f32, b: f32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i < p.n) {
    y[i] = p.a * x[i] + p.b;
  }
}`;

const SUBGROUP_WGSL = /* wgsl */ `
enable subgroups;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(subgroup_size) sg: u32) {
  out[li] = subgroupAdd(1u);
  if (li == 0u) { out[${WG}] = sg; }
}`;

/** Deterministic integer inputs in [-1000, 1000]; the test regenerates them the same way. */
export function smokeInput(n: number): Float32Array<ArrayBuffer> {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = ((i * 37) % 2001) - 1000;
  return x;
}

function pickLimits(limits: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of LIMIT_KEYS) out[k] = Number(limits[k]);
  return out;
}

async function readAdapterInfo(adapter: GPUAdapter): Promise<SmokeAdapterInfo> {
  type LegacyAdapter = GPUAdapter & { requestAdapterInfo?: () => Promise<GPUAdapterInfo> };
  let info: Partial<GPUAdapterInfo> & Record<string, unknown> = {};
  let source: SmokeAdapterInfo['source'] = 'none';
  if ((adapter as Partial<GPUAdapter>).info) {
    info = adapter.info as unknown as typeof info;
    source = 'info';
  } else if (typeof (adapter as LegacyAdapter).requestAdapterInfo === 'function') {
    info = (await (adapter as LegacyAdapter).requestAdapterInfo!()) as unknown as typeof info;
    source = 'requestAdapterInfo';
  }
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  // isFallbackAdapter moved from GPUAdapter to GPUAdapterInfo; read whichever exists.
  const fallback = typeof info.isFallbackAdapter === 'boolean' ? info.isFallbackAdapter : typeof (adapter as { isFallbackAdapter?: unknown }).isFallbackAdapter === 'boolean' ? ((adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter as boolean) : null;
  return {
    vendor: String(info.vendor ?? ''),
    architecture: String(info.architecture ?? ''),
    device: String(info.device ?? ''),
    description: String(info.description ?? ''),
    isFallbackAdapter: fallback,
    subgroupMinSize: num(info.subgroupMinSize),
    subgroupMaxSize: num(info.subgroupMaxSize),
    source,
  };
}

async function readBack(device: GPUDevice, src: GPUBuffer, size: number): Promise<ArrayBuffer> {
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return copy;
}

async function runSaxpy(device: GPUDevice, params: SmokeParams, timestamps: boolean) {
  const { n, a, b } = params;
  const x = smokeInput(n);
  const sentinel = -12345;
  const padded = Math.ceil(n / WG) * WG + 3; // y extends past n: the guard must leave the tail alone
  const t0 = performance.now();

  const uni = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const u = new ArrayBuffer(16);
  new Uint32Array(u, 0, 1)[0] = n;
  new Float32Array(u, 4, 2).set([a, b]);
  device.queue.writeBuffer(uni, 0, u);

  const xb = device.createBuffer({ size: x.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(xb, 0, x);
  const yb = device.createBuffer({
    size: padded * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    mappedAtCreation: true,
  });
  new Float32Array(yb.getMappedRange()).fill(sentinel);
  yb.unmap();

  const module = device.createShaderModule({ code: SAXPY_WGSL });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: uni } },
      { binding: 1, resource: { buffer: xb } },
      { binding: 2, resource: { buffer: yb } },
    ],
  });

  let qs: GPUQuerySet | null = null;
  let qResolve: GPUBuffer | null = null;
  if (timestamps) {
    qs = device.createQuerySet({ type: 'timestamp', count: 2 });
    qResolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  }
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(Math.ceil(n / WG));
  pass.end();
  if (qs && qResolve) enc.resolveQuerySet(qs, 0, 2, qResolve, 0);
  device.queue.submit([enc.finish()]);

  const y = new Float32Array(await readBack(device, yb, padded * 4));
  const ms = performance.now() - t0;
  let ts: { begin: number; end: number } | null = null;
  if (qResolve) {
    const t = new BigUint64Array(await readBack(device, qResolve, 16));
    ts = { begin: Number(t[0]), end: Number(t[1]) };
  }
  for (const buf of [uni, xb, yb, qResolve]) buf?.destroy();
  qs?.destroy();
  return {
    saxpy: { n, a, b, x: Array.from(x), y: Array.from(y.subarray(0, n)), tail: Array.from(y.subarray(n)), sentinel, ms },
    timestamps: ts,
  };
}

async function runSubgroups(device: GPUDevice) {
  const size = (WG + 1) * 4;
  const out = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const module = device.createShaderModule({ code: SUBGROUP_WGSL });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([enc.finish()]);
  const r = new Uint32Array(await readBack(device, out, size));
  out.destroy();
  return { size: r[WG], sums: Array.from(r.subarray(0, WG)) };
}

async function probe(params: SmokeParams): Promise<SmokeResult> {
  const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
  const base = {
    hasNavigatorGpu: !!gpu,
    isSecureContext: self.isSecureContext,
    crossOriginIsolated: self.crossOriginIsolated,
    userAgent: self.navigator.userAgent,
  };
  if (!gpu) throw new Error('navigator.gpu is undefined in the worker');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('requestAdapter() returned null in the worker (is --enable-unsafe-webgpu set?)');
  const adapterInfo = await readAdapterInfo(adapter);
  const want: GPUFeatureName[] = (['timestamp-query', 'subgroups', 'shader-f16'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures: want,
    // Without requiredLimits the device gets the defaults (128 MiB bindings, 16 KiB workgroup memory).
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
    },
  });
  const errors: string[] = [];
  device.addEventListener('uncapturederror', (e) => errors.push(String((e as GPUUncapturedErrorEvent).error.message)));
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') errors.push(`device lost: ${info.reason} ${info.message}`);
  });

  const has = {
    timestampQuery: device.features.has('timestamp-query'),
    subgroups: device.features.has('subgroups'),
    shaderF16: device.features.has('shader-f16'),
  };
  device.pushErrorScope('validation');
  const { saxpy, timestamps } = await runSaxpy(device, params, has.timestampQuery);
  const subgroups = has.subgroups ? await runSubgroups(device) : null;
  const scopeErr = await device.popErrorScope();
  if (scopeErr) errors.push(`validation: ${scopeErr.message}`);

  const result: SmokeResult = {
    ...base,
    adapterInfo,
    adapterFeatures: Array.from(adapter.features).sort(),
    deviceFeatures: Array.from(device.features).sort(),
    has,
    adapterLimits: pickLimits(adapter.limits),
    deviceLimits: pickLimits(device.limits),
    saxpy,
    subgroups,
    timestamps,
    errors,
  };
  device.destroy();
  return result;
}

const api = { probe };
export type SmokeWorkerApi = typeof api;
Comlink.expose(api);
