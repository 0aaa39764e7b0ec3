/**
 * Compare view: cosine similarities of editable sentences at the chosen (layers, dims) beside the same
 * at full depth and width, the per-batch latency, and one sentence's sparse lexical weights.
 * Every slider move aborts the embedding in flight and starts one for the new point.
 */
import { DEFAULT_SENTENCES } from './corpus.ts';
import { byId, errorText, fmtMs, h, isAbort, showError } from './dom.ts';
import type { Embedding, Session } from './m3.ts';
import { emit, on, state, type Point } from './state.ts';

let current: AbortController | null = null;
let full: { key: string; emb: Embedding } | null = null;

function sentences(): string[] {
  return byId<HTMLTextAreaElement>('sentences')
    .value.split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Cosine similarity matrix of L2-normalised rows: plain dot products. */
function cosines(e: Embedding): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < e.n; i++) {
    out.push([]);
    for (let j = 0; j < e.n; j++) {
      let s = 0;
      for (let k = 0; k < e.dims; k++) s += e.dense[i * e.dims + k] * e.dense[j * e.dims + k];
      out[i].push(s);
    }
  }
  return out;
}

function heatmap(el: HTMLElement, title: string, e: Embedding): void {
  const m = cosines(e);
  // Blue for similar, white at 0, orange for opposite; the number is always printed (colour is never the only cue).
  // Lightness stays ≥ 62 % so dark text keeps a WCAG AA contrast on every cell (axe color-contrast).
  const color = (v: number) => (v >= 0 ? `hsl(215 70% ${100 - 38 * v}%)` : `hsl(30 80% ${100 + 35 * v}%)`);
  el.replaceChildren(
    h(
      'table',
      { class: 'heatmap' },
      h('caption', {}, title),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'sentence')), ...m.map((_, j) => h('th', { scope: 'col' }, `#${j + 1}`)))),
      h('tbody', {}, ...m.map((row, i) => h('tr', {}, h('th', { scope: 'row' }, `#${i + 1}`), ...row.map((v) => h('td', { style: `background:${color(v)};color:#111` }, v.toFixed(2)))))),
    ),
  );
  el.dataset.layers = String(e.layers);
  el.dataset.dims = String(e.dims);
  el.dataset.values = JSON.stringify(m.map((r) => r.map((v) => Number(v.toFixed(5)))));
}

function sparseView(e: Embedding): void {
  const el = byId('sparse-body');
  const i = Math.min(Number(byId<HTMLSelectElement>('sparse-pick').value) || 0, e.n - 1);
  const sp = e.sparse?.[i];
  if (!sp) {
    el.replaceChildren(h('p', {}, 'This model has no BGE-M3 sparse head: there are no lexical weights to show.'));
    return;
  }
  const rows = [...sp.weights].map((w, k) => ({ w, tok: sp.tokens?.[k] ?? `id ${sp.ids[k]}` })).sort((a, b) => b.w - a.w);
  const max = rows[0]?.w || 1;
  el.replaceChildren(
    rows.length
      ? h('ol', { class: 'sparse' }, ...rows.map((r) => h('li', {}, h('code', {}, r.tok), h('span', { class: 'bar', style: `width:${Math.max(2, (90 * r.w) / max)}%` }), h('span', { class: 'w' }, r.w.toFixed(3)))))
      : h('p', {}, 'No token has a positive weight at this point.'),
  );
  el.dataset.tokens = String(rows.length);
}

async function refreshFull(s: Session, texts: string[]): Promise<void> {
  const key = `${s.model}|${texts.join('\n')}`;
  if (full?.key === key) return;
  const emb = await s.embed(texts, { layers: s.info.layers, dims: s.info.hidden });
  full = { key, emb };
  heatmap(byId('heat-full'), `full: ${emb.layers} layers × ${emb.dims} dims (${fmtMs(emb.ms)})`, emb);
}

async function refresh(p: Point): Promise<void> {
  const s = state.session;
  if (!s) return;
  const texts = sentences();
  const status = byId('compare-status');
  if (texts.length < 2) {
    status.textContent = 'Enter at least two sentences, one per line.';
    return;
  }
  current?.abort();
  const ctl = new AbortController();
  current = ctl;
  status.textContent = `embedding ${texts.length} sentences at ${p.layers} × ${p.dims}…`;
  try {
    const outputs = s.info.hasBgeM3Heads ? (['dense', 'sparse'] as const) : (['dense'] as const);
    const e = await s.embed(texts, { layers: p.layers, dims: p.dims, outputs: [...outputs], signal: ctl.signal });
    if (ctl !== current) return;
    // Drawn in the same task the result arrived in, so the next frame shows it.
    heatmap(byId('heat-point'), `chosen: ${e.layers} layers × ${e.dims} dims`, e);
    sparseView(e);
    emit('measured', { layers: e.layers, dims: e.dims, ms: e.ms, batches: e.batches, n: e.n });
    status.textContent = `${e.n} sentences at ${e.layers} × ${e.dims}: ${fmtMs(e.ms)} in ${e.batches} batch${e.batches === 1 ? '' : 'es'} (${e.backend})`;
    byId('compare').dataset.ready = 'true';
    await refreshFull(s, texts);
  } catch (e) {
    if (isAbort(e)) return;
    status.textContent = '';
    showError(byId('heat-point'), e);
  }
}

export function initCompare(): void {
  const area = byId<HTMLTextAreaElement>('sentences');
  area.value = DEFAULT_SENTENCES.join('\n');
  const pick = byId<HTMLSelectElement>('sparse-pick');
  const fillPick = () => {
    const texts = sentences();
    const keep = pick.value;
    pick.replaceChildren(...texts.map((t, i) => h('option', { value: String(i) }, `#${i + 1} ${t.length > 40 ? `${t.slice(0, 40)}…` : t}`)));
    if (keep !== '' && Number(keep) < texts.length) pick.value = keep;
  };
  fillPick();
  let timer: ReturnType<typeof setTimeout> | undefined;
  area.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      fillPick();
      full = null;
      if (state.point) void refresh(state.point);
    }, 400);
  });
  pick.addEventListener('change', () => state.point && void refresh(state.point));
  on('point', (p) => void refresh(p).catch((e) => (byId('compare-status').textContent = errorText(e))));
  on('session', () => {
    full = null;
  });
}
