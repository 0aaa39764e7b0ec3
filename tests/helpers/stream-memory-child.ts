/**
 * Child process of tests/stream-memory.test.ts (run with node --expose-gc --import tsx): loads one model
 * URL with the weights handed to a consumer that drops them (as the GPU upload does), sampling live JS
 * memory (heap + array buffers, after a full GC) at every tensor and every 8th download chunk of the
 * weights file, against a baseline taken when that file's headers arrive. Prints
 * { baseline, peak, largest, tensors } as JSON.
 */
import { loadModel } from '../../src/model/load.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const live = () => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const url = process.argv[2];
// The baseline is taken when the weights file's headers arrive: config, tokenizer and modules are in by then.
let baseline = Infinity;
let peak = 0;
let largest = 0;
let tensors = 0;
let chunks = 0;
await loadModel(url, {
  heads: false,
  onProgress: (p) => {
    if (p.phase !== 'download' || !/\.(bin|safetensors)$/.test(p.file)) return;
    if (baseline === Infinity) baseline = peak = live();
    else if (++chunks % 8 === 0) peak = Math.max(peak, live());
  },
  onTensor: (_name, t) => {
    tensors++;
    largest = Math.max(largest, t.data.byteLength);
    peak = Math.max(peak, live());
  },
});
console.log(JSON.stringify({ baseline, peak, largest, tensors }));
