import { describe, expect, it } from 'vitest';
import { planAllocations } from '../engine/memory-plan.ts';
import { BudgetError } from './errors.ts';
import {
  candidates,
  choosePlan,
  defaultCostModel,
  defaultQuality,
  dominates,
  fitCostModel,
  paretoFrontier,
  predictMs,
  qualityTable,
  updateDrift,
  engineMB,
  DEFAULT_TOKENS_PER_QUERY,
  DTYPE_RETENTION,
  type Budget,
  type Candidate,
  type CostModel,
  type ModelShape,
} from './planner.ts';

// Real-sized shapes (the planner's arithmetic does not depend on weights being loaded).
const m3bert: ModelShape = {
  family: 'm3bert',
  layers: 12,
  hidden: 768,
  heads: 12,
  intermediate: 3072,
  vocab: 250002,
  maxPositions: 512,
  typeVocab: 0,
  maxTokens: 512,
  dtype: 'f16x2',
  mrlLayers: [4, 8, 12],
  mrlDims: [32, 64, 128, 768],
};
const bertBase: ModelShape = { family: 'bert', layers: 12, hidden: 768, heads: 12, intermediate: 3072, vocab: 30522, maxPositions: 512, typeVocab: 2, maxTokens: 512, dtype: 'f32' };
const m3tiny: ModelShape = { family: 'm3bert', layers: 3, hidden: 40, heads: 5, intermediate: 108, vocab: 8002, maxPositions: 512, typeVocab: 0, maxTokens: 512, dtype: 'f32', mrlLayers: [1, 2, 3], mrlDims: [8, 16, 40] };

const cost: CostModel = { a: 2, b: 0.002, c: 0.00001, source: 'measured', timer: 'wall', samples: 9 };

describe('quality', () => {
  it('default curve passes through the cited anchor points', () => {
    expect(defaultQuality(6, 12, 768, 768)).toBeCloseTo(0.85, 6); // half the layers ≈ 85 %
    expect(defaultQuality(12, 12, 0.08 * 768, 768)).toBeCloseTo(0.98, 6); // 8 % of dims ≈ 98 %
    expect(defaultQuality(12, 12, 768, 768)).toBe(1);
  });

  it('uses the trained grid, a sidecar table, or the default grid', () => {
    const t = qualityTable(m3bert);
    expect(t.source).toBe('trained-grid');
    expect(t.points.map((p) => `${p.layers}x${p.dims}`)).toEqual(['4x32', '4x64', '4x128', '4x768', '8x32', '8x64', '8x128', '8x768', '12x32', '12x64', '12x128', '12x768']);
    const s = qualityTable(m3bert, {
      quality: {
        metric: 'ndcg@10',
        table: [
          { layers: 12, dims: 768, score: 0.5 },
          { layers: 4, dims: 64, score: 0.4 },
          { layers: 99, dims: 1, score: 1 },
        ],
      },
    });
    expect(s.source).toBe('sidecar');
    expect(s.points).toEqual([
      { layers: 12, dims: 768, quality: 1 },
      { layers: 4, dims: 64, quality: 0.8 },
    ]);
    const d = qualityTable(bertBase);
    expect(d.source).toBe('default-curve');
    expect(d.points).toHaveLength(12 * 8); // dims 8..512 (7) + 768
  });
});

describe('cost model fit', () => {
  it('recovers a, b, c from exact samples', () => {
    const truth = { a: 3, b: 0.01, c: 0.0002 };
    const samples = [8, 32, 96].flatMap((t) => [1, 2, 3].map((l) => ({ tokens: t, layers: l, ms: predictMs(truth, t, l) })));
    const fit = fitCostModel(samples);
    expect(fit.a).toBeCloseTo(3, 6);
    expect(fit.b).toBeCloseTo(0.01, 8);
    expect(fit.c).toBeCloseTo(0.0002, 9);
  });

  it('keeps coefficients non-negative on noisy, flat data', () => {
    const samples = [8, 32, 96].flatMap((t) => [1, 3].map((l, i) => ({ tokens: t, layers: l, ms: 5 + (i ? -0.3 : 0.2) })));
    const fit = fitCostModel(samples);
    expect(fit.a).toBeGreaterThanOrEqual(0);
    expect(fit.b).toBeGreaterThanOrEqual(0);
    expect(fit.c).toBeGreaterThanOrEqual(0);
    expect(fit.a).toBeGreaterThan(4);
  });
});

