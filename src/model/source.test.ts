import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidInputError, ModelFetchError } from '../errors.ts';
import { fetchModelFile, openModelStream, resolveModelSource, type ModelSource } from './source.ts';

// A local server with the hub's layout (/<org>/<name>/resolve/<rev>/<file>) and a dev-server-like
// folder (/models/tiny/) whose unknown paths fall back to index.html with status 200.
const CONFIG = { model_type: 'bert', hidden_size: 128, num_hidden_layers: 2 };
const BLOB = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 2654435761) >>> 24);
const INDEX_HTML = '\n  <!DOCTYPE html><html><head><title>app</title></head><body></body></html>';
const CHUNK = 32 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `bytes` in CHUNK-sized writes with a pause between them, so the client sees several chunks. */
async function sendChunked(res: ServerResponse, bytes: Uint8Array, pauseMs: number, contentLength = bytes.length): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(contentLength) });
  for (let off = 0; off < bytes.length; off += CHUNK) {
    if (res.destroyed) return;
    res.write(bytes.subarray(off, off + CHUNK));
    await sleep(pauseMs);
  }
  res.end();
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const hub = /^\/org\/name\/resolve\/([^/]+)\/(.+)$/.exec(path);
  const dev = /^\/models\/tiny\/(.+)$/.exec(path);
  const file = hub?.[2] ?? dev?.[1];
  if (hub && hub[1] !== 'abc123') {
    res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end('Invalid rev id');
    return;
  }
  if (path.startsWith('/private/')) {
    res.writeHead(401, { 'x-error-code': 'RepoNotFound' }).end('Repository not found');
    return;
  }
  switch (file) {
    case 'config.json':
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(CONFIG));
      return;
    case 'vocab.txt':
      res.writeHead(200, { 'content-type': 'text/plain' }).end('[PAD]\n[UNK]\nhello\n');
      return;
    case 'model.bin':
      return sendChunked(res, BLOB, 2);
    case 'slow.bin':
      return sendChunked(res, BLOB, 50);
    case 'truncated.bin':
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' });
      res.write(BLOB.subarray(0, 500));
      await sleep(10);
      res.destroy(); // the connection drops before Content-Length bytes arrived
      return;
    case 'bad.json':
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"model_type": "bert",');
      return;
    case 'broken.json':
      res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
      return;
    case 'sniff.bin': {
      // HTML with a binary content-type, dribbled 3 bytes at a time: only the body sniff can catch it.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const bytes = new TextEncoder().encode(INDEX_HTML);
      for (let i = 0; i < bytes.length; i += 3) {
        res.write(bytes.subarray(i, i + 3));
        await sleep(1);
      }
      res.end();
      return;
    }
  }
  if (dev) {
    // Vite/`serve -s` style SPA fallback: any unknown path gets the app's index.html.
    res.writeHead(200, { 'content-type': 'text/html' }).end(INDEX_HTML);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain', 'x-error-code': 'EntryNotFound' }).end('Entry not found');
}

let server: Server;
let origin = '';
let hub: ModelSource;
let dev: ModelSource;

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub = resolveModelSource({ hubId: 'org/name', revision: 'abc123', endpoint: origin });
  dev = resolveModelSource(`${origin}/models/tiny`);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterEach(() => {
  vi.unstubAllGlobals();
});

