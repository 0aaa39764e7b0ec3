// The installable package, end to end: `npm pack` → a fresh vite app that installs the tarball (offline, from the npm
// cache) → `vite build` → that built app in Chromium with WebGPU. M3Client, imported from 'm3web', runs its worker
// as the app's bundler emitted it and returns dense, sparse and ColBERT outputs, which must match the CPU reference.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { expect, test } from '@playwright/test';
import { computeScore } from '../src/search/score.ts';
import { diffFromReference, packedApp, type M3Outputs, type PackedApp } from '../tests/helpers/package-app.ts';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const TEXTS = ['The package installs from a tarball.', 'Le paquet s’installe depuis une archive.', 'пакет'];

let app: PackedApp;
let server: Server;
let origin: string;

test.beforeAll(async () => {
  test.setTimeout(600_000); // pack (tsc + vite), npm install from the cache, tsc + vite build of the app
  app = packedApp();
  const root = join(app.dir, 'dist');
  // A static host for the app's build: real 404s, no SPA fallback.
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = resolve(root, '.' + (path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.afterAll(() => new Promise<void>((ok) => (server ? server.close(() => ok()) : ok())));

test('a vite app built against the packed tarball embeds dense + sparse + ColBERT on WebGPU', async ({ page }) => {
  console.log(`[package] ${app.tarball}: ${app.size} bytes packed, ${app.unpackedSize} unpacked, ${app.files.length} files`);
  expect(app.files).toEqual(expect.arrayContaining(['package.json', 'lib/index.js', 'lib/node.js', 'lib/embed.worker.js', 'lib/types/index.d.ts', 'lib/types/node.d.ts']));
  expect(app.files.filter((f) => !f.startsWith('lib/') && f !== 'package.json' && f !== 'README.md')).toEqual([]);

  await page.goto(`${origin}/`);
  await page.waitForFunction(() => document.body.dataset.ready === '1');
  const out = await page.evaluate((texts) => window.__embedAll('/models/xlmr-tiny/', texts), TEXTS);
  expect(out.backend).toBe('webgpu');
  expect([out.n, out.dims]).toEqual([TEXTS.length, 52]);
  const d = await diffFromReference('xlmr-tiny', TEXTS, out as M3Outputs);
  console.log(`[package] max |Δ| vs CPU reference: dense ${d.dense.toExponential(2)}, sparse ${d.sparse.toExponential(2)}, colbert ${d.colbert.toExponential(2)}`);
  expect(d.dense).toBeLessThanOrEqual(1e-4);
  expect(d.sparseIdsEqual).toBe(true);
  expect(d.sparse).toBeLessThanOrEqual(1e-4);
  expect(d.colbertCounts).toEqual(d.refCounts);
  expect(d.colbert).toBeLessThanOrEqual(1e-4);
  // The package's computeScore in the page gives what the source's gives here on the same vectors.
  const rep = (i: number) => ({
    dense: Float32Array.from(out.dense.slice(i * out.dims, (i + 1) * out.dims)),
    sparse: { ids: Uint32Array.from(out.sparse[i].ids), weights: Float32Array.from(out.sparse[i].weights) },
    colbert: { data: Float32Array.from(out.colbert[i].data), count: out.colbert[i].count, dim: out.colbert[i].dim },
  });
  const want = computeScore(rep(0), rep(1), [0.4, 0.2, 0.4]);
  for (const [k, v] of Object.entries(want)) expect(out.score[k], k).toBeCloseTo(v, 9);
});

declare global {
  interface Window {
    __embedAll: (model: string, texts: string[]) => Promise<M3Outputs & { backend: string; score: Record<string, number> }>;
  }
}
