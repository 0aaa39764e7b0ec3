import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/model/load.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

// Conformance with the upstream implementations (issue #11): FlagEmbedding's M3 embedder and XLM-R.
let server: ModelServer;
beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
});
afterAll(async () => {
  await server?.close();
});

/** A fetch that answers 404 for the named files, as a folder without them would. */
const without =
  (...files: string[]): typeof fetch =>
  (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (files.some((f) => url.endsWith(`/${f}`))) return Promise.resolve(new Response('Entry not found', { status: 404 }));
    return fetch(input, init);
  };

describe('BGE-M3 dense pooling', () => {
  it('is CLS for a BGE-M3 layout without modules.json (FlagEmbedding always pools by CLS)', async () => {
    const m = await loadModel(server.folderUrl('xlmr-tiny'), { fetchImpl: without('modules.json') });
    expect(m.heads.size).toBe(4);
    expect(m.pooling).toEqual({ pooling: 'cls', normalize: true, layerNormBeforeTruncate: false });
  });
  it('stays the sentence-transformers fallback (mean) for the same encoder without heads', async () => {
    const m = await loadModel(server.folderUrl('xlmr-long'), { fetchImpl: without('modules.json') });
    expect(m.heads.size).toBe(0);
    expect(m.pooling.pooling).toBe('mean');
  });
});
