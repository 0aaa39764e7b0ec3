/**
 * Storage panel: the model files in the cache the engine reads (src/model/file-cache.ts), per model
 * with sizes and a delete button; the origin's usage and quota; the answer to navigator.storage.persist();
 * and what the cache refused (a failed validation, or a quota error) as the typed message.
 */
import { deleteCachedModel, listCachedModels, MODEL_CACHE_CHANNEL, type CacheEvent } from '../model/file-cache.ts';
import { byId, errorText, fmtBytes, h } from './dom.ts';
import { on } from './state.ts';

async function render(): Promise<void> {
  const list = byId('storage-list');
  try {
    const models = await listCachedModels();
    list.replaceChildren(
      models.length
        ? h(
            'ul',
            { class: 'cached' },
            ...models.map((m) =>
              h(
                'li',
                { 'data-base': m.base },
                // A copy quantised in this browser replaces the source's weight files (src/model/quant-cache.ts).
                h('span', {}, h('code', {}, m.base.replace(location.origin, '')), ` — ${m.files.length} files, ${fmtBytes(m.bytes)}${m.quantized.length ? `, weights ${m.quantized.join(' + ')} (quantised in this browser)` : ''}`),
                h('button', { type: 'button', class: 'secondary', 'aria-label': `delete ${m.base}`, onclick: () => void deleteCachedModel(m.base).then(render) }, 'Delete'),
              ),
            ),
          )
        : h('p', {}, 'No model files cached yet.'),
    );
    list.dataset.models = String(models.length);
    const est = await navigator.storage?.estimate?.();
    byId('storage-usage').textContent = est ? `this site uses ${fmtBytes(est.usage ?? 0)} of a ${fmtBytes(est.quota ?? 0)} quota` : 'storage estimate unavailable';
  } catch (e) {
    list.replaceChildren(h('p', { class: 'error', role: 'alert' }, errorText(e)));
  }
}

async function persist(): Promise<void> {
  const el = byId('storage-persist');
  if (!navigator.storage?.persist) {
    el.textContent = 'navigator.storage.persist() is not available here: the browser may evict cached models under storage pressure.';
    return;
  }
  const already = await navigator.storage.persisted();
  const granted = already || (await navigator.storage.persist());
  el.textContent = granted ? 'persistent storage granted: the browser will not evict cached models on its own.' : 'persistent storage not granted (navigator.storage.persist() answered false): cached models may be evicted under storage pressure.';
  el.dataset.persisted = String(granted);
}

export function initStorage(): void {
  byId('storage-refresh').addEventListener('click', () => void render());
  const log = byId('storage-events');
  if (typeof BroadcastChannel !== 'undefined') {
    let timer: ReturnType<typeof setTimeout> | undefined;
    new BroadcastChannel(MODEL_CACHE_CHANNEL).onmessage = (ev: MessageEvent<CacheEvent>) => {
      const e = ev.data;
      if (e.type === 'quota') log.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The cache is full; the model still runs from memory this visit but will download again next time. ${e.error}`));
      else if (e.type === 'rejected') log.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.error));
      clearTimeout(timer);
      timer = setTimeout(() => void render(), 200);
    };
  }
  on('session', () => void render());
  void persist();
  void render();
}
