/**
 * Model picker: the bundled default, any Hugging Face id (downloaded by the real loader, with a byte
 * progress bar and an ETA), or a local folder (File System Access API, a folder input, or drag-and-drop),
 * which is put in the model-file cache and then loaded by URL like any other folder.
 */
import { storeLocalModel } from '../model/file-cache.ts';
import { byId, errorText, fmtBytes, h, showError } from './dom.ts';
import { Session, type ClientProgress } from './m3.ts';
import { emit, on, state, type LoadState } from './state.ts';

export interface BundledModel {
  url: string;
  label: string;
  /** Fixture weights are random: the numbers exercise the engine but carry no meaning. */
  random: boolean;
}

/** Generated fixtures (served from fixtures/models/ by tools/vite-fixtures-plugin.ts) and, once it ships, public/models/m3-tiny/. */
export const BUNDLED: BundledModel[] = [
  { url: '/models/m3-tiny/', label: 'm3-tiny — m3BERT trained for this project (6 layers × 128, exits 2/4/6)', random: false },
  { url: '/models/xlmr-tiny/', label: 'xlmr-tiny — BGE-M3 layout, fixture with random weights', random: true },
  { url: '/models/m3bert-tiny/', label: 'm3bert-tiny — m3BERT layout, fixture with random weights', random: true },
  { url: '/models/bert-tiny/', label: 'bert-tiny — BERT layout, fixture with random weights', random: true },
];
/** The model the playground opens first: the shipped m3-tiny (BUNDLED[1] is the xlmr-tiny fixture). */
export const DEFAULT_MODEL: BundledModel = BUNDLED[0];

/** `?model=<url or hub id>` opens that model instead of the default (a link to a model; the e2e picks a fixture this way). */
export function startModel(): BundledModel {
  const asked = new URLSearchParams(location.search).get('model');
  if (!asked) return DEFAULT_MODEL;
  return BUNDLED.find((m) => m.url === asked) ?? { url: asked, label: asked, random: false };
}

let loading = 0;

/** Byte progress over all files of one load, with a rate-based ETA. */
class DownloadMeter {
  private files = new Map<string, { loaded: number; total: number | null }>();
  private readonly t0 = performance.now();
  update(file: string, loaded: number, total: number | null): { loaded: number; total: number; eta: number | null } {
    this.files.set(file, { loaded, total });
    let l = 0;
    let t = 0;
    for (const f of this.files.values()) {
      l += f.loaded;
      t += f.total ?? f.loaded;
    }
    const rate = l / Math.max(1, performance.now() - this.t0); // bytes per ms
    return { loaded: l, total: t, eta: rate > 0 && t > l ? (t - l) / rate / 1000 : null };
  }
}

/**
 * The model panel's status line and bar. `value` null: an indeterminate bar, for phases without a count (the worker
 * starting, the wait before the first timed run), so a slow first visit never looks stalled. The same text goes to
 * the strip at the top of the page (#busy), shown while the model panel is scrolled out of view.
 */
function setProgress(text: string, value?: number | null, max?: number): void {
  for (const id of ['load-progress', 'busy-progress']) {
    const bar = byId<HTMLProgressElement>(id);
    bar.hidden = value === undefined;
    if (value === null) bar.removeAttribute('value');
    else if (value !== undefined) {
      bar.max = max ?? 1;
      bar.value = value;
    }
  }
  byId('load-text').textContent = text;
  byId('busy-text').textContent = text;
}

/** Load state for the other views, the busy strip and the seconds counter (once a second, outside the live region so screen readers are not told each tick). */
let ticker: ReturnType<typeof setInterval> | undefined;
function setLoadState(st: LoadState['state'], text: string): void {
  clearInterval(ticker);
  const elapsed = byId('load-elapsed');
  elapsed.textContent = '';
  document.documentElement.dataset.loading = String(st === 'loading');
  if (st === 'loading') {
    const t0 = performance.now();
    ticker = setInterval(() => (elapsed.textContent = `${Math.round((performance.now() - t0) / 1000)} s`), 1000);
  } else byId('load-note').hidden = true;
  emit('load', { state: st, text });
}

/** The busy strip shows only while a model loads and the model panel's own status is off screen. */
function watchBusyStrip(): void {
  const strip = byId('busy');
  let statusVisible = true;
  const update = () => (strip.hidden = statusVisible || document.documentElement.dataset.loading !== 'true');
  if (typeof IntersectionObserver !== 'undefined') new IntersectionObserver(([e]) => ((statusVisible = e.isIntersecting), update())).observe(byId('load-status'));
  on('load', update);
  strip.addEventListener('click', () => byId('models').scrollIntoView({ behavior: 'smooth' }));
}

