/**
 * Browser side of the CPU backend's parity (inside a worker, e2e/pages/cpu-parity.worker.ts): the rows of
 * tools/parity/cpu.ts for each fixture, plus the wasm thread count the backend ran with.
 */
import { createCpuEngine } from '../../src/cpu/index.ts';
import { loadModel } from '../../src/model/load.ts';
import { cpuParityRows } from './cpu.ts';
import type { ParityRow } from './goldens.ts';

export interface BrowserCpuParity {
  rows: ParityRow[];
  threads: number;
  threadReason: string;
  crossOriginIsolated: boolean;
}

export async function browserCpuParity(origin: string, fixtures: string[], threads?: number): Promise<BrowserCpuParity> {
  const rows: ParityRow[] = [];
  for (const fixture of fixtures) rows.push(...(await cpuParityRows(await loadModel(`${origin}/models/${fixture}/`), fixture, 'cpu-browser', { threads })));
  // The realm's thread count was fixed by the first session above; a fresh engine reports it.
  const probe = await createCpuEngine(await loadModel(`${origin}/models/${fixtures[0]}/`), { threads, maxLayers: 1 });
  const out = { rows, threads: probe.encoder.threads, threadReason: probe.encoder.threadReason, crossOriginIsolated: self.crossOriginIsolated };
  probe.destroy();
  return out;
}
