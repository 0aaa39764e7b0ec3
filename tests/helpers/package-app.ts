/**
 * The package as a user gets it: `npm run build:lib`, `npm pack` (a plain `npm pack` runs build:lib itself, as
 * `prepack`), then a fresh vite app in a temporary folder that installs the tarball from the npm cache (`npm install --prefer-offline`), type-checks against
 * the package's .d.ts and builds with vite. Used by e2e/package.spec.ts (the built app in Chromium) and
 * tests/package-node.test.ts ('m3web/node' from the installed package).
 *
 * The installed app is reused across test files when the tarball's sha is the same (a `.ready` marker holds it), so
 * `npm test` installs once; a changed package gets a fresh folder.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { loadModel } from '../../src/node.ts';
import { ReferenceEncoder } from '../../src/reference/model.ts';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { MODELS_DIR, REPO_ROOT } from '../../tools/fixtures/paths.ts';
import { maxAbs, sparseMaxAbs } from '../../tools/parity/goldens.ts';

export interface PackedApp {
  /** The temporary app's folder; its vite build is in `dist/`, the fixture model in `dist/models/<name>/`. */
  dir: string;
  tarball: string;
  /** From `npm pack --json`. */
  size: number;
  unpackedSize: number;
  files: string[];
}

/** Fixture models the app serves (copied into public/models/). */
export const APP_MODELS = ['xlmr-tiny'];

const pkg = JSON.parse(readFileSync(resolve(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };

const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });

const MAIN_TS = `// What a user writes: the package's public entry only.
import { M3Client, computeScore, type ClientEmbedResult } from 'm3web';

async function embedAll(model: string, texts: string[]) {
  const m3 = await M3Client.create({ model, backend: 'webgpu', calibration: 'skip' });
  try {
    const r: ClientEmbedResult = await m3.embed(texts, { outputs: ['dense', 'sparse', 'colbert'], layers: m3.info.layers, dims: m3.info.hidden });
    const d = r.dims;
    const rep = (i: number) => ({ dense: r.embeddings.subarray(i * d, (i + 1) * d), sparse: r.sparse![i], colbert: r.colbert![i] });
    return {
      backend: m3.plan.backend,
      n: r.n,
      dims: d,
      dense: Array.from(r.embeddings),
      sparse: r.sparse!.map((s) => ({ ids: Array.from(s.ids), weights: Array.from(s.weights) })),
      colbert: r.colbert!.map((c) => ({ count: c.count, dim: c.dim, data: Array.from(c.data) })),
      score: computeScore(rep(0), rep(1), [0.4, 0.2, 0.4]),
    };
  } finally {
    m3.dispose();
  }
}

// The .d.ts must give real types, not any: tsc fails on an unused @ts-expect-error.
export function typesAreReal(m3: M3Client) {
  // @ts-expect-error embed takes strings
  return m3.embed([42]);
}

declare global {
  interface Window {
    __embedAll: typeof embedAll;
  }
}
window.__embedAll = embedAll;
document.body.dataset.ready = '1';
`;

const NODE_MJS = `// 'm3web/node' through the package's exports map, on a local model folder.
import { openEngine } from 'm3web/node';
const [folder, ...texts] = process.argv.slice(2);
const m3 = await openEngine(folder);
try {
  const r = await m3.embed(texts, { outputs: ['dense', 'sparse', 'colbert'] });
  const out = { icd: m3.icd, n: r.n, dims: r.dims, dense: Array.from(r.embeddings), sparse: r.sparse.map((s) => ({ ids: Array.from(s.ids), weights: Array.from(s.weights) })), colbert: r.colbert.map((c) => ({ count: c.count, dim: c.dim, data: Array.from(c.data) })) };
  process.stdout.write(JSON.stringify(out));
} finally {
  m3.dispose();
}
`;

let cached: PackedApp | null = null;

