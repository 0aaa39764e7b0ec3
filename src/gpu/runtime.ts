import { GpuUnavailableError } from '../errors.ts';
import type { KernelProgram } from './kernel.ts';
import { BufferPool } from './pool.ts';

/**
 * The device-side runtime: pipeline cache (compiled once per cacheKey, asynchronously), buffers,
 * uniform upload, dispatch recording and readback. Works the same in a browser worker and in Node
 * (webgpu package).
 */
export class GpuRuntime {
  private pipelines = new Map<string, GPUComputePipeline>();
  private pending = new Map<string, Promise<GPUComputePipeline>>();
  private sources = new Map<string, string>();
  /** Number of pipelines created so far (tests assert none are created after warm-up). */
  pipelinesCreated = 0;
  /** Every dispatch recorded, by kernel name (tests assert early exit really skips work). */
  dispatchCounts = new Map<string, number>();
  lost: Promise<GPUDeviceLostInfo>;
  /**
   * Uniform blocks live in 64 KiB arenas sub-allocated at the device's offset alignment: one buffer per
   * few hundred dispatches instead of one per dispatch. Arenas used by recorded work return to the free
   * list once the GPU has finished that submission.
   */
  private arena: { buf: GPUBuffer; used: number } | null = null;
  private arenasInUse: GPUBuffer[] = [];
  private freeArenas: GPUBuffer[] = [];

  readonly pool: BufferPool;

  constructor(readonly device: GPUDevice) {
    this.lost = device.lost;
    this.pool = new BufferPool(device);
  }

  get hasF16(): boolean {
    return this.device.features.has('shader-f16');
  }