describe("memory model (one model: the engine's planAllocations)", () => {
  const cfg = { family: 'bert' as const, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, vocab_size: 30522, max_position_embeddings: 512, type_vocab_size: 2 };
  const limits = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 };

  it("a plan's memory is exactly what planAllocations charges for its uploaded blocks and one query batch", () => {
    for (const [layers, dtype] of [
      [12, 'f32'],
      [4, 'f32'],
      [12, 'f16x2'],
      [7, 'f16'],
    ] as const) {
      const want = planAllocations(cfg, { tokens: 32, batch: 1, storage: dtype === 'f32' ? 'f32' : 'f16', limits, layers, colbertWidth: null }).totalBytes / 2 ** 20;
      expect(engineMB({ ...bertBase, dtype }, layers, 32, limits)).toBe(want);
    }
    const p = choosePlan(bertBase, qualityTable(bertBase), cost, {}, 'webgpu', limits);
    expect(p.memoryMB).toBe(planAllocations(cfg, { tokens: DEFAULT_TOKENS_PER_QUERY, batch: 1, storage: 'f32', limits, layers: p.layers }).totalBytes / 2 ** 20);
  });

  it('counts weights by dtype and by blocks uploaded', () => {
    const full = engineMB(bertBase, 12, 1);
    // bert-base ≈ 109 M parameters ≈ 417 MiB in f32 (plus one token's activations).
    expect(full).toBeGreaterThan(400);
    expect(full).toBeLessThan(430);
    expect(engineMB({ ...bertBase, dtype: 'f16' }, 12, 1)).toBeLessThan(full / 2 + 1);
    expect(engineMB(bertBase, 4, 1)).toBeLessThan(full);
    expect(engineMB(bertBase, 12, 2048)).toBeGreaterThan(engineMB(bertBase, 12, 1024));
  });
});

function nestedBudgets(kind: 'latency' | 'memory', shape: ModelShape): Budget[] {
  const cands = candidates(shape, qualityTable(shape), cost, { corpusSize: 1e6 });
  const lo = Math.min(...cands.map((c) => (kind === 'latency' ? c.latencyMs : c.memoryMB)));
  const hi = Math.max(...cands.map((c) => (kind === 'latency' ? c.latencyMs : c.memoryMB)));
  const out: Budget[] = [];
  for (let i = 0; i <= 40; i++) {
    const v = hi * 1.01 - ((hi * 1.01 - lo) * i) / 40;
    out.push(kind === 'latency' ? { latencyMs: v, corpusSize: 1e6 } : { memoryMB: v, corpusSize: 1e6 });
  }
  return out; // loosest first
}