export function packedApp(): PackedApp {
  if (cached) return cached;
  const work = join(tmpdir(), 'm3web-package');
  mkdirSync(work, { recursive: true });
  // The build first, then pack without scripts, so that stdout is only pack's JSON.
  run('npm', ['run', 'build:lib'], REPO_ROOT);
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], REPO_ROOT)) as { filename: string; shasum: string; size: number; unpackedSize: number; files: { path: string }[] }[];
  return (cached = installApp({ tarball: join(work, packed.filename), shasum: packed.shasum, size: packed.size, unpackedSize: packed.unpackedSize, files: packed.files.map((f) => f.path).sort() }));
}

/** The consumer app for one tarball (reused when its folder is complete for the same sha). */
export function installApp(t: Omit<PackedApp, 'dir'> & { shasum: string }): PackedApp {
  ensureFixtures();
  const { shasum, ...rest } = t;
  const dir = join(dirname(t.tarball), `app-${shasum.slice(0, 12)}`);
  const info = { dir, ...rest };
  if (existsSync(join(dir, '.ready'))) return info;

  // Each app holds a full node_modules (~0.9 GB): drop those of other tarballs made over an hour ago (a younger one
  // may belong to a test process still running).
  for (const old of readdirSync(dirname(t.tarball))) {
    const p = join(dirname(t.tarball), old);
    if (old.startsWith('app-') && p !== dir && Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'src'), { recursive: true });
  const dev = pkg.devDependencies;
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'm3web-consumer', private: true, type: 'module', dependencies: { m3web: `file:${t.tarball}` }, devDependencies: { typescript: dev.typescript, vite: dev.vite, webgpu: dev.webgpu, '@webgpu/types': dev['@webgpu/types'] } }, null, 2),
  );
  // The repo's .npmrc: onnxruntime-node (a transformers.js dependency) must not download binaries at install.
  cpSync(resolve(REPO_ROOT, '.npmrc'), join(dir, '.npmrc'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><html><head><meta charset="utf-8"><title>m3web consumer</title></head><body><script type="module" src="/src/main.ts"></script></body></html>\n');
  writeFileSync(join(dir, 'src/main.ts'), MAIN_TS);
  writeFileSync(join(dir, 'node-embed.mjs'), NODE_MJS);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2023', 'DOM'], types: ['@webgpu/types'], strict: true, noEmit: true, skipLibCheck: true }, include: ['src'] }, null, 2),
  );
  // Workers with code splitting need ES module output (vite's default worker format is iife).
  writeFileSync(join(dir, 'vite.config.js'), "export default { worker: { format: 'es' } };\n");
  for (const m of APP_MODELS) cpSync(resolve(MODELS_DIR, m), join(dir, 'public/models', m), { recursive: true });

  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], dir);
  run('npx', ['tsc', '-p', 'tsconfig.json'], dir);
  run('npx', ['vite', 'build'], dir);
  writeFileSync(join(dir, '.ready'), shasum);
  return info;
}

/** BGE-M3's three outputs as the apps above print them (JSON). */
export interface M3Outputs {
  n: number;
  dims: number;
  dense: number[];
  sparse: { ids: number[]; weights: number[] }[];
  colbert: { count: number; dim: number; data: number[] }[];
}

/** Worst differences from the f32 CPU reference (src/reference, the oracle) on the same fixture and texts, full depth. */
export async function diffFromReference(fixture: string, texts: string[], got: M3Outputs): Promise<{ dense: number; sparse: number; colbert: number; sparseIdsEqual: boolean; colbertCounts: number[]; refCounts: number[] }> {
  const model = await loadModel(resolve(MODELS_DIR, fixture));
  const ref = new ReferenceEncoder(model).bgeM3(texts);
  const colbertDim = model.heads.get('colbert_linear.weight')!.shape[0];
  return {
    dense: maxAbs(Float32Array.from(got.dense), ref.dense),
    sparse: Math.max(...got.sparse.map((s, i) => sparseMaxAbs(s, ref.sparse[i]))),
    sparseIdsEqual: got.sparse.every((s, i) => s.ids.join() === Array.from(ref.sparse[i].ids).join()),
    colbert: Math.max(...got.colbert.map((c, i) => maxAbs(Float32Array.from(c.data), ref.colbert[i]))),
    colbertCounts: got.colbert.map((c) => c.count),
    refCounts: ref.colbert.map((c) => c.length / colbertDim),
  };
}