  /**
   * True on a CPU implementation of WebGPU (SwiftShader, lavapipe: `isFallbackAdapter`), where kernels
   * pick schedules without workgroup memory (KernelSchedule in kernel.ts). Read from
   * GPUDevice.adapterInfo (Chromium ≥ 130, Dawn's Node bindings); false where a browser lacks it, which
   * keeps the GPU kernels: the safe choice when unsure.
   */
  get fallbackAdapter(): boolean {
    const info = (this.device as GPUDevice & { adapterInfo?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).adapterInfo;
    return info?.isFallbackAdapter === true;
  }

  private checkSource(p: KernelProgram): void {
    const known = this.sources.get(p.cacheKey);
    if (known === undefined) this.sources.set(p.cacheKey, p.wgsl);
    else if (known !== p.wgsl) throw new Error(`kernel ${p.name}: cacheKey "${p.cacheKey}" maps to two different WGSL sources (a shape leaked into the shader text?)`);
  }

  private layoutFor(p: KernelProgram): GPUPipelineLayout {
    const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } }];
    p.bindings.forEach((a, i) => entries.push({ binding: i + 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: a === 'read' ? 'read-only-storage' : 'storage' } }));
    return this.device.createPipelineLayout({ bindGroupLayouts: [this.device.createBindGroupLayout({ entries })] });
  }

  /** Compiles (once) without blocking the thread; await it during warm-up. */
  async prepare(p: KernelProgram): Promise<GPUComputePipeline> {
    this.checkSource(p);
    const hit = this.pipelines.get(p.cacheKey);
    if (hit) return hit;
    let job = this.pending.get(p.cacheKey);
    if (!job) {
      const module = this.device.createShaderModule({ code: p.wgsl, label: p.name });
      job = this.device.createComputePipelineAsync({ layout: this.layoutFor(p), compute: { module, entryPoint: 'main' }, label: p.cacheKey }).then(
        (pl) => {
          this.pipelines.set(p.cacheKey, pl);
          this.pending.delete(p.cacheKey);
          this.pipelinesCreated++;
          return pl;
        },
        async (e) => {
          this.pending.delete(p.cacheKey);
          const info = await module.getCompilationInfo();
          const msgs = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
          throw new Error(`kernel ${p.name} (${p.cacheKey}) failed to compile: ${String(e)}\n${msgs}`);
        },
      );
      this.pending.set(p.cacheKey, job);
    }
    return job;
  }

  /** A pipeline that must already be prepared: the hot path never compiles. */
  pipeline(p: KernelProgram): GPUComputePipeline {
    this.checkSource(p);
    const pl = this.pipelines.get(p.cacheKey);
    if (!pl) throw new Error(`kernel ${p.name} (${p.cacheKey}) used before prepare(): pipelines must be compiled during warm-up`);
    return pl;
  }

  createBuffer(size: number, usage: GPUBufferUsageFlags = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label?: string): GPUBuffer {
    // Storage bindings must be a multiple of 4 bytes and never empty.
    return this.device.createBuffer({ size: Math.max(16, Math.ceil(size / 16) * 16), usage, label });
  }

  upload(data: ArrayBufferView, label?: string): GPUBuffer {
    const buf = this.createBuffer(data.byteLength, undefined, label);
    this.device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    return buf;
  }

  /** Records one dispatch of `p` over `buffers` (bindings 1..n) into `pass`. */
  record(pass: GPUComputePassEncoder, p: KernelProgram, buffers: GPUBuffer[]): void {
    if (buffers.length !== p.bindings.length) throw new Error(`kernel ${p.name}: expected ${p.bindings.length} buffers, got ${buffers.length}`);
    const pipeline = this.pipeline(p);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: this.uniformSlot(p.uniforms) }, ...buffers.map((b, i) => ({ binding: i + 1, resource: { buffer: b } }))],
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...p.dispatch);
    this.dispatchCounts.set(p.name, (this.dispatchCounts.get(p.name) ?? 0) + 1);
  }

  /**
   * Per-kernel GPU timing (timestamp-query): when on, `dispatcher` gives each dispatch its own compute
   * pass with timestamp writes, and `takeProfile()` returns nanoseconds per kernel name. Off by default:
   * one pass per forward is cheaper.
   */
  profiling = false;
  private profileSlots: { name: string; set: GPUQuerySet; buf: GPUBuffer }[] = [];

  /**
   * Returns a `run(program, buffers)` that records into `enc`: one compute pass for everything, or one
   * timed pass per dispatch while profiling. Call `end()` before finishing the encoder.
   */
  dispatcher(enc: GPUCommandEncoder): { run: (p: KernelProgram, buffers: GPUBuffer[]) => void; end: () => void } {
    if (!this.profiling || !this.device.features.has('timestamp-query')) {
      const pass = enc.beginComputePass();
      return { run: (p, b) => this.record(pass, p, b), end: () => pass.end() };
    }
    const pending: { name: string; set: GPUQuerySet; buf: GPUBuffer }[] = [];
    return {
      run: (p, b) => {
        const set = this.device.createQuerySet({ type: 'timestamp', count: 2 });
        const pass = enc.beginComputePass({ timestampWrites: { querySet: set, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
        this.record(pass, p, b);
        pass.end();
        const buf = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
        enc.resolveQuerySet(set, 0, 2, buf, 0);
        pending.push({ name: p.name, set, buf });
      },
      end: () => this.profileSlots.push(...pending),
    };
  }

  /** Nanoseconds per kernel name since the last call (profiling mode), summed over dispatches. */
  async takeProfile(): Promise<Map<string, number>> {
    const slots = this.profileSlots;
    this.profileSlots = [];
    const out = new Map<string, number>();
    for (const s of slots) {
      const t = new BigUint64Array(await this.read(s.buf, 16));
      out.set(s.name, (out.get(s.name) ?? 0) + Number(t[1] - t[0]));
      s.set.destroy();
      s.buf.destroy();
    }
    return out;
  }

  /** Convenience for tests and one-off work: prepare, record and submit one program. */
  async run(p: KernelProgram, buffers: GPUBuffer[]): Promise<void> {
    await this.prepare(p);
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    this.record(pass, p, buffers);
    pass.end();
    this.submit(enc);
  }

  private uniformSlot(data: Uint32Array<ArrayBuffer>): GPUBufferBinding {
    const ARENA_BYTES = 64 * 1024;
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    if (!this.arena || this.arena.used + size > ARENA_BYTES) {
      const buf = this.freeArenas.pop() ?? this.device.createBuffer({ size: ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniform arena' });
      this.arena = { buf, used: 0 };
      this.arenasInUse.push(buf);
    }
    const offset = this.arena.used;
    this.arena.used = Math.ceil((offset + size) / align) * align;
    this.device.queue.writeBuffer(this.arena.buf, offset, data);
    return { buffer: this.arena.buf, offset, size };
  }

  /** Submits recorded work; its uniform arenas are reused once the GPU has finished with them. */
  submit(enc: GPUCommandEncoder): void {
    this.device.queue.submit([enc.finish()]);
    const done = this.arenasInUse;
    this.arenasInUse = [];
    this.arena = null;
    void this.device.queue.onSubmittedWorkDone().then(() => this.freeArenas.push(...done));
  }

  async read(buf: GPUBuffer, byteLength = buf.size): Promise<ArrayBuffer> {
    const staging = this.device.createBuffer({ size: Math.ceil(byteLength / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buf, 0, staging, 0, staging.size);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const out = staging.getMappedRange().slice(0, byteLength);
      staging.unmap();
      return out;
    } finally {
      // Also when mapAsync rejects (device lost, buffer destroyed): the staging buffer never outlives the read.
      staging.destroy();
    }
  }

  async readF32(buf: GPUBuffer, count: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buf, count * 4));
  }
}

/** Requests a device with the limits an encoder needs raised to what the adapter allows. */
export async function createDevice(adapter: GPUAdapter, opts: { f16?: boolean } = {}): Promise<GPUDevice> {
  const want: GPUFeatureName[] = ['timestamp-query', 'subgroups'];
  if (opts.f16 !== false) want.push('shader-f16');
  const requiredFeatures = want.filter((f) => adapter.features.has(f));
  const l = adapter.limits;
  try {
    return await adapter.requestDevice({
      requiredFeatures,
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      },
    });
  } catch (cause) {
    throw new GpuUnavailableError('requestDevice failed', { expected: 'a WebGPU device', received: String(cause), cause });
  }
}
