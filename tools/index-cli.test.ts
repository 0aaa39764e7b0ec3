// tools/index-cli.ts end to end: precomputed vectors (no model) and a fixture model on Node + Dawn; a
// second run resumes from the committed chunks; the file and the Parquet load back.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/model/load.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { SemanticIndex } from '../src/search/semantic-index.ts';
import { startModelServer } from '../tests/helpers/model-server.ts';
import { randomUnit } from '../src/search/testing.ts';
import { ensureFixtures } from './fixtures/generate.ts';
import { MODELS_DIR, REPO_ROOT } from './fixtures/paths.ts';

/** Runs the CLI; returns its last stderr line (the summary), or throws with its stderr. */
const run = (args: string[]): string => {
  const r = spawnSync('npx', ['tsx', 'tools/index-cli.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`index-cli exited ${r.status}: ${r.stderr}`);
  return r.stderr.trim().split('\n').at(-1)!;
};

describe('index CLI', () => {
  it('precomputed vectors: a half-built index resumes with nothing duplicated; the file matches an in-memory build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3cli-'));
    const v = randomUnit(60, 16, 3);
    const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify({ id: `x${i}`, title: `t${i}`, embedding: Array.from(v.subarray(i * 16, (i + 1) * 16)) }));
    writeFileSync(join(dir, 'half.jsonl'), lines.slice(0, 30).join('\n') + '\n');
    writeFileSync(join(dir, 'all.jsonl'), lines.join('\n') + '\n');
    const out = join(dir, 'x.m3idx');
    expect(run(['--in', join(dir, 'half.jsonl'), '--out', out, '--storage', 'int8', '--chunk', '8'])).toMatch(/done: 30 added, 0 resumed/);
    expect(run(['--in', join(dir, 'all.jsonl'), '--out', out, '--storage', 'int8', '--chunk', '8', '--parquet', join(dir, 'x.parquet')])).toMatch(/done: 30 added, 30 resumed; 60 documents × 16 dims/);
    const idx = await SemanticIndex.fromBytes(new Uint8Array(readFileSync(out)));
    expect(idx.stats()).toMatchObject({ count: 60, dims: 16, storage: 'int8', modelId: 'precomputed' });
    const ref = await SemanticIndex.create({ dims: 16, storage: 'int8' });
    await ref.add(Array.from({ length: 60 }, (_, i) => ({ id: `x${i}`, dense: v.subarray(i * 16, (i + 1) * 16), meta: { title: `t${i}` } })));
    const q = v.subarray(5 * 16, 6 * 16);
    expect(await idx.search({ dense: q }, { k: 10 })).toEqual(await ref.search({ dense: q }, { k: 10 }));
    expect(readFileSync(join(dir, 'x.parquet')).subarray(0, 4).toString()).toBe('PAR1');
  });

  it('with a fixture model on Node + Dawn: dense and sparse vectors of every document are in the file', async () => {
    await ensureFixtures();
    const dir = mkdtempSync(join(tmpdir(), 'm3cli-'));
    const texts = ['cells divide', 'proteins fold', 'genes express', 'blood pressure rises', 'risk of cancer', 'stem cells renew'];
    writeFileSync(join(dir, 'c.jsonl'), texts.map((t, i) => JSON.stringify({ _id: String(i), text: t })).join('\n'));
    const out = join(dir, 'c.m3idx');
    expect(run(['--in', join(dir, 'c.jsonl'), '--out', out, '--model', join(MODELS_DIR, 'xlmr-tiny'), '--outputs', 'dense,sparse', '--storage', 'f32', '--dims', '32'])).toMatch(/done: 6 added, 0 resumed; 6 documents × 32 dims \(f32, dense\+sparse\)/);
    const idx = await SemanticIndex.fromBytes(new Uint8Array(readFileSync(out)), { modelId: 'xlmr-tiny', dims: 32 });
    expect(idx.stats()).toMatchObject({ count: 6, dims: 32, outputs: ['dense', 'sparse'] });
    // The file holds what the model computes, row by row: the CPU reference (the oracle) agrees within 1e-4.
    const c = idx.columns();
    const server = await startModelServer();
    try {
      const ref = new ReferenceEncoder(await loadModel(server.folderUrl('xlmr-tiny'))).embed(texts, { dims: 32 }).embeddings;
      expect(c.ids).toEqual(texts.map((_, i) => String(i)));
      for (let j = 0; j < ref.length; j++) expect(Math.abs(c.dense![j] - ref[j])).toBeLessThanOrEqual(1e-4);
    } finally {
      await server.close();
    }
    for (const v of c.sparse!) expect(v.ids.length).toBeGreaterThan(0);
  });
});
