import { readFileSync } from 'node:fs';
import { defineConfig, type Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { fixtureModelsPlugin } from './tools/vite-fixtures-plugin.ts';

// The playground serves generated fixture models from /models/<name>/ (see tools/fixtures).
// COOP/COEP make the page cross-origin isolated, which onnxruntime-web's threaded wasm needs. The price:
// every cross-origin subresource must opt in with CORS or Cross-Origin-Resource-Policy (the hub does:
// it answers with Access-Control-Allow-Origin: *), and the page cannot be framed or open cross-origin popups
// that talk back to it. The service worker adds the same two headers to what it serves (src/app/sw.ts).
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** The ORT wasm fallback (src/client/ort-service.ts, 'onnxruntime-web/wasm') loads these two files by URL; the build ships them at /ort/. */
const ORT_FILES = ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'];

function ortWasmPlugin(): Plugin {
  return {
    name: 'm3web-ort-wasm',
    apply: 'build',
    generateBundle() {
      for (const f of ORT_FILES) this.emitFile({ type: 'asset', fileName: `ort/${f}`, source: readFileSync(new URL(`./node_modules/onnxruntime-web/dist/${f}`, import.meta.url)) });
    },
  };
}

export default defineConfig({
  plugins: [
    fixtureModelsPlugin(),
    ortWasmPlugin(),
    VitePWA({
      strategies: 'injectManifest',
      srcDir: 'src/app',
      filename: 'sw.ts',
      injectRegister: false,
      registerType: 'autoUpdate',
      manifest: {
        name: 'm3web playground',
        short_name: 'm3web',
        description: 'Text embeddings in the browser with WebGPU: early exit, Matryoshka truncation, BGE-M3 outputs and in-page search, offline.',
        start_url: '/',
        scope: '/',
        display: 'standalone',
        background_color: '#ffffff',
        theme_color: '#1f5fbf',
        icons: [
          { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: '/icons/icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      injectManifest: {
        // App shell, worker bundles and ORT's wasm (14 MB: over Workbox's 2 MB default, so the limit is raised for it).
        // Model weights are never precached: public/models/ is left out and goes through the runtime model cache.
        globPatterns: ['**/*.{html,js,mjs,css,svg,png,wasm,webmanifest}'],
        // Vite also emits hashed copies of ORT's wasm (assets/ort-wasm-*.wasm, pulled in through @huggingface/transformers);
        // nothing loads them at run time (wasmPaths points at /ort/), so they are not precached.
        globIgnores: ['models/**', 'e2e/**', 'assets/ort-wasm-*.wasm'],
        maximumFileSizeToCacheInBytes: 20 * 1024 * 1024,
        rollupFormat: 'iife',
      },
      devOptions: { enabled: true, type: 'module', navigateFallback: 'index.html' },
    }),
  ],
  server: { headers: ISOLATION },
  preview: { headers: ISOLATION },
  worker: { format: 'es' },
  // Pre-bundle what workers import: the dep scanner does not follow `new Worker(new URL(...))`, and a
  // dependency discovered late makes vite reload the page mid-test. onnxruntime-web ships ready ESM
  // and loads its .wasm next to itself, so it is left alone.
  optimizeDeps: { include: ['comlink', '@huggingface/transformers', 'uplot', 'workbox-window'], exclude: ['onnxruntime-web'] },
});
