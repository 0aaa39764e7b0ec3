/**
 * Search view: index the demo corpus (or pasted / uploaded text, one document a line) with progress
 * and cancel, then search as you type in dense, sparse, ColBERT or hybrid mode, with each hit's
 * per-mode scores, the index's size and the query latency.
 */
import { DEMO_CORPUS } from './corpus.ts';
import { byId, errorText, fmtBytes, fmtMs, h, isAbort, showError, waitingText } from './dom.ts';
import type { DemoIndex, SearchHit, SearchMode } from './m3.ts';
import { on, state } from './state.ts';

let index: DemoIndex | null = null;
let texts: string[] = [];
let indexing: AbortController | null = null;
let querying: AbortController | null = null;

function docsFromInput(): string[] {
  const pasted = byId<HTMLTextAreaElement>('corpus-text')
    .value.split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  return pasted.length ? pasted : [...DEMO_CORPUS];
}

function setIndexProgress(done: number, total: number, text: string): void {
  const bar = byId<HTMLProgressElement>('index-progress');
  bar.hidden = total === 0;
  bar.max = Math.max(1, total);
  bar.value = done;
  byId('index-status').textContent = text;
}

function showStats(): void {
  if (!index) return;
  const st = index.stats();
  byId('index-stats').textContent =
    `${st.count} documents, ${st.layers ?? '?'} layers × ${st.dims} dims, ${st.outputs.join(' + ')}: ${fmtBytes(st.bytes.total)} in memory (dense ${fmtBytes(st.bytes.dense)}, sparse ${fmtBytes(st.bytes.sparse)}, ColBERT ${fmtBytes(st.bytes.colbert)})`;
}

async function buildIndex(): Promise<void> {
  const s = state.session;
  if (!s) return;
  indexing?.abort();
  const ctl = new AbortController();
  indexing = ctl;
  const docs = docsFromInput();
  const p = state.point ?? { layers: s.plan.layers, dims: s.plan.dims };
  byId<HTMLButtonElement>('index-cancel').disabled = false;
  byId<HTMLButtonElement>('index-btn').disabled = true;
  byId('search-results').replaceChildren();
  delete byId('search').dataset.indexed;
  const t0 = performance.now();
  try {
    const idx = await s.createIndex(p);
    setIndexProgress(0, docs.length, `indexing ${docs.length} documents at ${p.layers} × ${p.dims}…`);
    await idx.add(
      docs.map((text, i) => ({ id: String(i), text })),
      { signal: ctl.signal, onProgress: (done, total) => setIndexProgress(done, total, `indexed ${done} of ${total} documents`) },
    );
    index = idx;
    texts = docs;
    setIndexProgress(0, 0, `indexed ${docs.length} documents in ${fmtMs(performance.now() - t0)}`);
    showStats();
    byId('search').dataset.indexed = String(docs.length);
    byId<HTMLInputElement>('query').disabled = false;
    for (const r of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) r.disabled = r.value !== 'dense' && !idx.outputs.includes(r.value === 'hybrid' ? 'sparse' : (r.value as 'sparse' | 'colbert'));
    // Hybrid is the default (the tiny bundled model ranks best with all three heads); a dense-only model falls back to dense.
    const checked = document.querySelector<HTMLInputElement>('input[name="mode"]:checked');
    if (!checked || checked.disabled) document.querySelector<HTMLInputElement>('input[name="mode"][value="dense"]')!.checked = true;
    if (byId<HTMLInputElement>('query').value.trim()) void runQuery();
  } catch (e) {
    setIndexProgress(0, 0, isAbort(e) ? 'indexing cancelled; the previous index (if any) is still searchable' : '');
    if (!isAbort(e)) showError(byId('search-results'), e);
  } finally {
    if (indexing === ctl) indexing = null;
    byId<HTMLButtonElement>('index-cancel').disabled = true;
    byId<HTMLButtonElement>('index-btn').disabled = false;
  }
}

const MODE_TEXT: Record<SearchMode, string> = {
  dense: 'dense cosine',
  sparse: 'sparse lexical weights of shared tokens',
  colbert: 'ColBERT late interaction (MaxSim over token vectors)',
  hybrid: 'hybrid: weighted dense + sparse + ColBERT',
};

function mode(): SearchMode {
  return (document.querySelector<HTMLInputElement>('input[name="mode"]:checked')?.value ?? 'dense') as SearchMode;
}

async function runQuery(): Promise<void> {
  const q = byId<HTMLInputElement>('query').value.trim();
  const out = byId('search-results');
  if (!index || !q) return out.replaceChildren();
  querying?.abort();
  const ctl = new AbortController();
  querying = ctl;
  const t0 = performance.now();
  try {
    const hits = await index.search(q, mode(), 5, ctl.signal);
    if (ctl !== querying) return;
    const ms = performance.now() - t0;
    // Only the scores this mode computed: "sparse — · colbert —" on every dense hit was noise.
    const scores = (hit: SearchHit) =>
      (['dense', 'sparse', 'colbert'] as const)
        .filter((k) => hit.scores[k] !== null && hit.scores[k] !== undefined)
        .map((k) => `${k} ${hit.scores[k]!.toFixed(3)}`)
        .join(' · ');
    if (!hits.length) {
      out.replaceChildren(h('p', {}, mode() === 'sparse' ? 'No document shares a weighted token with the query (sparse mode matches words, not meanings): try dense or hybrid.' : 'No hits.'));
      byId('query-latency').textContent = `query latency ${fmtMs(ms)}`;
      return;
    }
    out.replaceChildren(
      h('p', { class: 'muted' }, `top ${hits.length} of ${texts.length} by ${MODE_TEXT[mode()]}; the query was embedded and scored in the page`),
      h(
        'ol',
        { class: 'hits' },
        ...hits.map((hit) => h('li', { 'data-id': hit.id }, h('span', { class: 'hit-text' }, texts[Number(hit.id)] ?? hit.id), h('span', { class: 'scores' }, `score ${hit.score.toFixed(3)}${mode() === 'hybrid' ? ` (${scores(hit)})` : ''}`))),
      ),
    );
    out.dataset.query = q;
    out.dataset.mode = mode();
    byId('query-latency').textContent = `query latency ${fmtMs(ms)}`;
  } catch (e) {
    if (!isAbort(e)) out.replaceChildren(h('p', { class: 'error', role: 'alert' }, errorText(e)));
  }
}

export function initSearch(): void {
  byId('index-btn').addEventListener('click', () => void buildIndex());
  byId('index-cancel').addEventListener('click', () => indexing?.abort());
  byId<HTMLInputElement>('corpus-file').addEventListener('change', async (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (f) byId<HTMLTextAreaElement>('corpus-text').value = await f.text();
  });
  byId('corpus-count').textContent = String(DEMO_CORPUS.length);
  byId('query').addEventListener('input', () => void runQuery());
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) r.addEventListener('change', () => void runQuery());
  const waiting = () => !state.session && (byId('index-status').textContent = waitingText(state.load));
  on('load', waiting);
  waiting();
  on('session', () => {
    index = null;
    byId<HTMLButtonElement>('index-btn').disabled = false;
    byId<HTMLInputElement>('query').disabled = true;
    setIndexProgress(0, 0, 'not indexed yet');
    byId('index-stats').textContent = '';
    byId('search-results').replaceChildren();
  });
}
