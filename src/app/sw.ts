/// <reference lib="webworker" />
/**
 * The playground's service worker (vite-plugin-pwa, injectManifest). It precaches the app shell, the
 * worker bundles and onnxruntime-web's wasm (the build's file list, self.__WB_MANIFEST); serves model
 * files from the same Cache Storage bucket the engine's loader fills (src/model/file-cache.ts: one copy,
 * stored only after validation, never here); and adds COOP/COEP to every same-origin response it serves,
 * so a page loaded offline is cross-origin isolated like one from the server.
 */
import { clientsClaim, type WorkboxPlugin } from 'workbox-core';
import { addPlugins, cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { NetworkFirst } from 'workbox-strategies';
import { isModelFileUrl, serveModelFile } from '../model/file-cache.ts';

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: (string | { url: string; revision: string | null })[] };

const ISOLATION: Record<string, string> = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

function isolate(res: Response): Response {
  if (res.type !== 'basic' && res.type !== 'default') return res; // cross-origin and opaque responses keep their own headers
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(ISOLATION)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

const isolation: WorkboxPlugin = { handlerWillRespond: async ({ response }) => isolate(response) };

// Take over on first install: after one online visit the open page (and its reload) is served from here.
self.skipWaiting();
clientsClaim();

// Model files first (before the precache's routes): read from the engine's cache, else the network.
registerRoute(
  ({ url, request }) => request.method === 'GET' && isModelFileUrl(url, self.location.origin),
  async ({ request }) => serveModelFile(request),
);

addPlugins([isolation]);
precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();

if (import.meta.env.DEV) {
  // The dev server has no build manifest (modules are served one by one): keep what an online visit fetched.
  // ignoreVary: vite answers with `Vary: Origin`, and a module script's request carries an Origin header that the
  // worker's own re-fetch below does not: same-origin, the two are the same file.
  const devShell = new NetworkFirst({ cacheName: 'm3web-dev-shell', plugins: [isolation], matchOptions: { ignoreVary: true } });
  registerRoute(({ url, request }) => request.method === 'GET' && url.origin === self.location.origin, devShell);
  // First visit: what the page loaded before this worker controlled it is fetched again through the same strategy
  // (main.ts sends the URLs and waits for the answer before it loads the views), as workbox's Router.addCacheListener does.
  self.addEventListener('message', (ev: ExtendableMessageEvent) => {
    if ((ev.data as { type?: string } | null)?.type !== 'm3web-dev-cache') return;
    const requests = ((ev.data as { requests?: unknown }).requests as { url: string; accept: string }[]).filter((r) => {
      const url = new URL(r.url);
      return url.origin === self.location.origin && !isModelFileUrl(url, self.location.origin);
    });
    const cached = Promise.allSettled(requests.map((r) => devShell.handleAll({ event: ev, request: new Request(r.url, { headers: { Accept: r.accept } }) })[1]));
    ev.waitUntil(cached.then(() => ev.ports[0]?.postMessage({ type: 'm3web-dev-cached', count: requests.length })));
  });
} else {
  registerRoute(new NavigationRoute(createHandlerBoundToURL('index.html'), { denylist: [/^\/e2e\//, /^\/models\//, /^\/local-models\//] }));
}
