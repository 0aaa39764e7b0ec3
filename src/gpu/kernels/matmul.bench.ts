import type { GpuRuntime } from '../runtime.ts';
import { uploadWeight } from './testing.ts';
import { KERNEL_SCHEDULES, type KernelSchedule } from '../kernel.ts';
import { matmulProgram, type MatmulAttrs, type MatmulShape } from './matmul.ts';
import { seeded } from './testing.ts';

export interface MatmulBench {
  /** Milliseconds per dispatch. */
  ms: number;
  /** 2·M·N·K floating-point operations per dispatch over `ms` (the epilogue is not counted). */
  gflops: number;
}

/**
 * Times `iters` back-to-back dispatches of matmulProgram(shape, attrs) in one compute pass, after one
 * warm-up dispatch (which also compiles). GPU time from timestamp queries at the pass's start and end
 * when the device has 'timestamp-query' (Chromium may quantise them to 100 µs), else wall-clock time
 * from submit to queue.onSubmittedWorkDone().
 */
export async function benchMatmul(rt: GpuRuntime, shape: MatmulShape, attrs: MatmulAttrs, iters: number): Promise<MatmulBench> {
  const { M, N, K } = shape;
  const device = rt.device;
  const program = matmulProgram(shape, attrs);
  await rt.prepare(program);
  const W = uploadWeight(rt, seeded(N * K, 2), attrs.wDtype);
  const b = attrs.bias ? uploadWeight(rt, seeded(N, 3), attrs.wDtype) : null;
  // x: (M, K), W: (N, K), [b: (N)], [r: (M, N)], y: (M, N), in binding order.
  const buffers = [rt.upload(seeded(M * K, 1)), W.buf, ...(b ? [b.buf] : []), ...(attrs.residual ? [rt.upload(seeded(M * N, 4))] : []), rt.createBuffer(M * N * 4)];
  const timestamps = device.features.has('timestamp-query') ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
  const resolved = timestamps ? rt.createBuffer(16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC) : null;

  const submit = async (dispatches: number, timed: boolean): Promise<number> => {
    const enc = device.createCommandEncoder();
    const querySet = timed ? timestamps : null;
    const pass = enc.beginComputePass(querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    for (let i = 0; i < dispatches; i++) rt.record(pass, program, buffers);
    pass.end();
    if (querySet && resolved) enc.resolveQuerySet(querySet, 0, 2, resolved, 0);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };

  await submit(1, false);
  let total = await submit(iters, true);
  if (resolved) {
    const [start, end] = new BigUint64Array(await rt.read(resolved, 16));
    if (end > start) total = Number(end - start) / 1e6; // ns → ms; a zero span means the stamps were not written
  }
  buffers.forEach((buf) => buf.destroy());
  resolved?.destroy();
  timestamps?.destroy();
  const ms = total / iters;
  return { ms, gflops: (2 * M * N * K) / (ms * 1e6) };
}

/**
 * The adapter's matmul peak as this microbenchmark finds it: the best GFLOP/s of a plain matmul (f32
 * weights, no epilogue) over square sizes 256, 384 and 512 and over both schedules of matmul.ts, so the
 * encoder is measured against the better layout for this adapter, not only the one it picked.
 */
export async function peakMatmulGflops(rt: GpuRuntime, iters = 3): Promise<{ gflops: number; schedule: KernelSchedule; size: number }> {
  let best = { gflops: 0, schedule: 'workgroup' as KernelSchedule, size: 0 };
  for (const schedule of KERNEL_SCHEDULES) {
    for (const S of [256, 384, 512]) {
      const r = await benchMatmul(rt, { M: S, N: S, K: S }, { wDtype: 'f32', bias: false, activation: 'none', residual: false, schedule }, iters);
      if (r.gflops > best.gflops) best = { gflops: r.gflops, schedule, size: S };
    }
  }
  return best;
}
