/**
 * The bench's timing discipline, shared by the browser worker (browser.ts) and the Node rows (node.ts):
 * one untimed warm-up call per job, then `runs` rounds that call every job once in turn (A B C A B C …),
 * so drift in the machine's speed falls on all jobs alike. Returns wall-clock ms per call, per job key.
 */
export async function timeInterleaved(jobs: { key: string; call: () => Promise<unknown> }[], runs: number): Promise<Record<string, number[]>> {
  for (const j of jobs) await j.call();
  const out: Record<string, number[]> = Object.fromEntries(jobs.map((j) => [j.key, []]));
  for (let r = 0; r < runs; r++) {
    for (const j of jobs) {
      const t0 = performance.now();
      await j.call();
      out[j.key].push(performance.now() - t0);
    }
  }
  return out;
}
