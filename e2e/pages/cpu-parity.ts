import * as Comlink from 'comlink';
import type { browserCpuParity } from '../../tools/parity/cpu-browser.ts';

declare global {
  interface Window {
    __cpuParity?: (fixtures: string[], threads?: number) => ReturnType<typeof browserCpuParity>;
  }
}
const api = Comlink.wrap<{ run: typeof browserCpuParity }>(new Worker(new URL('./cpu-parity.worker.ts', import.meta.url), { type: 'module' }));
window.__cpuParity = (fixtures, threads) => api.run(location.origin, fixtures, threads);
document.getElementById('status')!.textContent = 'ready';
