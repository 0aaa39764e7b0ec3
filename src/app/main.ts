/**
 * Playground entry: registers the service worker that makes the page work offline after one visit
 * (src/app/sw.ts), then starts the views (app.ts).
 *
 * The production build precaches its whole file list, so there the views start at once. The dev server has
 * no build manifest: its worker caches what passes through it. So on a first dev visit the views wait until
 * the worker controls the page (clientsClaim, at most DEV_CONTROL_WAIT_MS), the worker re-fetches into its
 * cache what the page loaded before that (this file, vite's client, the stylesheet, the page itself), and only
 * then are the views and the model worker loaded, through the service worker. One online visit is then enough
 * on the dev server too.
 */
import { registerSW } from 'virtual:pwa-register';
import { byId } from './dom.ts';

const DEV_CONTROL_WAIT_MS = 10_000;

/** Resolves when the page is controlled (or after `ms`); false when it is not. */
function controlled(ms: number): Promise<boolean> {
  const sw = navigator.serviceWorker;
  if (sw.controller) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(!!sw.controller), ms);
    sw.addEventListener('controllerchange', () => (clearTimeout(t), resolve(true)), { once: true });
  });
}

/** Dev server, first visit: has the now-controlling worker cache the page's earlier requests (sw.ts, 'm3web-dev-cache'). */
async function devCacheEarlyRequests(): Promise<void> {
  if (!(await controlled(DEV_CONTROL_WAIT_MS))) return;
  // With the Accept header each was fetched with: vite answers a stylesheet <link> (Accept: text/css) with CSS, but the
  // same URL fetched plainly with a JS module that injects it, which a <link> cannot apply.
  const entries = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
  const requests = [{ url: location.href, accept: 'text/html' }, ...entries.map((e) => ({ url: e.name, accept: e.initiatorType === 'link' && new URL(e.name).pathname.endsWith('.css') ? 'text/css,*/*;q=0.1' : '*/*' }))].filter(
    (r) => new URL(r.url).origin === location.origin,
  );
  const channel = new MessageChannel();
  const done = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, DEV_CONTROL_WAIT_MS);
    channel.port1.onmessage = () => (clearTimeout(t), resolve());
  });
  navigator.serviceWorker.controller!.postMessage({ type: 'm3web-dev-cache', requests }, [channel.port2]);
  await done;
}

/** Registers the worker; resolves when the views may start. `data-sw="ready"` on <html> means offline-ready. */
async function serviceWorker(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  const firstVisit = !navigator.serviceWorker.controller;
  registerSW({
    immediate: true,
    // A new worker took over: say so instead of vite-plugin-pwa's default reload, which would drop the open model and index.
    onNeedReload: () => (byId('net-status').textContent = 'A new version of the playground is cached: reload the page to use it.'),
    onRegisterError: (e: unknown) => (byId('net-status').textContent = `The offline cache could not start: ${String(e)}`),
  });
  const mark = () => navigator.serviceWorker.controller && (document.documentElement.dataset.sw = 'ready');
  if (import.meta.env.DEV && firstVisit) {
    await devCacheEarlyRequests();
    mark();
    return;
  }
  // The worker claims the page on its first install (sw.ts); in the build, "controlled" means precached, so offline-ready.
  void navigator.serviceWorker.ready.then(() => {
    mark();
    navigator.serviceWorker.addEventListener('controllerchange', mark);
  });
}

// The views start whatever the service worker did: without it the page still works, online.
void serviceWorker()
  .catch(() => undefined)
  .then(() => import('./app.ts'))
  .then((app) => app.start());
