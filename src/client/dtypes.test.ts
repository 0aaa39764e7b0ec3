import { describe, expect, it } from 'vitest';
import { chooseDtypePlan, loadableDtypes, preloadChoice } from './dtypes.ts';
import { BudgetError } from './errors.ts';
import { choosePlan, DEFAULT_TOKENS_PER_QUERY, DTYPE_RETENTION, engineMB, qualityTable, type CostModel, type ModelShape, type Sidecar } from './planner.ts';
import { RequestQueue } from './scheduler.ts';
import type { EmbedResult } from '../engine/service.ts';

// m3-tiny's shape (public/models/m3-tiny/config.json: 6 layers × 128, vocab 16002) and bert-base's.
const m3tiny: ModelShape = { family: 'm3bert', layers: 6, hidden: 128, heads: 4, intermediate: 512, vocab: 16002, maxPositions: 512, typeVocab: 0, maxTokens: 512, dtype: 'f16', mrlLayers: [2, 4, 6], mrlDims: [16, 32, 64, 128] };
const bertBase: ModelShape = { family: 'bert', layers: 12, hidden: 768, heads: 12, intermediate: 3072, vocab: 30522, maxPositions: 512, typeVocab: 2, maxTokens: 512, dtype: 'f32' };
const cost: CostModel = { a: 2, b: 0.002, c: 0.00001, source: 'measured', timer: 'wall', samples: 9 };
const ALL = ['f32', 'f16', 'int8', 'q4'] as const;
const mem = (s: ModelShape, layers: number, d: 'f32' | 'f16' | 'int8' | 'q4') => engineMB(s, layers, DEFAULT_TOKENS_PER_QUERY, {}, d);

describe('loadableDtypes', () => {
  it('WebGPU: every dtype from f32, no f32 from f16, a pre-quantised folder only in its bits; CPU and ort-wasm: f32; weights pins', () => {
    expect(loadableDtypes('webgpu', 'f32')).toEqual(['f32', 'f16', 'int8', 'q4']);
    expect(loadableDtypes('webgpu', null)).toEqual(['f32', 'f16', 'int8', 'q4']);
    expect(loadableDtypes('webgpu', 'f16')).toEqual(['f16', 'int8', 'q4']);
    expect(loadableDtypes('webgpu', 'int8')).toEqual(['int8']);
    expect(loadableDtypes('webgpu', 'q4')).toEqual(['q4']);
    expect(loadableDtypes('webgpu', 'f32', 'int8')).toEqual(['int8']);
    expect(loadableDtypes('cpu', 'f32', undefined, 'f32')).toEqual(['f32']);
    expect(loadableDtypes('cpu', null, 'q4', 'f32')).toEqual(['f32']);
    expect(loadableDtypes('ort-wasm', null, undefined, 'f32')).toEqual(['f32']);
  });
});

