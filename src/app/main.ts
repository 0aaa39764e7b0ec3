/**
 * Playground entry: wires the views (each in its own module), registers the service worker that makes
 * the page work offline after one visit (src/app/sw.ts), and opens the default model.
 */
import { registerSW } from 'virtual:pwa-register';
import { initCard } from './card.ts';
import { initCompare } from './compare.ts';
import { byId } from './dom.ts';
import { initModelPicker, openModel, startModel } from './models.ts';
import { initPlan } from './plan.ts';
import { initSearch } from './search.ts';
import { initStorage } from './storage.ts';

function networkStatus(): void {
  const el = byId('net-status');
  const show = () => {
    el.textContent = navigator.onLine ? '' : 'Offline: running from the cache (app shell and model files).';
    document.documentElement.dataset.online = String(navigator.onLine);
  };
  addEventListener('online', show);
  addEventListener('offline', show);
  show();
}

function serviceWorker(): void {
  if (!('serviceWorker' in navigator)) return;
  registerSW({
    immediate: true,
    // A new worker took over: say so instead of vite-plugin-pwa's default reload, which would drop the open model and index.
    onNeedReload: () => (byId('net-status').textContent = 'A new version of the playground is cached: reload the page to use it.'),
    onRegisterError: (e: unknown) => (byId('net-status').textContent = `The offline cache could not start: ${String(e)}`),
  });
  // The worker claims the page on its first install (sw.ts), so "controlled" means offline-ready.
  void navigator.serviceWorker.ready.then(() => {
    const mark = () => navigator.serviceWorker.controller && (document.documentElement.dataset.sw = 'ready');
    mark();
    navigator.serviceWorker.addEventListener('controllerchange', mark);
  });
}

initModelPicker();
initCard();
initPlan();
initCompare();
initSearch();
initStorage();
networkStatus();
serviceWorker();
const start = startModel();
void openModel(start.url, start.label, start.random);