/** Opens `url` as the new session; the old one is disposed once the new one is ready. */
export async function openModel(url: string, label: string, random: boolean): Promise<void> {
  const ticket = ++loading;
  const meter = new DownloadMeter();
  const status = byId('load-status');
  status.dataset.state = 'loading';
  byId('model-warning').hidden = !random;
  byId('load-error').replaceChildren();
  setProgress(`opening ${label}…`, null);
  setLoadState('loading', `opening ${label}…`);
  // Calibration passes: on a software adapter the client times WebGPU, then the CPU backend (src/client/startup.ts);
  // each pass reports its own runs from 1, so a count that starts again is the next pass.
  let pass = 0;
  let lastDone = Infinity;
  const onProgress = (p: ClientProgress): void => {
    if (ticket !== loading) return;
    if (p.phase === 'download') {
      const m = meter.update(p.file, p.loaded, p.total);
      setProgress(`downloading ${p.file}: ${fmtBytes(m.loaded)} of ${fmtBytes(m.total)}${m.eta !== null ? `, about ${Math.ceil(m.eta)} s left` : ''}`, m.loaded, Math.max(1, m.total));
    } else if (p.phase === 'calibrate') {
      if (p.cached) return setProgress('calibration read from the cache (this device was measured before)', null);
      if (p.done <= lastDone) pass++;
      lastDone = p.done;
      byId('load-note').hidden = false;
      setProgress(`measuring this device's speed${pass > 1 ? ` (pass ${pass})` : ''}: ${p.done} of ${p.total} runs`, p.done, Math.max(1, p.total));
    } else if (p.phase === 'loaded') {
      setProgress(`weights loaded (${fmtBytes(p.bytes)}); preparing the calibration…`, null);
    } else if (p.phase === 'quantize') {
      setProgress(`quantising weights: ${p.done} of ${p.total}`, p.done, Math.max(1, p.total));
    }
  };
  let opened: Session | null = null;
  const onReplan = (_plan: unknown, reason: string): void => {
    if (!opened || state.session !== opened) return;
    setProgress(`ready: ${label}; re-planned (${reason})`);
    emit('replan', { session: opened, reason });
  };
  try {
    const session = (opened = await Session.open(url, { onProgress, onReplan }));
    if (ticket !== loading) return session.dispose();
    state.session?.dispose();
    status.dataset.state = 'ready';
    setProgress(`ready: ${label}`);
    byId('model-current').textContent = label;
    setLoadState('ready', `ready: ${label}`);
    emit('session', session);
  } catch (e) {
    if (ticket !== loading) return;
    status.dataset.state = 'error';
    setProgress('');
    showError(byId('load-error'), e);
    setLoadState('error', errorText(e));
  }
}

/** Files of a directory handle, with paths relative to it. */
async function walk(dir: FileSystemDirectoryHandle, prefix = ''): Promise<{ path: string; file: File }[]> {
  const out: { path: string; file: File }[] = [];
  for await (const [name, handle] of (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
    if (handle.kind === 'file') out.push({ path: prefix + name, file: await (handle as FileSystemFileHandle).getFile() });
    else out.push(...(await walk(handle as FileSystemDirectoryHandle, `${prefix}${name}/`)));
  }
  return out;
}

/** Files under a dropped entry (webkitGetAsEntry: the only way to read a dropped folder). */
async function walkEntry(entry: FileSystemEntry, prefix = ''): Promise<{ path: string; file: File }[]> {
  if (entry.isFile) return [{ path: prefix + entry.name, file: await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej)) }];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const out: { path: string; file: File }[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) return out;
    for (const e of batch) out.push(...(await walkEntry(e, `${prefix}${entry.name}/`)));
  }
}

/** A dropped or picked folder's files, rooted at the folder holding config.json. */
function rooted(files: { path: string; file: File }[]): { path: string; file: File }[] {
  const cfg = files
    .map((f) => f.path)
    .filter((p) => p === 'config.json' || p.endsWith('/config.json'))
    .sort((a, b) => a.length - b.length)[0];
  const root = cfg ? cfg.slice(0, cfg.length - 'config.json'.length) : '';
  return files.filter((f) => f.path.startsWith(root)).map((f) => ({ path: f.path.slice(root.length), file: f.file }));
}

async function openLocal(name: string, files: { path: string; file: File }[]): Promise<void> {
  try {
    setProgress(`storing ${name}: 0 of ${files.length} files`, 0, files.length);
    const base = await storeLocalModel(location.origin, name, rooted(files), (done, total) => setProgress(`storing ${name}: ${done} of ${total} files`, done, total));
    await openModel(base, `${name} (local folder)`, false);
  } catch (e) {
    setProgress('');
    showError(byId('load-error'), e);
  }
}

export function initModelPicker(): void {
  watchBusyStrip();
  const select = byId<HTMLSelectElement>('model-select');
  const start = startModel();
  select.replaceChildren(...BUNDLED.map((m, i) => h('option', { value: String(i), selected: m.url === start.url }, m.label)));
  byId('load-bundled').addEventListener('click', () => {
    const m = BUNDLED[Number(select.value)];
    void openModel(m.url, m.label, m.random);
  });
  byId<HTMLFormElement>('hf-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = byId<HTMLInputElement>('hf-id').value.trim();
    if (id) void openModel(id, `${id} (Hugging Face)`, false);
  });
  const pick = byId<HTMLButtonElement>('pick-folder');
  const input = byId<HTMLInputElement>('folder-input');
  pick.addEventListener('click', async () => {
    const picker = (window as unknown as { showDirectoryPicker?: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker;
    if (!picker) return input.click(); // no File System Access API (Firefox, Safari): the folder input
    try {
      const dir = await picker();
      await openLocal(dir.name, await walk(dir));
    } catch (e) {
      if ((e as Error).name !== 'AbortError') byId('load-error').textContent = errorText(e);
    }
  });
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])].map((file) => ({ path: file.webkitRelativePath.split('/').slice(1).join('/') || file.name, file }));
    const name = input.files?.[0]?.webkitRelativePath.split('/')[0] || 'local-model';
    if (files.length) void openLocal(name, files);
  });
  const zone = byId('drop-zone');
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', async (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    const entries = [...(ev.dataTransfer?.items ?? [])].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => !!e);
    const files = (await Promise.all(entries.map((e) => walkEntry(e)))).flat();
    const name = entries.length === 1 && entries[0].isDirectory ? entries[0].name : 'dropped-model';
    if (files.length) await openLocal(name, files);
  });
}
