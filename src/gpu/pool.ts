/**
 * Storage buffers reused across calls, keyed by size class (powers of two from 256 B), so steady-state
 * embedding allocates nothing: a batch of a similar shape gets the buffers the previous one released.
 */
export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  /** Bytes currently allocated by the pool (in use + free). */
  allocatedBytes = 0;
  created = 0;

  constructor(private device: GPUDevice) {}

  static sizeClass(bytes: number): number {
    return Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1))));
  }

  acquire(bytes: number, label?: string): GPUBuffer {
    const size = BufferPool.sizeClass(bytes);
    const hit = this.free.get(size)?.pop();
    if (hit) return hit;
    this.created++;
    this.allocatedBytes += size;
    return this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label });
  }

  /** Bytes held by idle buffers, ready for reuse. */
  get idleBytes(): number {
    let n = 0;
    for (const list of this.free.values()) for (const b of list) n += b.size;
    return n;
  }

  release(buf: GPUBuffer): void {
    const list = this.free.get(buf.size) ?? [];
    list.push(buf);
    this.free.set(buf.size, list);
  }

  /** Frees every idle buffer; buffers in use stay (GpuEncoder.destroy calls it: the next model's shapes differ). */
  trim(): void {
    for (const list of this.free.values())
      for (const b of list) {
        this.allocatedBytes -= b.size;
        b.destroy();
      }
    this.free.clear();
  }
}