/** The rejection of `p`, failing the test if it resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('resolveModelSource', () => {
  it('builds hub URLs exactly', () => {
    expect(hub.url('config.json')).toBe(`${origin}/org/name/resolve/abc123/config.json`);
    expect(hub.id).toBe('org/name@abc123');
    const m3 = resolveModelSource('BAAI/bge-m3');
    expect(m3.kind).toBe('hub');
    expect(m3.url('config.json')).toBe('https://huggingface.co/BAAI/bge-m3/resolve/main/config.json');
    expect(m3.url('onnx/model.onnx')).toBe('https://huggingface.co/BAAI/bge-m3/resolve/main/onnx/model.onnx');
    expect(resolveModelSource('sentence-transformers/all-MiniLM-L6-v2').url('tokenizer.json')).toBe('https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/tokenizer.json');
    // A revision is one path segment on the hub.
    expect(resolveModelSource({ hubId: 'a/b', revision: 'refs/pr/1', endpoint: 'https://mirror.example/' }).url('x.json')).toBe('https://mirror.example/a/b/resolve/refs%2Fpr%2F1/x.json');
    expect(m3.describe()).toContain('BAAI/bge-m3');
  });

  it('builds base-URL URLs exactly, with or without the trailing slash', () => {
    expect(dev.url('config.json')).toBe(`${origin}/models/tiny/config.json`);
    expect(resolveModelSource(`${origin}/models/tiny/`).url('config.json')).toBe(`${origin}/models/tiny/config.json`);
    expect(resolveModelSource({ baseUrl: 'http://127.0.0.1:5173/models/bert-tiny/' }).url('model.safetensors')).toBe('http://127.0.0.1:5173/models/bert-tiny/model.safetensors');
    expect(dev.kind).toBe('url');
    expect(dev.id).toBe(`${origin}/models/tiny/`);
  });

  it('resolves relative URLs against location when there is one', () => {
    vi.stubGlobal('location', { href: 'http://localhost:5173/app/index.html' });
    expect(resolveModelSource('/models/bert-tiny').url('config.json')).toBe('http://localhost:5173/models/bert-tiny/config.json');
    expect(resolveModelSource('./models/bert-tiny/').url('config.json')).toBe('http://localhost:5173/app/models/bert-tiny/config.json');
  });

  it('rejects a relative URL without a location (Node)', () => {
    expect(() => resolveModelSource('/models/bert-tiny')).toThrow(InvalidInputError);
    expect(() => resolveModelSource({ baseUrl: './models' })).toThrow(/relative URL/);
  });

  it('rejects invalid specs with InvalidInputError', () => {
    const bad: unknown[] = [
      '',
      'bert',
      'a/b/c',
      'org/name/',
      '../x/y',
      'ftp://host/models/',
      'localhost:5173/models',
      'http://',
      42,
      null,
      undefined,
      {},
      [],
      { hubId: 'nope' },
      { hubId: 'a/b', revision: '' },
      { baseUrl: 1 },
      { hubId: 'a/b', baseUrl: 'http://x/' },
      { hubId: 'a/b', endpoint: 'not a url' },
    ];
    for (const spec of bad) {
      expect(() => resolveModelSource(spec as never), JSON.stringify(spec)).toThrow(InvalidInputError);
    }
    expect(() => resolveModelSource('bert')).toThrow(/org\/name/);
  });

  it('rejects file names that escape the model folder', () => {
    for (const file of ['', '/etc/passwd', '../x.json', 'a//b', 'http://evil/x']) {
      expect(() => hub.url(file), file).toThrow(InvalidInputError);
    }
  });
});

describe('fetchModelFile', () => {
  it('parses JSON and text from the hub layout and from a base URL', async () => {
    expect(await fetchModelFile(hub, 'config.json', { kind: 'json' })).toEqual(CONFIG);
    expect(await fetchModelFile(dev, 'config.json', { kind: 'json' })).toEqual(CONFIG);
    expect(await fetchModelFile(hub, 'vocab.txt', { kind: 'text' })).toBe('[PAD]\n[UNK]\nhello\n');
  });

  it('assembles a chunked binary with monotone progress ending at the total', async () => {
    const progress: [number, number | null][] = [];
    const bytes = await fetchModelFile(hub, 'model.bin', { kind: 'binary', onProgress: (l, t) => progress.push([l, t]) });
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(bytes.length).toBe(BLOB.length);
    expect(Buffer.from(bytes).equals(Buffer.from(BLOB))).toBe(true);
    expect(progress.length).toBeGreaterThan(3); // several chunks, not one buffered blob
    expect(progress[0]).toEqual([0, BLOB.length]);
    for (let i = 1; i < progress.length; i++) expect(progress[i][0]).toBeGreaterThanOrEqual(progress[i - 1][0]);
    expect(progress.every(([, t]) => t === BLOB.length)).toBe(true);
    expect(progress.at(-1)).toEqual([BLOB.length, BLOB.length]);
  });

  it('resolves null for a missing optional file, throws 404 for a required one', async () => {
    expect(await fetchModelFile(hub, 'missing.json', { kind: 'json', optional: true })).toBeNull();
    expect(await fetchModelFile(hub, 'missing.bin', { kind: 'binary', optional: true })).toBeNull();
    const err = await rejection(fetchModelFile(hub, 'missing.json', { kind: 'json' }));
    expect(err).toBeInstanceOf(ModelFetchError);
    expect((err as ModelFetchError).status).toBe(404);
    expect((err as ModelFetchError).message).toContain('missing.json');
    expect((err as ModelFetchError).url).toBe(`${origin}/org/name/resolve/abc123/missing.json`);
  });

  it('throws even for optional files when the repo or revision is the problem (401, RevisionNotFound)', async () => {
    const priv = resolveModelSource({ hubId: 'private/repo', endpoint: origin });
    const e401 = await rejection(fetchModelFile(priv, 'tokenizer_config.json', { kind: 'json', optional: true }));
    expect(e401).toBeInstanceOf(ModelFetchError);
    expect((e401 as ModelFetchError).status).toBe(401);
    const badRev = resolveModelSource({ hubId: 'org/name', revision: 'nope', endpoint: origin });
    const eRev = await rejection(fetchModelFile(badRev, 'tokenizer_config.json', { kind: 'json', optional: true }));
    expect((eRev as ModelFetchError).status).toBe(404);
    expect((eRev as ModelFetchError).message).toContain('RevisionNotFound');
  });

  it('rejects an HTML page served for a JSON file (dev-server fallback)', async () => {
    const err = await rejection(fetchModelFile(dev, 'tokenizer_config.json', { kind: 'json', optional: true }));
    expect(err).toBeInstanceOf(ModelFetchError);
    expect((err as Error).message).toMatch(/expected JSON, received an HTML page/);
    // Also for binaries, and also when the content-type lies (body sniffing).
    expect(await rejection(fetchModelFile(dev, 'model.safetensors', { kind: 'binary' }))).toBeInstanceOf(ModelFetchError);
    const sniffed = await rejection(fetchModelFile(hub, 'sniff.bin', { kind: 'binary' }));
    expect(sniffed).toBeInstanceOf(ModelFetchError);
    expect((sniffed as Error).message).toMatch(/HTML/);
  });

  it('wraps invalid JSON in ModelFetchError', async () => {
    const err = await rejection(fetchModelFile(hub, 'bad.json', { kind: 'json' }));
    expect(err).toBeInstanceOf(ModelFetchError);
    expect((err as Error).message).toMatch(/not valid JSON/);
    expect((err as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it('throws ModelFetchError with status 500', async () => {
    const err = await rejection(fetchModelFile(hub, 'broken.json', { kind: 'json', optional: true }));
    expect(err).toBeInstanceOf(ModelFetchError);
    expect((err as ModelFetchError).status).toBe(500);
  });

  it('wraps network failures and truncated downloads', async () => {
    const refused = resolveModelSource({ baseUrl: 'http://127.0.0.1:1/models/' });
    const err = await rejection(fetchModelFile(refused, 'config.json', { kind: 'json' }));
    expect(err).toBeInstanceOf(ModelFetchError);
    expect((err as Error).cause).toBeDefined();
    const failing: typeof fetch = () => Promise.reject(new TypeError('Failed to fetch'));
    const e2 = await rejection(fetchModelFile(hub, 'config.json', { kind: 'json', fetchImpl: failing }));
    expect(e2).toBeInstanceOf(ModelFetchError);
    expect((e2 as Error).cause).toBeInstanceOf(TypeError);
    expect(await rejection(fetchModelFile(hub, 'truncated.bin', { kind: 'binary' }))).toBeInstanceOf(ModelFetchError);
  });

  it('rejects with AbortError when aborted mid-download, unwrapped', async () => {
    const ctl = new AbortController();
    let calls = 0;
    const err = await rejection(
      fetchModelFile(hub, 'slow.bin', {
        kind: 'binary',
        signal: ctl.signal,
        onProgress: (loaded) => {
          if (loaded > 0 && ++calls === 2) ctl.abort();
        },
      }),
    );
    expect(err).not.toBeInstanceOf(ModelFetchError);
    expect((err as Error).name).toBe('AbortError');
    expect(calls).toBeLessThan(5); // stopped early, not after the whole file

    const pre = new AbortController();
    pre.abort();
    expect(((await rejection(fetchModelFile(hub, 'config.json', { kind: 'json', signal: pre.signal }))) as Error).name).toBe('AbortError');

    const custom = new AbortController();
    const reason = new Error('user cancelled');
    const p = fetchModelFile(hub, 'slow.bin', { kind: 'binary', signal: custom.signal });
    setTimeout(() => custom.abort(reason), 60);
    expect(await rejection(p)).toBe(reason);
  });
});

describe('openModelStream', () => {
  it('streams the bytes with total and progress', async () => {
    const progress: number[] = [];
    const opened = await openModelStream(hub, 'model.bin', { onProgress: (l) => progress.push(l) });
    expect(opened).not.toBeNull();
    expect(opened!.total).toBe(BLOB.length);
    const chunks: Uint8Array[] = [];
    for await (const chunk of opened!.stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(Buffer.from(BLOB))).toBe(true);
    expect(progress.at(-1)).toBe(BLOB.length);
  });

  it('returns null for a missing optional file and rejects HTML', async () => {
    expect(await openModelStream(hub, 'missing.safetensors', { optional: true })).toBeNull();
    await expect(openModelStream(dev, 'model.safetensors')).rejects.toThrow(/HTML/);
    const sniffed = await openModelStream(hub, 'sniff.bin');
    const err = await rejection(new Response(sniffed!.stream).arrayBuffer());
    expect(err).toBeInstanceOf(ModelFetchError);
  });

  it('errors the stream with AbortError when aborted while reading', async () => {
    const ctl = new AbortController();
    const opened = await openModelStream(hub, 'slow.bin', { signal: ctl.signal });
    const reader = opened!.stream.getReader();
    expect((await reader.read()).done).toBe(false);
    ctl.abort();
    const err = await rejection(
      (async () => {
        for (;;) if ((await reader.read()).done) return;
      })(),
    );
    expect((err as Error).name).toBe('AbortError');
  });
});
