// Persistence through the Node directory store: chunked commits, abort and resume, model mismatch, orphans.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IndexMismatchError } from '../errors.ts';
import { openDirStore } from './fs-store.ts';
import { SemanticIndex } from './semantic-index.ts';
import { hashEmbedder } from './testing.ts';
import type { Embedder, EmbedOptions } from './types.ts';

const corpus = Array.from({ length: 100 }, (_, i) => ({ id: `doc-${i}`, text: `document ${i} about ${['cells', 'genes', 'proteins', 'blood', 'risk'][i % 5]} and topic ${i % 7}`, meta: { i } }));
const opts = (embedder: Embedder) => ({ embedder, dims: 32, layers: 3, storage: 'int8' as const, outputs: ['dense' as const, 'sparse' as const], chunkSize: 16 });

describe('persisted index (directory store)', () => {
  it('reopens with identical results; abort mid-add keeps whole chunks only and a second add resumes with nothing duplicated or missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3idx-'));
    const ctl = new AbortController();
    const a = hashEmbedder('hash-v1', (n) => n === 4 && ctl.abort()); // abort while embedding the 4th chunk
    const idx = await SemanticIndex.open(await openDirStore(dir), opts(a));
    await expect(idx.add(corpus, { signal: ctl.signal })).rejects.toThrow(/abort/i);
    expect(idx.stats().count).toBe(48); // three chunks of 16 committed
    expect(idx.stats().persisted).toEqual({ name: dir, chunks: 3, backend: 'fs' });

    const b = hashEmbedder();
    const again = await SemanticIndex.open(await openDirStore(dir), opts(b));
    expect(again.stats().count).toBe(48);
    const progress: number[] = [];
    const r = await again.add(corpus, { onProgress: (p) => progress.push(p.done) });
    expect(r).toEqual({ added: 52, skipped: 48 });
    expect(progress).toEqual([0, 16, 32, 48, 52]);
    expect(b.calls).toBe(4); // only the 52 missing documents were embedded
    expect(again.stats().count).toBe(100);
    for (const c of corpus) expect(again.has(c.id)).toBe(true);

    const fresh = await SemanticIndex.create(opts(hashEmbedder()));
    await fresh.add(corpus);
    const reopened = await SemanticIndex.open(await openDirStore(dir), opts(hashEmbedder()));
    for (const q of ['genes topic 3', 'blood risk', 'document 42']) {
      for (const mode of ['dense', 'sparse', 'hybrid'] as const) {
        const want = await fresh.search(q, { k: 10, mode });
        expect(await reopened.search(q, { k: 10, mode })).toEqual(want);
        expect(new Set(want.map((h) => h.id)).size).toBe(10);
      }
    }
  });

  it('remove rewrites only the chunks it touches; a reopened index has them gone; orphans of a crash are swept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3idx-'));
    const idx = await SemanticIndex.open(await openDirStore(dir), opts(hashEmbedder()));
    await idx.add(corpus);
    const before = readdirSync(dir).sort();
    expect(await idx.remove(['doc-0', 'doc-1', 'doc-99'])).toBe(3);
    const after = readdirSync(dir).sort();
    expect(after.filter((f) => !before.includes(f))).toHaveLength(2); // chunk 0 and the last chunk rewritten under new keys
    expect(before.filter((f) => !after.includes(f))).toEqual(['c0', 'c6']);
    writeFileSync(join(dir, 'c999'), 'half-written chunk from a crash');
    const back = await SemanticIndex.open(await openDirStore(dir), opts(hashEmbedder()));
    expect(readdirSync(dir)).not.toContain('c999');
    expect(back.stats().count).toBe(97);
    expect(back.has('doc-0') || back.has('doc-1') || back.has('doc-99')).toBe(false);
    expect(await back.search('document 1 about genes', { k: 97 })).toHaveLength(97);
  });

  it('another model, layers or dims is an IndexMismatchError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3idx-'));
    await (await SemanticIndex.open(await openDirStore(dir), opts(hashEmbedder()))).add(corpus.slice(0, 5));
    await expect(SemanticIndex.open(await openDirStore(dir), opts(hashEmbedder('hash-v2')))).rejects.toThrow(IndexMismatchError);
    await expect(SemanticIndex.open(await openDirStore(dir), { ...opts(hashEmbedder()), layers: 2 })).rejects.toThrow(/another layers/);
    await expect(SemanticIndex.open(await openDirStore(dir), { ...opts(hashEmbedder()), dims: 16 })).rejects.toThrow(/another dims/);
  });

  it('passes dims, layers, outputs and the prompts to the embedder', async () => {
    const seen: EmbedOptions[] = [];
    const e = hashEmbedder('hash-v1', (_, o) => seen.push(o));
    const idx = await SemanticIndex.create({ ...opts(e), docPrompt: 'passage: ', queryPrompt: 'query: ' });
    await idx.add(corpus.slice(0, 3));
    await idx.search('x');
    expect(seen.map(({ signal: _s, ...o }) => o)).toEqual([
      { outputs: ['dense', 'sparse'], dims: 32, layers: 3, prompt: 'passage: ' },
      { outputs: ['dense', 'sparse'], dims: 32, layers: 3, prompt: 'query: ' },
    ]);
  });
});

describe('open without repeating the stored settings', () => {
  it('takes dims, storage and outputs from the store; an empty index returns no hits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3idx-'));
    const first = await SemanticIndex.open(await openDirStore(dir), opts(hashEmbedder()));
    expect(await first.search('anything')).toEqual([]);
    await first.add(corpus.slice(0, 20));
    const back = await SemanticIndex.open(await openDirStore(dir), { modelId: 'hash-v1' });
    expect(back.stats()).toMatchObject({ count: 20, dims: 32, storage: 'int8', outputs: ['dense', 'sparse'], layers: 3 });
    const progress: number[] = [];
    const e = await hashEmbedder().embed(
      corpus.map((c) => c.text),
      { dims: 32 },
    ); // precomputed: this index has no embedder
    await back.add(
      corpus.map(({ id }, i) => ({ id, dense: e.embeddings.subarray(i * 32, (i + 1) * 32), sparse: e.sparse![i] })),
      { chunkSize: 40, onProgress: (p) => progress.push(p.done) },
    );
    expect(progress).toEqual([0, 40, 80]);
    expect(back.stats()).toMatchObject({ count: 100, persisted: { chunks: 4 } });
  });
});
