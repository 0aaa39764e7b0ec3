import { describe, expect, it } from 'vitest';
import { parseConfig } from '../model/config.ts';
import { quantizedBytes } from '../model/quant.ts';
import { planAllocations, rowChunks } from './memory-plan.ts';

// bge-m3's real shape (../shared/data/heads/bge-m3/config.json): XLM-R large, 8194 positions.
const bgeM3 = parseConfig({ model_type: 'xlm-roberta', vocab_size: 250002, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 4096, max_position_embeddings: 8194, type_vocab_size: 1, pad_token_id: 1, layer_norm_eps: 1e-5 });
const MiB = 2 ** 20;

describe('allocation plan', () => {
  it('splits tables into row chunks that each fit one binding', () => {
    expect(rowChunks(10, 8, 24)).toEqual([
      { row0: 0, rows: 3 },
      { row0: 3, rows: 3 },
      { row0: 6, rows: 3 },
      { row0: 9, rows: 1 },
    ]);
    expect(rowChunks(5, 8, 1000)).toEqual([{ row0: 0, rows: 5 }]);
  });

  it.each([
    ['f16', 128 * MiB],
    ['f32', 128 * MiB],
    ['f16', 1024 * MiB],
  ] as const)('bge-m3 at T = 8192 with %s weights and a %i-byte binding limit stays within every binding', (storage, bind) => {
    const plan = planAllocations(bgeM3, { tokens: 8192, batch: 1, storage, limits: { maxStorageBufferBindingSize: bind, maxBufferSize: bind }, colbertWidth: 1024 });
    expect(plan.largest.bytes).toBeLessThanOrEqual(bind);
    expect(plan.maxTokensPerBatch).toBeGreaterThanOrEqual(8192);
    const word = plan.weights.find((w) => w.name === 'word_embeddings')!;
    expect(word.bytes).toBe(250002 * 1024 * (storage === 'f32' ? 4 : 2));
    expect(word.chunks).toBe(Math.ceil(word.bytes / (Math.floor(bind / (1024 * (storage === 'f32' ? 4 : 2))) * 1024 * (storage === 'f32' ? 4 : 2))));
    // Activations grow linearly with T: attention never allocates a T × T buffer.
    const half = planAllocations(bgeM3, { tokens: 4096, batch: 1, storage, limits: { maxStorageBufferBindingSize: bind, maxBufferSize: bind }, colbertWidth: 1024 });
    const perToken = (p: typeof plan) => p.activations.filter((x) => !['lengths', 'pooled', 'out'].includes(x.name)).reduce((s, x) => s + x.bytes, 0);
    expect(perToken(plan)).toBe(2 * perToken(half));
    console.log(
      `bge-m3 T=8192 ${storage} binding ${bind / MiB} MiB: largest ${plan.largest.name} ${(plan.largest.bytes / MiB).toFixed(1)} MiB, weights ${(plan.weightBytes / MiB).toFixed(0)} MiB (word table in ${word.chunks} chunk(s)), activations ${(plan.activationBytes / MiB).toFixed(0)} MiB, total ${(plan.totalBytes / MiB).toFixed(0)} MiB`,
    );
  });

  it.each([
    ['int8', 128 * MiB],
    ['q4', 128 * MiB],
    ['int8', 1024 * MiB],
    ['q4', 1024 * MiB],
  ] as const)('bge-m3 at T = 8192 with %s weights and a %i-byte binding limit counts quantised bytes (issue #18)', (storage, bind) => {
    const limits = { maxStorageBufferBindingSize: bind, maxBufferSize: bind };
    const plan = planAllocations(bgeM3, { tokens: 8192, batch: 1, storage, limits, colbertWidth: 1024 });
    const f16 = planAllocations(bgeM3, { tokens: 8192, batch: 1, storage: 'f16', limits, colbertWidth: 1024 });
    // q4 stores only the FFN input projections at 4 bits, the word table and every other matrix at int8 (weightBits).
    const bits = 8;
    const ffnInBits = storage === 'int8' ? 8 : 4;
    expect(plan.largest.bytes).toBeLessThanOrEqual(bind);
    const word = plan.weights.find((w) => w.name === 'word_embeddings')!;
    // Per-row layouts: chunking changes nothing for int8; q4's f16 scales pad each chunk to 4 bytes (≤ 2 B per chunk).
    expect(word.bytes - quantizedBytes(bits, 250002, 1024)).toBeGreaterThanOrEqual(0);
    expect(word.bytes - quantizedBytes(bits, 250002, 1024)).toBeLessThanOrEqual(2 * word.chunks);
    expect(word.chunks).toBe(Math.ceil(250002 / Math.floor(bind / (1024 * (bits / 8)))));
    // A block: quantised qkv, o, ffn_in, ffn_out with f32 biases, f32 norms.
    const layer = plan.weights.filter((w) => w.name.startsWith('layer.0.')).reduce((s, w) => s + w.bytes, 0);
    const q = (r: number, c: number) => quantizedBytes(bits, r, c);
    expect(layer).toBe(q(3072, 1024) + q(1024, 1024) + quantizedBytes(ffnInBits, 4096, 1024) + q(1024, 4096) + 4 * (3072 + 1024 + 4096 + 1024) + 4 * 4 * 1024);
    // Activations do not depend on the weights' storage.
    expect(plan.activationBytes).toBe(f16.activationBytes);
    expect(plan.weightBytes).toBeLessThan(f16.weightBytes * (storage === 'int8' ? 0.55 : 0.5));
    console.log(
      `bge-m3 T=8192 ${storage} binding ${bind / MiB} MiB: largest ${plan.largest.name} ${(plan.largest.bytes / MiB).toFixed(1)} MiB, weights ${(plan.weightBytes / MiB).toFixed(0)} MiB (word table ${(word.bytes / MiB).toFixed(0)} MiB in ${word.chunks} chunk(s)), activations ${(plan.activationBytes / MiB).toFixed(0)} MiB, total ${(plan.totalBytes / MiB).toFixed(0)} MiB (f16: ${(f16.totalBytes / MiB).toFixed(0)} MiB)`,
    );
  });

  it('caps padded tokens per batch by the widest activation row', () => {
    const plan = planAllocations(bgeM3, { tokens: 1, batch: 1, storage: 'f16', limits: { maxStorageBufferBindingSize: 64 * MiB, maxBufferSize: 256 * MiB } });
    // Widest row: FFN 4096 f32 = 16 KiB per token → 64 MiB / 16 KiB.
    expect(plan.maxTokensPerBatch).toBe(4096);
  });
});
