// The model-file cache's validator on real bytes: a fixture's safetensors and torch heads pass whole and
// fail when cut, an HTML page and a wrong Content-Length fail, JSON must parse. (Cache Storage itself is
// exercised in Chromium by e2e/playground-offline.spec.ts.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODELS_DIR } from '../../tools/fixtures/paths.ts';
import { formatOf, isModelFileUrl, ModelCacheError, modelBaseOf, validatingStream } from './file-cache.ts';

async function run(bytes: Uint8Array, url: string, expected: number | null, chunk = 997): Promise<Uint8Array> {
  const src = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += chunk) c.enqueue(bytes.slice(i, i + chunk));
      c.close();
    },
  });
  const out = new Uint8Array(await new Response(src.pipeThrough(validatingStream(url, formatOf(url), expected))).arrayBuffer());
  return out;
}

// Byte equality via Buffer.equals: vitest's deep toEqual walks a 2 MB typed array element by element (minutes).
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
const fixture = (f: string) => new Uint8Array(readFileSync(join(MODELS_DIR, 'xlmr-tiny', f)));

describe('validatingStream', () => {
  it('passes a whole safetensors file through unchanged, in any chunking', async () => {
    const st = fixture('model.safetensors');
    for (const chunk of [1 << 20, 4099, 61]) expect(same(await run(st, 'http://h/m/model.safetensors', st.length, chunk), st)).toBe(true);
    expect(same(await run(st, 'http://h/m/model.safetensors', null), st)).toBe(true); // no Content-Length: the header's offsets decide
  });
  it('refuses a cut safetensors file, with or without Content-Length', async () => {
    const st = fixture('model.safetensors');
    const cut = st.slice(0, st.length - 100);
    await expect(run(cut, 'http://h/m/model.safetensors', st.length)).rejects.toThrow(/download ended early; expected \d+ bytes \(Content-Length\); received \d+/);
    await expect(run(cut, 'http://h/m/model.safetensors', null)).rejects.toThrow(/safetensors size does not match its header/);
    await expect(run(st.slice(0, 20), 'http://h/m/model.safetensors', null)).rejects.toBeInstanceOf(ModelCacheError);
  });
  it('refuses an HTML page under any model file name', async () => {
    const html = new TextEncoder().encode('<!DOCTYPE html><html><body>index</body></html>');
    for (const f of ['config.json', 'sparse_linear.pt', 'model.onnx', 'tokenizer.model', 'model.safetensors']) await expect(run(html, `http://h/m/${f}`, html.length)).rejects.toBeInstanceOf(ModelCacheError);
  });
  it('checks the zip signature of torch files and that JSON parses', async () => {
    const pt = fixture('sparse_linear.pt');
    expect(same(await run(pt, 'http://h/m/sparse_linear.pt', pt.length), pt)).toBe(true);
    await expect(run(pt.slice(1), 'http://h/m/sparse_linear.pt', pt.length - 1)).rejects.toThrow(/not a zip archive/);
    const cfg = fixture('config.json');
    expect(same(await run(cfg, 'http://h/m/config.json', cfg.length, 3), cfg)).toBe(true);
    await expect(run(cfg.slice(0, cfg.length - 3), 'http://h/m/config.json', null)).rejects.toThrow(/JSON does not parse/);
    await expect(run(cfg, 'http://h/m/config.json', cfg.length + 1)).rejects.toThrow(/download ended early/);
    await expect(run(cfg, 'http://h/m/config.json', cfg.length - 1)).rejects.toThrow(/more bytes than Content-Length/);
  });
});

describe('model URLs', () => {
  it('groups files by model folder and routes only model files', () => {
    expect(modelBaseOf('https://huggingface.co/BAAI/bge-m3/resolve/main/onnx/model.onnx')).toBe('https://huggingface.co/BAAI/bge-m3/resolve/main/');
    expect(modelBaseOf('http://127.0.0.1:5173/models/xlmr-tiny/1_Pooling/config.json')).toBe('http://127.0.0.1:5173/models/xlmr-tiny/');
    expect(modelBaseOf('http://127.0.0.1:5173/local-models/my%20model/config.json')).toBe('http://127.0.0.1:5173/local-models/my%20model/');
    const o = 'http://127.0.0.1:5173';
    expect(isModelFileUrl(new URL(`${o}/models/x/config.json`), o)).toBe(true);
    expect(isModelFileUrl(new URL(`${o}/src/app/main.ts`), o)).toBe(false);
    expect(isModelFileUrl(new URL('https://huggingface.co/BAAI/bge-m3/resolve/main/config.json'), o)).toBe(true);
    expect(isModelFileUrl(new URL('https://huggingface.co/BAAI/bge-m3'), o)).toBe(false);
  });
});
