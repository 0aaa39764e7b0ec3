import { describe, expect, it } from 'vitest';
import type { EmbedResult } from '../engine/service.ts';
import { EngineReplacedError, InvalidInputError, ModelNotLoadedError } from '../errors.ts';
import { batchErrorAction, observeBatch } from './batch.ts';
import type { CostModel } from './planner.ts';

/** Errors cross comlink as plain objects that keep `name` and `message` (errors.ts), not as class instances. */
const cloned = (e: Error) => ({ name: e.name, message: e.message });

describe('batchErrorAction', () => {
  const alive = async () => true;
  const dead = async () => false;

  it('re-runs a batch whose engine was replaced, without asking the worker', async () => {
    let asked = false;
    const action = await batchErrorAction(cloned(new EngineReplacedError('swapped')), 3, async () => (asked = true));
    expect(action).toBe('requeue');
    expect(asked).toBe(false);
  });

  it("fails a lone request's bad input and isolates it inside a shared batch", async () => {
    const e = cloned(new InvalidInputError('text 2 is not a string'));
    expect(await batchErrorAction(e, 1, alive)).toBe('fail');
    expect(await batchErrorAction(e, 4, alive)).toBe('isolate');
  });

  it('restarts the worker when it has no model, is unhealthy, or failed with anything else', async () => {
    expect(await batchErrorAction(cloned(new ModelNotLoadedError('no model loaded')), 1, alive)).toBe('recover');
    expect(await batchErrorAction(cloned(new InvalidInputError('bad')), 1, dead)).toBe('recover');
    expect(await batchErrorAction(new Error('Device lost'), 2, alive)).toBe('recover');
    expect(await batchErrorAction(undefined, 1, alive)).toBe('recover');
  });
});

describe('observeBatch', () => {
  const cost: CostModel = { a: 1, b: 0.01, c: 0, source: 'measured', timer: 'wall', samples: 4 };
  const result = (tokens: number[]) => ({ tokens }) as unknown as EmbedResult;

  it('leaves the cost model alone without token counts', () => {
    const drift = { logRatio: 0.3, n: 2 };
    expect(observeBatch(cost, drift, 2, result([]), 100)).toEqual({ cost, drift, ratio: null });
  });

  it('scales a, b and c by the drift ratio after five batches 4x slower than predicted', () => {
    // predicted = a + b * (T * n) * layers = 1 + 0.01 * (10 * 2) * 2 = 1.4 ms; measured 5.6 ms = 4x.
    let state = { cost, drift: { logRatio: 0, n: 0 }, ratio: null as number | null };
    for (let i = 0; i < 4; i++) {
      state = observeBatch(state.cost, state.drift, 2, result([10, 7]), 5.6);
      expect(state.ratio).toBeNull();
    }
    state = observeBatch(state.cost, state.drift, 2, result([10, 7]), 5.6);
    expect(state.ratio).toBeCloseTo(4, 9);
    expect(state.cost.a).toBeCloseTo(4, 9);
    expect(state.cost.b).toBeCloseTo(0.04, 9);
    expect(state.cost.source).toBe('drift-adjusted');
    expect(state.drift).toEqual({ logRatio: 0, n: 0 });
  });
});
