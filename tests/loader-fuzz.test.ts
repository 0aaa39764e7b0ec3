import { describe, expect, it } from 'vitest';
import { M3Error } from '../src/errors.ts';
import { readSafetensors, streamSafetensors } from '../src/model/safetensors.ts';
import type { RawTensor } from '../src/model/tensor.ts';
import { readTorchStateDict } from '../src/model/torch.ts';
import { streamTorchStateDict } from '../src/model/torch-stream.ts';
import { Rng } from '../tools/fixtures/rng.ts';
import { writeSafetensors } from '../tools/fixtures/safetensors-writer.ts';
import { writeTorchStateDict } from '../tools/fixtures/torch-writer.ts';
import { mutate } from './helpers/mutate.ts';
import { chunked } from './helpers/streams.ts';

/**
 * Seeded fuzzing of the weight parsers (issue #10): a few hundred mutations each of a safetensors file and a
 * torch.save .pt file, through both the in-memory and the streamed readers. Every failure must be an M3Error
 * subclass (never a RangeError or TypeError) and no case may take a second. Deterministic: fixed seeds.
 */
const CASES = 300;

function tensors(): [string, RawTensor][] {
  const rng = new Rng(7);
  const t = (dtype: RawTensor['dtype'], shape: number[]): RawTensor => {
    const n = shape.reduce((a, b) => a * b, 1) * (dtype === 'f32' ? 4 : 2);
    return { dtype, shape, data: Uint8Array.from({ length: n }, () => Math.floor(rng.uniform() * 256)) };
  };
  return [
    ['embeddings.word_embeddings.weight', t('f32', [13, 8])],
    ['encoder.layer.0.attention.self.query.bias', t('f16', [8])],
    ['pooler.dense.weight', t('bf16', [3, 5])],
    ['scalar', t('f32', [])],
  ];
}

async function drain(it: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of it) void _;
}

/** Runs one parse; returns 'ok' or the error's class name, failing on untyped errors and slow cases. */
async function attempt(label: string, fn: () => unknown): Promise<string> {
  const t0 = performance.now();
  try {
    await fn();
    return 'ok';
  } catch (e) {
    if (!(e instanceof M3Error)) throw new Error(`${label}: untyped ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
    return e.name;
  } finally {
    expect(performance.now() - t0, label).toBeLessThan(1000);
  }
}

describe('fuzzed weight files give typed errors only, each within a second', () => {
  it(`safetensors: ${CASES} seeded mutations, read whole and streamed`, async () => {
    const base = writeSafetensors(tensors());
    const rng = new Rng(0x5afe);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < CASES; i++) {
      const { bytes, ops } = mutate(base, rng);
      const label = `case ${i} (${ops.join('+')})`;
      for (const r of [await attempt(`${label} whole`, () => readSafetensors(bytes)), await attempt(`${label} streamed`, () => drain(streamSafetensors(chunked(bytes, 1 + (i % 97)), i % 2 ? bytes.byteLength : null)))]) {
        outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
      }
    }
    // The mutations must actually break files: most cases fail, with the format's error.
    expect(outcomes.get('ModelFormatError') ?? 0).toBeGreaterThan(CASES);
  });

  it(`torch .pt: ${CASES} seeded mutations, read whole and streamed`, async () => {
    const base = writeTorchStateDict(new Map(tensors()), 'archive');
    const rng = new Rng(0x70c4);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < CASES; i++) {
      const { bytes, ops } = mutate(base, rng);
      const label = `case ${i} (${ops.join('+')})`;
      for (const r of [await attempt(`${label} whole`, () => readTorchStateDict(bytes)), await attempt(`${label} streamed`, () => drain(streamTorchStateDict(chunked(bytes, 1 + (i % 251)))))]) {
        outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
      }
    }
    expect(outcomes.get('ModelFormatError') ?? 0).toBeGreaterThan(CASES);
  });
});
