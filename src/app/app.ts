/**
 * The playground's views: each in its own module, wired here, then the default model (or `?model=`) is opened.
 * main.ts imports this once the service worker allows (see there) and calls start(): an exported function, not
 * top-level statements, because package.json's "sideEffects" marks every module but the workers side-effect free,
 * so the bundler would drop a module that only runs code when imported.
 */
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

export function start(): void {
  initModelPicker();
  initCard();
  initPlan();
  initCompare();
  initSearch();
  initStorage();
  networkStatus();
  const model = startModel();
  void openModel(model.url, model.label, model.random);
}
