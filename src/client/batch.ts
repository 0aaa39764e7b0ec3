/**
 * The client's decisions about one worker batch, kept out of M3Client's state so they can be tested alone:
 * what a failed batch means (re-run, restart the worker, isolate the request that broke it, or fail it), and
 * whether a measured batch time says the cost model has drifted (planner.ts's updateDrift).
 */
import type { EmbedResult } from '../engine/service.ts';
import { predictBatchMs, updateDrift, type CostModel, type DriftState } from './planner.ts';

/** requeue: the worker swapped engines under the call and returned nothing; recover: the worker or its device is gone;
 *  isolate: one request's input broke a shared batch, so each slice re-runs alone; fail: that request's own input is bad. */
export type BatchErrorAction = 'requeue' | 'recover' | 'isolate' | 'fail';

/** `name` survives structured cloning through comlink (errors.ts), so the worker's typed errors are told apart by it. */
function errorName(e: unknown): string | undefined {
  return (e as { name?: string })?.name;
}

/** Decides what a failed batch of `chunks` chunks means; `healthy` asks the worker (only for an input error). */
export async function batchErrorAction(e: unknown, chunks: number, healthy: () => Promise<boolean>): Promise<BatchErrorAction> {
  const name = errorName(e);
  if (name === 'EngineReplacedError') return 'requeue';
  // An input error from a live engine is the caller's; anything else (ModelNotLoadedError after a worker restart,
  // a lost device, a crash) means the worker must be replaced.
  if (name !== 'InvalidInputError' || !(await healthy())) return 'recover';
  return chunks > 1 ? 'isolate' : 'fail';
}

/** The cost model after one measured batch: unchanged, or scaled by the drift ratio when it has been off for long. */
export function observeBatch(cost: CostModel, drift: DriftState, layers: number, r: EmbedResult, ms: number): { cost: CostModel; drift: DriftState; ratio: number | null } {
  if (!r.tokens?.length) return { cost, drift, ratio: null };
  const d = updateDrift(drift, ms, predictBatchMs(cost, [...r.tokens], layers));
  if (!d.replan) return { cost, drift: d.state, ratio: null };
  return { cost: { ...cost, a: cost.a * d.ratio, b: cost.b * d.ratio, c: cost.c * d.ratio, source: 'drift-adjusted' }, drift: { logRatio: 0, n: 0 }, ratio: d.ratio };
}
