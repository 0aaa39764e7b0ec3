/**
 * Compare view: cosine similarities of editable sentences at the chosen (layers, dims) beside the same
 * at full depth and width, the per-batch latency, and one sentence's sparse lexical weights.
 * Every slider move aborts the embedding in flight and starts one for the new point.
 */
import { DEFAULT_SENTENCES } from './corpus.ts';
import { byId, errorText, fmtMs, h, isAbort, showError, waitingText } from './dom.ts';
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

/** WCAG relative luminance of an HSL colour (h in degrees, s and l in 0..1). */
function luminance(hue: number, sat: number, light: number): number {
  const a = sat * Math.min(light, 1 - light);
  const f = (n: number) => {
    const k = (n + hue / 30) % 12;
    const c = light - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * f(0) + 0.7152 * f(8) + 0.0722 * f(4);
}

/**
 * Blue toward 1, white at 0, orange toward −1; the number is always printed (colour is never the only cue). The scale
 * runs down to 30 % lightness so that 0.6 and 0.8 look different, and the text turns white on dark cells: black text
 * needs a luminance ≥ 0.175 and white ≤ 0.183 for WCAG AA's 4.5:1, so switching at 0.18 keeps every cell readable.
 */
function cellColour(v: number): { bg: string; fg: string } {
  const [hue, sat, light] = v >= 0 ? [215, 0.7, 1 - 0.7 * v] : [30, 0.8, 1 + 0.55 * v];
  return { bg: `hsl(${hue} ${sat * 100}% ${(light * 100).toFixed(1)}%)`, fg: luminance(hue, sat, light) >= 0.18 ? '#000' : '#fff' };
}

function heatmap(el: HTMLElement, title: string, e: Embedding, texts: string[]): void {
  const m = cosines(e);
  // Each header carries its sentence as a tooltip: the numbers are lines of the textarea above.
  const head = (i: number) => ({ title: texts[i] ?? '' });
  el.replaceChildren(
    h(
      'table',
      { class: 'heatmap' },
      h('caption', {}, title),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'sentence')), ...m.map((_, j) => h('th', { scope: 'col', ...head(j) }, `#${j + 1}`)))),
      h(
        'tbody',
        {},
        ...m.map((row, i) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row', ...head(i) }, `#${i + 1}`),
            ...row.map((v) => {
              const c = cellColour(v);
              return h('td', { style: `background:${c.bg};color:${c.fg}` }, v.toFixed(2));
            }),
          ),
        ),
      ),
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
  const marked = rows.some((r) => r.tok.startsWith('\u2581'));
  el.replaceChildren(
    ...[
      rows.length
        ? h('ol', { class: 'sparse' }, ...rows.map((r) => h('li', {}, h('code', {}, r.tok), h('span', { class: 'bar', style: `width:${Math.max(2, (100 * r.w) / max)}%` }), h('span', { class: 'w' }, r.w.toFixed(3)))))
        : h('p', {}, 'No token has a positive weight at this point.'),
      // SentencePiece marks a token that starts a word with U+2581; said once rather than leave "▁cat" unexplained.
      ...(marked ? [h('p', { class: 'muted' }, "▁ marks a token that starts a word. Weights are the sparse head's, one per distinct token.")] : []),
    ],
  );
  el.dataset.tokens = String(rows.length);
}

async function refreshFull(s: Session, texts: string[]): Promise<void> {
  const key = `${s.model}|${texts.join('\n')}`;
  if (full?.key === key) return;
  const emb = await s.embed(texts, { layers: s.info.layers, dims: s.info.hidden });
  full = { key, emb };
  heatmap(byId('heat-full'), `full: ${emb.layers} layers × ${emb.dims} dims (${fmtMs(emb.ms)})`, emb, texts);
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
    heatmap(byId('heat-point'), `chosen: ${e.layers} layers × ${e.dims} dims`, e, texts);
    sparseView(e);
    emit('measured', { layers: e.layers, dims: e.dims, ms: e.ms, batches: e.batches, n: e.n });
    status.textContent = `${e.n} sentences at ${e.layers} × ${e.dims}: ${fmtMs(e.ms)} in ${e.batches} batch${e.batches === 1 ? '' : 'es'} (${e.backend})`;
    byId('compare').dataset.ready = 'true';
    byId('heat-key').hidden = false;
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
  const waiting = () => !state.session && (byId('compare-status').textContent = `${waitingText(state.load)}${state.load.state === 'loading' ? ' The heatmaps follow.' : ''}`);
  on('load', waiting);
  waiting();
}
