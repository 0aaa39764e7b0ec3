/** Small DOM helpers shared by the views: element builder, formatting, typed error display. */
import type { LoadState } from './state.ts';

type Child = Node | string | number | null | undefined | false;

/** `h('button', { class: 'x', onclick }, 'text')`: attributes starting with "on" become listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, unknown> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
    else if (k in el && typeof v !== 'string') (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`playground: #${id} is missing from index.html`);
  return el as T;
}

/** A two-column table of facts. */
export function facts(rows: [Child, Child][]): HTMLTableElement {
  return h('table', { class: 'facts' }, h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
}

/** A camelCase name (a WebGPU limit) that may wrap between its words on a narrow screen: `<wbr>` before each capital. */
export function camelWrap(name: string): HTMLElement {
  return h('span', {}, ...name.split(/(?=[A-Z])/).flatMap((part, i) => (i ? [h('wbr', {}), part] : [part])));
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : n < 10 ? 2 : 1)} ${units[i]}`;
}

export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** "Name: message" for typed errors (M3Error subclasses keep their class name), else the string. */
export function errorText(e: unknown): string {
  if (e instanceof Error || (e && typeof e === 'object' && 'message' in e)) {
    const err = e as Error;
    return `${err.name || 'Error'}: ${err.message}`;
  }
  return String(e);
}

/** Replaces the content of `el` with the error, announced to screen readers. */
export function showError(el: HTMLElement, e: unknown): void {
  el.replaceChildren(h('p', { class: 'error', role: 'alert' }, errorText(e)));
}

/** What a view without a model says: waiting (with where the progress is), or that the load failed. */
export function waitingText(l: LoadState): string {
  return l.state === 'error' ? 'No model is open: loading failed (the error is shown under Model).' : 'Waiting for the model to load (progress under Model).';
}

export function isAbort(e: unknown): boolean {
  const name = (e as { name?: string })?.name;
  return name === 'AbortError';
}