describe('planner', () => {
  for (const [name, shape] of [
    ['m3bert (trained grid)', m3bert],
    ['bert-base (default curve)', bertBase],
    ['m3bert-tiny fixture', m3tiny],
  ] as const) {
    for (const kind of ['latency', 'memory'] as const) {
      it(`${name}: tighter ${kind} budgets give plans with no more layers and no more dims`, () => {
        const q = qualityTable(shape);
        let prev = choosePlan(shape, q, cost, nestedBudgets(kind, shape)[0]);
        expect(prev.layers).toBe(shape.layers);
        let shrank = 0;
        for (const b of nestedBudgets(kind, shape).slice(1)) {
          const p = choosePlan(shape, q, cost, b);
          expect(p.layers).toBeLessThanOrEqual(prev.layers);
          expect(p.dims).toBeLessThanOrEqual(prev.dims);
          expect(p.quality).toBeLessThanOrEqual(prev.quality);
          if (p.layers < prev.layers || p.dims < prev.dims) shrank++;
          prev = p;
        }
        expect(shrank).toBeGreaterThan(0);
      });
    }
  }

  it('tighter combined budgets never raise cost', () => {
    const q = qualityTable(m3bert);
    const loose = choosePlan(m3bert, q, cost, { latencyMs: 100, memoryMB: 10_000 });
    const tight = choosePlan(m3bert, q, cost, { latencyMs: 10, memoryMB: 500 });
    expect(tight.latencyMs).toBeLessThanOrEqual(loose.latencyMs);
    expect(tight.memoryMB).toBeLessThanOrEqual(loose.memoryMB);
  });

  it('a budget nothing meets is a BudgetError naming the cheapest plan', () => {
    const q = qualityTable(m3bert);
    let err: unknown;
    try {
      choosePlan(m3bert, q, cost, { latencyMs: 0.5, minQuality: 0.99 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BudgetError);
    const be = err as BudgetError;
    expect(be.name).toBe('BudgetError');
    expect(be.cheapest.layers).toBe(4);
    expect(be.cheapest.dims).toBe(768); // cheapest latency; among equals the best quality
    expect(be.message).toMatch(/cheapest plan is layers=4 dims=768/);
    expect(be.violated.join(' ')).toMatch(/latency/);
  });

  it('prefers trained exits and reports where its numbers come from', () => {
    const p = choosePlan(m3bert, qualityTable(m3bert), cost, { latencyMs: predictMs(cost, 32, 9) });
    expect(p.layers).toBe(8);
    expect(p.trained).toBe(true);
    expect(p.qualitySource).toBe('trained-grid');
    expect(p.costSource).toBe('measured');
  });

  it('memory budgets shrink maxBatchTokens before anything else', () => {
    const q = qualityTable(bertBase);
    const p = choosePlan(bertBase, q, cost, { memoryMB: engineMB(bertBase, 12, 1024) + 0.01 });
    expect(p.layers).toBe(12);
    expect(p.maxBatchTokens).toBe(1024);
  });

  it('default cost model is positive and grows with layers and tokens', () => {
    const d = defaultCostModel(bertBase, 'webgpu');
    expect(predictMs(d, 64, 12)).toBeGreaterThan(predictMs(d, 32, 12));
    expect(predictMs(d, 32, 12)).toBeGreaterThan(predictMs(d, 32, 6));
  });
});

describe('frontier', () => {
  for (const [name, shape, budget] of [
    ['m3bert', m3bert, { corpusSize: 1e5 }],
    ['bert-base', bertBase, { corpusSize: 1e6 }],
    ['bert-base no corpus', bertBase, {}],
  ] as const) {
    it(`${name}: non-empty and Pareto-optimal`, () => {
      const cands = candidates(shape, qualityTable(shape), cost, budget);
      const f = paretoFrontier(cands);
      expect(f.length).toBeGreaterThan(0);
      // No frontier point is dominated by any candidate …
      for (const p of f) expect(cands.some((c) => dominates(c, p))).toBe(false);
      // … and every candidate left out is dominated by (or equal to) a frontier point.
      const same = (a: Candidate, b: Candidate) => a.latencyMs === b.latencyMs && a.memoryMB === b.memoryMB && a.quality === b.quality;
      for (const c of cands) if (!f.includes(c)) expect(f.some((p) => dominates(p, c) || same(p, c))).toBe(true);
      // The full model is on it (best quality), and so is the cheapest point.
      expect(f.some((p) => p.layers === shape.layers && p.dims === shape.hidden)).toBe(true);
    });
  }
});

describe('drift', () => {
  it('asks to re-plan only after sustained, large disagreement', () => {
    let s = { logRatio: 0, n: 0 };
    for (let i = 0; i < 10; i++) {
      const r = updateDrift(s, 11, 10);
      expect(r.replan).toBe(false);
      s = r.state;
    }
    s = { logRatio: 0, n: 0 };
    const flags = [];
    for (let i = 0; i < 6; i++) {
      const r = updateDrift(s, 40, 10);
      flags.push(r.replan);
      s = r.state;
    }
    expect(flags).toEqual([false, false, false, false, true, true]);
  });
});

describe('device limits', () => {
  it('caps maxBatchTokens so one activation buffer fits a storage binding', () => {
    const q = qualityTable(bertBase);
    const free = choosePlan(bertBase, q, cost, {});
    expect(free.maxBatchTokens).toBe(8192);
    const capped = choosePlan(bertBase, q, cost, {}, 'webgpu', { maxStorageBufferBindingSize: 3072 * 4 * 1000 });
    expect(capped.maxBatchTokens).toBe(512);
  });

  it('a fallback (software) adapter gets the CPU-speed default cost model', () => {
    expect(defaultCostModel(bertBase, 'webgpu', true).b).toBeCloseTo(defaultCostModel(bertBase, 'cpu-ref').b, 12);
    expect(defaultCostModel(bertBase, 'webgpu', false).b).toBeLessThan(defaultCostModel(bertBase, 'webgpu', true).b);
  });
});

describe('dtype axis (f32 / f16 / int8 / q4)', () => {
  const all = ['f32', 'f16', 'int8', 'q4'] as const;
  const cfg = { family: 'bert' as const, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, vocab_size: 30522, max_position_embeddings: 512, type_vocab_size: 2 };
  const limits = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 };

  it('without a dtypes list only the served dtype is offered (the planner as before)', () => {
    const cands = candidates(bertBase, qualityTable(bertBase), cost);
    expect(new Set(cands.map((c) => c.dtype))).toEqual(new Set(['f32']));
    const f16 = choosePlan({ ...bertBase, dtype: 'f16x2' }, qualityTable(bertBase), cost);
    expect(f16.dtype).toBe('f16x2'); // the served shader dtype is reported as is
  });

  it("every candidate's memory is planAllocations with its own storage dtype, and quantised weights cost less", () => {
    const shape: ModelShape = { ...bertBase, dtypes: all };
    const cands = candidates(shape, qualityTable(shape), cost, {}, limits);
    expect(cands).toHaveLength(4 * qualityTable(shape).points.length);
    for (const c of cands.filter((c) => c.dims === 768)) {
      const want = planAllocations(cfg, { tokens: DEFAULT_TOKENS_PER_QUERY, batch: 1, storage: c.dtype, limits, layers: c.layers, colbertWidth: null }).totalBytes / 2 ** 20;
      expect(c.memoryMB, `${c.dtype} ${c.layers}`).toBe(want);
    }
    const full = (d: string) => cands.find((c) => c.dtype === d && c.layers === 12 && c.dims === 768)!.memoryMB;
    expect(full('f16')).toBeLessThan(full('f32'));
    expect(full('int8')).toBeLessThan(full('f16'));
    expect(full('q4')).toBeLessThan(full('int8'));
  });

  it('unmeasured quantised points are charged DTYPE_RETENTION; measured rows (quality_by_dtype) replace it', () => {
    const sidecar = {
      quality: {
        metric: 'ndcg@10',
        table: [
          { layers: 12, dims: 768, score: 0.5 },
          { layers: 4, dims: 64, score: 0.4 },
        ],
      },
      quality_by_dtype: {
        int8: {
          metric: 'ndcg@10',
          table: [
            { layers: 12, dims: 768, score: 0.499 },
            { layers: 99, dims: 1, score: 9 },
          ],
        },
        q4: { table: [{ layers: 12, dims: 768, score: 0.49 }] },
      },
    };
    const t = qualityTable(m3bert, sidecar);
    expect(t.byDtype).toEqual({ int8: [{ layers: 12, dims: 768, quality: 0.998 }], q4: [{ layers: 12, dims: 768, quality: 0.98 }] });
    const cands = candidates({ ...m3bert, dtypes: all }, t, cost);
    const at = (d: string, l: number, dims: number) => cands.find((c) => c.dtype === d && c.layers === l && c.dims === dims)!;
    expect(at('int8', 12, 768)).toMatchObject({ quality: 0.998, dtypeMeasured: true });
    expect(at('q4', 12, 768)).toMatchObject({ quality: 0.98, dtypeMeasured: true });
    expect(at('int8', 4, 64)).toMatchObject({ quality: 0.8 * DTYPE_RETENTION.int8, dtypeMeasured: false });
    expect(at('q4', 4, 64).quality).toBeCloseTo(0.8 * 0.97, 12);
    expect(at('f16', 4, 64)).toMatchObject({ quality: 0.8, dtypeMeasured: false });
    expect(at('f32', 4, 64)).toMatchObject({ quality: 0.8, dtypeMeasured: true });
    // A quantised row that measured above f32 (noise) sets the scale: nothing exceeds 1.
    const hi = qualityTable(m3bert, { quality: { table: [{ layers: 12, dims: 768, score: 0.5 }] }, quality_by_dtype: { q4: { table: [{ layers: 12, dims: 768, score: 0.52 }] } } });
    expect(hi.points[0].quality).toBeCloseTo(0.5 / 0.52, 12);
    expect(hi.byDtype!.q4![0].quality).toBe(1);
  });

  it('picks f16 over f32 at equal quality, and int8 / q4 only when the budget needs them', () => {
    // m3bert's trained exits are 4, 8, 12: dropping to 8 layers (quality 0.91) costs more than q4 (0.97).
    const shape: ModelShape = { ...m3bert, dtypes: all };
    const q = qualityTable(shape);
    expect(choosePlan(shape, q, cost, {}).dtype).toBe('f16x2'); // f16, reported as the served shader dtype (packed pairs)
    expect(choosePlan({ ...bertBase, dtypes: all }, qualityTable(bertBase), cost, {}).dtype).toBe('f16');
    const mem = (d: 'f16' | 'int8' | 'q4') => engineMB(shape, 12, DEFAULT_TOKENS_PER_QUERY, {}, d);
    const int8 = choosePlan(shape, q, cost, { memoryMB: mem('f16') - 1 });
    expect([int8.dtype, int8.layers, int8.dims, int8.quality]).toEqual(['int8', 12, 768, DTYPE_RETENTION.int8]);
    const q4 = choosePlan(shape, q, cost, { memoryMB: mem('int8') - 1 });
    expect([q4.dtype, q4.layers, q4.quality]).toEqual(['q4', 12, DTYPE_RETENTION.q4]);
    expect(q4.memoryMB).toBe(mem('q4'));
    // On the default curve every layer is a choice: one layer fewer in int8 can beat q4 — the planner takes the better.
    const bb: ModelShape = { ...bertBase, dtypes: all };
    const p = choosePlan(bb, qualityTable(bb), cost, { memoryMB: engineMB(bb, 12, DEFAULT_TOKENS_PER_QUERY, {}, 'int8') - 1 });
    const feasible = candidates(bb, qualityTable(bb), cost, { memoryMB: engineMB(bb, 12, DEFAULT_TOKENS_PER_QUERY, {}, 'int8') - 1 }).filter((c) => c.memoryMB <= engineMB(bb, 12, DEFAULT_TOKENS_PER_QUERY, {}, 'int8') - 1);
    expect(p.quality).toBe(Math.max(...feasible.map((c) => c.quality)));
  });

  it('never offers a dtype the backend did not list: without int8/q4 a tight budget sheds layers or fails', () => {
    const shape: ModelShape = { ...bertBase, dtypes: ['f32', 'f16'] };
    const q = qualityTable(shape);
    const budget = { memoryMB: engineMB(shape, 12, DEFAULT_TOKENS_PER_QUERY, {}, 'f16') - 1 };
    const p = choosePlan(shape, q, cost, budget);
    expect(p.dtype).toBe('f16');
    expect(p.layers).toBeLessThan(12);
    for (const c of candidates(shape, q, cost, budget)) expect(['f32', 'f16']).toContain(c.dtype);
    expect(() => choosePlan(shape, q, cost, { memoryMB: engineMB(shape, 1, DEFAULT_TOKENS_PER_QUERY, {}, 'q4') })).toThrow(BudgetError);
    expect(choosePlan({ ...shape, dtypes: all }, q, cost, { memoryMB: engineMB(shape, 1, DEFAULT_TOKENS_PER_QUERY, {}, 'q4') }).dtype).toBe('q4');
  });

  it('tighter memory budgets over all four dtypes never raise memory or quality, and pass through int8 and q4', () => {
    const shape: ModelShape = { ...m3bert, dtypes: all };
    const q = qualityTable(shape);
    let prev = choosePlan(shape, q, cost, nestedBudgets('memory', shape)[0]);
    const seen = new Set<string>([prev.dtype]);
    for (const b of nestedBudgets('memory', shape).slice(1)) {
      let p;
      try {
        p = choosePlan(shape, q, cost, b);
      } catch (e) {
        expect(e).toBeInstanceOf(BudgetError);
        break;
      }
      expect(p.memoryMB).toBeLessThanOrEqual(prev.memoryMB);
      expect(p.quality).toBeLessThanOrEqual(prev.quality);
      seen.add(p.dtype);
      prev = p;
    }
    expect([...seen]).toEqual(expect.arrayContaining(['int8', 'q4']));
  });

  it('maxBatchTokens is sized with the chosen dtype', () => {
    const shape: ModelShape = { ...bertBase, dtypes: ['q4'] };
    const p = choosePlan(shape, qualityTable(shape), cost, { memoryMB: engineMB(shape, 12, 1024, {}, 'q4') + 0.01 });
    expect([p.dtype, p.layers, p.maxBatchTokens]).toEqual(['q4', 12, 1024]);
  });
});