describe('chooseDtypePlan', () => {
  it("keeps the model's own dtype when it runs the best point, even where a quantised row measured higher (m3-tiny's sidecar)", () => {
    // public/models/m3-tiny/m3web.json at 2 × 128: f32 0.219, int8 0.2199, q4 0.2219 (SciFact nDCG@10, noise-level differences).
    const sidecar: Sidecar = {
      quality: {
        table: [
          { layers: 2, dims: 128, score: 0.219 },
          { layers: 6, dims: 128, score: 0.1822 },
        ],
      },
      quality_by_dtype: { int8: { table: [{ layers: 2, dims: 128, score: 0.2199 }] }, q4: { table: [{ layers: 2, dims: 128, score: 0.2219 }] } },
    };
    const shape = { ...m3tiny, dtypes: loadableDtypes('webgpu', 'f16') };
    const q = qualityTable(shape, sidecar);
    expect(choosePlan(shape, q, cost, {}).dtype).toBe('q4'); // the planner's best alone would requantise
    const p = chooseDtypePlan(shape, q, cost, {}, 'webgpu', {}, 'f16');
    expect([p.dtype, p.layers, p.dims]).toEqual(['f16', 2, 128]);
    expect(p.quality).toBeCloseTo(0.219 / 0.2219, 12);
    expect(p.dtypeReason).toBe("the model's own f16: it runs 2×128 within the budget (q4 would change the weights for a quality difference of 0.013)");
  });

  it('switches dtype only when the memory budget cannot hold the point in the own dtype, and says so', () => {
    const shape = { ...bertBase, dtypes: [...ALL] };
    const q = qualityTable(shape);
    const f32 = chooseDtypePlan(shape, q, cost, {}, 'webgpu', {}, 'f32');
    expect([f32.dtype, f32.layers, f32.dims]).toEqual(['f32', 12, 768]); // not f16 (equal quality, less memory): the own dtype stays
    expect(f32.dtypeReason).toBe("the model's own f32: it runs 12×768 within the budget (f16 would change the weights for a quality difference of 0.000)");
    const budget = { memoryMB: mem(bertBase, 12, 'f16') - 1 };
    const p = chooseDtypePlan(shape, q, cost, budget, 'webgpu', {}, 'f32');
    expect([p.dtype, p.layers, p.dims, p.quality]).toEqual(['int8', 12, 768, DTYPE_RETENTION.int8]);
    expect(p.dtypeReason).toBe(`int8: the memory budget (${budget.memoryMB.toFixed(1)} MB) holds 12×768 in int8 (${mem(bertBase, 12, 'int8').toFixed(1)} MB), not in f32 (${mem(bertBase, 12, 'f32').toFixed(1)} MB)`);
    const pinned = chooseDtypePlan({ ...bertBase, dtypes: ['f32'] }, q, cost, budget, 'webgpu', {}, 'f32', 'f32');
    expect([pinned.dtype, pinned.dtypeReason]).toEqual(['f32', "f32: asked for with weights: 'f32'"]);
    expect(pinned.layers).toBeLessThan(12);
    expect(chooseDtypePlan({ ...bertBase, dtypes: ['f32'] }, q, cost, {}, 'cpu', {}, null).dtypeReason).toBe('f32: the cpu backend computes in f32');
    expect(() => chooseDtypePlan(shape, q, cost, { memoryMB: 1 }, 'webgpu', {}, 'f32')).toThrow(BudgetError);
  });

  it('before the load: the dtype and the blocks a memory budget holds, from the config alone', () => {
    const shape = { ...bertBase, dtypes: [...ALL] };
    const q = qualityTable(shape);
    expect(preloadChoice(shape, q, {}, null)).toEqual({ dtype: 'f32', maxLayers: undefined });
    expect(preloadChoice(shape, q, { memoryMB: mem(bertBase, 12, 'int8') + 0.5 }, null)).toEqual({ dtype: 'int8', maxLayers: undefined });
    expect(preloadChoice(shape, q, { memoryMB: mem(bertBase, 12, 'q4') + 0.5, latencyMs: 0.001 }, null)).toEqual({ dtype: 'q4', maxLayers: undefined }); // latency is priced alike for every dtype: left out
    // f32 only (the CPU backend): the deepest exit that fits, as before dtypes were planned.
    const f32 = preloadChoice({ ...bertBase, dtypes: ['f32'] }, q, { memoryMB: mem(bertBase, 5, 'f32') + 0.1 }, null);
    expect(f32).toEqual({ dtype: 'f32', maxLayers: 5 });
  });
});

describe('RequestQueue', () => {
  it("a call's slices done in one dtype run again when a later slice comes from another (one engine per call)", () => {
    const q = new RequestQueue(1);
    let got: { dtype: string; embeddings: Float32Array } | null = null;
    q.add(['a', 'b'], { layers: 1, dims: 1 }, { resolve: (r) => (got = r), reject: () => undefined });
    const res = (dtype: string, v: number): EmbedResult => ({ embeddings: Float32Array.of(v), n: 1, dims: 1, layers: 1, truncated: 0, truncatedRows: [], tokens: Uint32Array.of(3), backend: 'webgpu', dtype, ms: 1 });
    const first = q.next(1);
    q.deliver(first, res('int8', 1));
    const second = q.next(1);
    expect(second[0].start).toBe(1);
    q.deliver(second, res('q4', 2)); // the int8 slice is queued again
    expect(got).toBeNull();
    const again = q.next(1);
    expect(again[0].start).toBe(0);
    q.deliver(again, res('q4', 3));
    expect(got!.dtype).toBe('q4');
    expect([...got!.embeddings]).toEqual([3, 2]);
  });
});
