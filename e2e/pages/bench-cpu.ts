import * as Comlink from 'comlink';
import type * as BenchCpu from '../../tools/bench/cpu-browser.ts';

declare global {
  interface Window {
    /** The worker's tools/bench/cpu-browser.ts, driven by tools/bench/cpu.ts. */
    __benchCpu?: Comlink.Remote<typeof BenchCpu>;
  }
}
window.__benchCpu = Comlink.wrap<typeof BenchCpu>(new Worker(new URL('./bench-cpu.worker.ts', import.meta.url), { type: 'module' }));
document.getElementById('status')!.textContent = 'ready';
