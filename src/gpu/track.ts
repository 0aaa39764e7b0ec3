/**
 * Counts a device's live buffers and bytes (created and not yet destroyed), so the service can report
 * GPU memory and the soak test can check it returns to its starting level after reloads and kills.
 */
export interface BufferTally {
  buffers: number;
  bytes: number;
}

export function trackBuffers(device: GPUDevice): BufferTally {
  const tally: BufferTally = { buffers: 0, bytes: 0 };
  const create = device.createBuffer.bind(device);
  device.createBuffer = (desc: GPUBufferDescriptor): GPUBuffer => {
    const buf = create(desc);
    tally.buffers++;
    tally.bytes += desc.size;
    const destroy = buf.destroy.bind(buf);
    let alive = true;
    buf.destroy = () => {
      if (alive) {
        alive = false;
        tally.buffers--;
        tally.bytes -= desc.size;
      }
      destroy();
    };
    return buf;
  };
  return tally;
}
