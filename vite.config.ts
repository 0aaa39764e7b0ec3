import { defineConfig } from 'vite';
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

export default defineConfig({
  plugins: [
    fixtureModelsPlugin(),
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
        // App shell, worker bundles and the onnxruntime-web wasm the CPU backend (src/cpu) loads: vite emits it as
        // assets/ort-wasm-simd-threaded-<hash>.wasm, 14 MB, over Workbox's 2 MB default, so the limit is raised.
        // Left out: model weights (public/models/: they go through the runtime model cache, never the precache) and
        // ORT's other builds (asyncify/jsep/jspi), which vite emits through @huggingface/transformers but nothing loads.
        globPatterns: ['**/*.{html,js,mjs,css,svg,png,wasm,webmanifest}'],
        globIgnores: ['models/**', 'e2e/**', 'assets/ort-wasm-simd-threaded.{asyncify,jsep,jspi}-*.{wasm,mjs}'],
        maximumFileSizeToCacheInBytes: 20 * 1024 * 1024,
        rollupFormat: 'iife',
      },
      devOptions: { enabled: true, type: 'module', navigateFallback: 'index.html' },
    }),
  ],
  // dist/app, beside the library build's dist/lib (vite.lib.config.ts): emptying one never wipes the other.
  // keepNames: typed errors set `name = new.target.name` (src/errors.ts); minified class names would show "at: …" instead of "BudgetError: …".
  build: { outDir: 'dist/app', emptyOutDir: true, rolldownOptions: { output: { keepNames: true } } },
  server: { headers: ISOLATION },
  preview: { headers: ISOLATION },
  worker: { format: 'es', rolldownOptions: { output: { keepNames: true } } },
  // Pre-bundle what workers import: the dep scanner does not follow `new Worker(new URL(...))`, and a
  // dependency discovered late makes vite reload the page mid-test. onnxruntime-web ships ready ESM
  // and loads its .wasm next to itself, so it is left alone.
  // The service worker's workbox modules, the CPU backend's onnx-proto and the search's idb count too.
  optimizeDeps: {
    include: ['comlink', '@huggingface/transformers', 'uplot', 'workbox-window', 'workbox-core', 'workbox-precaching', 'workbox-routing', 'workbox-strategies', 'onnx-proto', 'idb'],
    exclude: ['onnxruntime-web'],
  },
});
