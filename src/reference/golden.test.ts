import { beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { GOLDEN_FIXTURES } from '../../tools/fixtures/specs.ts';
import { cpuReferenceParity } from '../../tools/parity/cpu-ref.ts';
import { readGolden, withFixtureModels } from '../../tools/parity/node-models.ts';
import type { ParityRow } from '../../tools/parity/goldens.ts';
import { ReferenceEncoder } from './model.ts';

// The TypeScript CPU reference is the oracle for every GPU kernel, so it is itself checked against
// PyTorch (tools/goldens/make_goldens.py builds the same models from torch primitives).
const TOL = 1e-5;
const fixtures = [...GOLDEN_FIXTURES];

const results = new Map<string, { rows: ParityRow[]; tokenized: number[][] }>();

beforeAll(async () => {
  ensureFixtures();
  await withFixtureModels(async (load) => {
    for (const f of fixtures) {
      const enc = new ReferenceEncoder(await load(f));
      const golden = readGolden(f);
      results.set(f, { rows: cpuReferenceParity(golden, enc), tokenized: enc.model.tokenizer.encode(golden.texts, 512).ids.map((a) => [...a]) });
    }
  });
});

describe.each(fixtures)('CPU reference vs PyTorch goldens: %s', (fixture) => {
  const golden = readGolden(fixture);
  const L = golden.num_layers;

  it('tokenizes the golden texts to the ids the goldens were computed from', () => {
    expect(results.get(fixture)!.tokenized).toEqual(golden.ids);
  });

  it(`matches every hidden state (embeddings and each of the ${L} blocks) within ${TOL}`, () => {
    const rows = results.get(fixture)!.rows.filter((r) => r.output === 'hidden');
    expect(rows.map((r) => r.layers)).toEqual([...Array(L + 1).keys()]);
    for (const r of rows) expect(r.max_abs, `layer ${r.layers}`).toBeLessThanOrEqual(TOL);
  });

  it('matches the exit hidden states and pooled embeddings at every exit and every golden dims', () => {
    const rows = results.get(fixture)!.rows.filter((r) => r.output === 'exit' || r.output === 'pooled');
    expect(new Set(rows.filter((r) => r.output === 'exit').map((r) => r.layers))).toEqual(new Set(Array.from({ length: L }, (_, i) => i + 1)));
    expect(
      rows
        .filter((r) => r.output === 'pooled' && r.layers === L)
        .map((r) => r.dims)
        .sort((a, b) => a - b),
    ).toEqual(
      Object.keys(golden.cases[0].pooled_dims)
        .map(Number)
        .sort((a, b) => a - b),
    );
    for (const r of rows) expect(r.max_abs, `${r.output} layers=${r.layers} dims=${r.dims}`).toBeLessThanOrEqual(TOL);
  });

  if (golden.bge_m3)
    it('matches bge-m3 dense, sparse and ColBERT outputs at the full depth and an early exit', () => {
      const rows = results.get(fixture)!.rows.filter((r) => ['dense', 'sparse', 'colbert'].includes(r.output));
      expect(rows).toHaveLength(6);
      for (const r of rows) expect(r.max_abs, `${r.output} layers=${r.layers}`).toBeLessThanOrEqual(TOL);
    });
});
