/**
 * The library build (`npm run build:lib`) into lib/ (not dist/: the playground's `vite build` empties that): index.js ('m3web'),
 * node.js ('m3web/node'), every worker the code starts as its own entry (embed.worker.js, …), shared chunks, and
 * (from tsc -p tsconfig.lib.json) types/*.d.ts.
 *
 * Workers: the source says `new Worker(new URL('../../workers/embed.worker.ts', import.meta.url), …)`. Vite's own
 * handling of that pattern in library mode would bundle the worker into an asset and write
 * `new URL('/assets/x.worker-HASH.js', '' + import.meta.url)` behind a vite-ignore comment, which an app's bundler
 * no longer recognises as a worker. So `workerEntries` turns each such worker into a named entry chunk and, once
 * chunks are rendered, writes the plain pattern back with the output name:
 * `new Worker(new URL('./embed.worker.js', import.meta.url), …)`.
 * An app's vite (or webpack 5, or rollup with a worker plugin) then bundles that worker with the app.
 *
 * Dependencies stay imports (the app resolves and dedupes them); nothing is minified (the app minifies).
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
const external = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {}), 'webgpu'];
const isExternal = (id: string) => id.startsWith('node:') || external.some((d) => id === d || id.startsWith(`${d}/`));

const WORKER = /new\s+Worker\(\s*new\s+URL\(\s*(['"])([^'"]+\.worker\.ts)\1\s*,\s*import\.meta\.url\s*\)/g;
const PLACEHOLDER = /__M3WEB_WORKER_URL__\("([\w.-]+)"\)/g;

function workerEntries(): Plugin {
  const names = new Map<string, string>(); // output name → absolute source path
  return {
    name: 'm3web-worker-entries',
    enforce: 'pre',
    apply: 'build',
    transform(code, id) {
      if (!code.includes('new Worker(')) return null;
      let changed = false;
      const out = code.replace(WORKER, (_m, _q, rel: string) => {
        const file = resolve(dirname(id), rel);
        const name = basename(file, '.ts');
        if (names.has(name) && names.get(name) !== file) this.error(`two workers named ${name}: ${names.get(name)} and ${file}`);
        if (!names.has(name)) {
          names.set(name, file);
          this.emitFile({ type: 'chunk', id: file, fileName: `${name}.js` });
        }
        changed = true;
        return `new Worker(__M3WEB_WORKER_URL__("${name}")`;
      });
      return changed ? { code: out, map: null } : null;
    },
    renderChunk(code) {
      if (!code.includes('__M3WEB_WORKER_URL__')) return null;
      // Every chunk sits at the root of lib/, so the worker is always a sibling.
      return { code: code.replace(PLACEHOLDER, (_m, name: string) => `new URL("./${name}.js", import.meta.url)`), map: null };
    },
  };
}

export default defineConfig({
  // Not the playground's config (vite.config.ts): no fixture server, no public dir in the package.
  publicDir: false,
  plugins: [workerEntries()],
  build: {
    outDir: 'lib',
    emptyOutDir: false, // lib/types comes from tsc (see the build:lib script), which runs first
    target: 'es2022',
    minify: false,
    sourcemap: true,
    lib: { entry: { index: 'src/index.ts', node: 'src/node.ts' }, formats: ['es'] },
    rollupOptions: {
      external: isExternal,
      output: { entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
    },
  },
});
