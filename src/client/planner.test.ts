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
