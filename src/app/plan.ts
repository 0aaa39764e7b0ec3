/**
 * Budget and plan: a latency / memory / quality budget the planner answers, or layers and dims set by
 * hand with sliders; the choice and why; the frontier (latency vs quality, memory on a second axis)
 * drawn with uPlot, with the current point, and every candidate in a table (frontier.ts).
 */
import type uPlot from 'uplot';
import { byId, facts, fmtMs, h, showError, waitingText } from './dom.ts';
import type { Budget, Candidate, Session } from './m3.ts';
import { candidateTable, drawFrontier } from './frontier.ts';
import { emit, on, state, type Point } from './state.ts';

let chart: uPlot | null = null;
let layersList: number[] = [];
let dimsList: number[] = [];
/** The planner's answer for the current budget; sliders moved away from it make the point manual. */
let planned: Point | null = null;

const sliders = () => ({ layers: byId<HTMLInputElement>('layers'), dims: byId<HTMLInputElement>('dims') });

function pointFromSliders(): Point {
  const s = sliders();
  return { layers: layersList[Number(s.layers.value)], dims: dimsList[Number(s.dims.value)] };
}

function setSliders(p: Point): void {
  const s = sliders();
  s.layers.value = String(Math.max(0, layersList.indexOf(p.layers)));
  s.dims.value = String(Math.max(0, dimsList.indexOf(p.dims)));
  labelSliders();
}

function labelSliders(): void {
  const s = sliders();
  const p = pointFromSliders();
  s.layers.setAttribute('aria-valuetext', `${p.layers} layers`);
  s.dims.setAttribute('aria-valuetext', `${p.dims} dims`);
  byId('layers-out').textContent = String(p.layers);
  byId('dims-out').textContent = String(p.dims);
}

function within(c: Candidate, b: Budget): boolean {
  return (b.latencyMs === undefined || c.latencyMs <= b.latencyMs) && (b.memoryMB === undefined || c.memoryMB <= b.memoryMB) && (b.minQuality === undefined || c.quality >= b.minQuality);
}

function explain(s: Session, p: Point): void {
  const all = s.candidates();
  const c = all.find((x) => x.layers === p.layers && x.dims === p.dims);
  const b = s.budget;
  const fits = all.filter((x) => within(x, b)).length;
  const manual = !planned || planned.layers !== p.layers || planned.dims !== p.dims;
  const why = manual
    ? `set by hand (sliders or the table)${planned ? `; the planner's choice for this budget is ${planned.layers} layers × ${planned.dims} dims` : ''}`
    : `the planner's choice: the highest predicted quality among the ${fits} of ${all.length} candidates within the budget${c?.trained ? ', at a trained exit' : ''} (quality: ${s.plan.qualitySource}, cost: ${s.plan.costSource})`;
  const el = byId('plan-text');
  el.dataset.layers = String(p.layers);
  el.dataset.dims = String(p.dims);
  el.replaceChildren(
    facts([
      ['layers × dims', `${p.layers} × ${p.dims} of ${s.info.layers} × ${s.info.hidden}`],
      ['predicted latency', c ? `${fmtMs(c.latencyMs)} for one ${s.plan.tokensPerQuery}-token query` : '—'],
      ['predicted memory', c ? `${c.memoryMB.toFixed(2)} MB` : '—'],
      ['predicted quality', c ? `${(c.quality * 100).toFixed(1)} % of the full model` : '—'],
      ['why', why],
    ]),
  );
  chart = drawFrontier(byId('frontier'), s, c ?? null, chart);
  byId('candidates-count').textContent = String(all.length);
  byId('candidates').hidden = false;
  byId('candidates-body').replaceChildren(
    candidateTable(s, p, (q) => {
      setSliders(q);
      onPoint();
    }),
  );
}

function onPoint(): void {
  labelSliders();
  const s = state.session;
  if (!s) return;
  const p = pointFromSliders();
  explain(s, p);
  emit('point', p);
}

function applyBudget(): void {
  const s = state.session;
  if (!s) return;
  const num = (id: string) => {
    const v = byId<HTMLInputElement>(id).value.trim();
    return v === '' ? undefined : Number(v);
  };
  const budget: Budget = { latencyMs: num('budget-latency'), memoryMB: num('budget-memory'), minQuality: num('budget-quality') };
  for (const k of Object.keys(budget) as (keyof Budget)[]) if (budget[k] === undefined) delete budget[k];
  try {
    const plan = s.setBudget(budget);
    byId('budget-error').replaceChildren();
    planned = { layers: plan.layers, dims: plan.dims };
    setSliders(planned);
    onPoint();
  } catch (e) {
    showError(byId('budget-error'), e);
  }
}

export function initPlan(): void {
  const s = sliders();
  // 'input' fires for every step of a drag or key press; one update per animation frame is enough.
  let frame = 0;
  const schedule = () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(onPoint);
  };
  s.layers.addEventListener('input', schedule);
  s.dims.addEventListener('input', schedule);
  byId<HTMLFormElement>('budget-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyBudget();
  });
  on('session', (session) => {
    const cands = session.candidates();
    layersList = [...new Set(cands.map((c) => c.layers))].sort((a, b) => a - b);
    dimsList = [...new Set(cands.map((c) => c.dims))].sort((a, b) => a - b);
    s.layers.max = String(layersList.length - 1);
    s.dims.max = String(dimsList.length - 1);
    s.layers.disabled = s.dims.disabled = false;
    planned = { layers: session.plan.layers, dims: session.plan.dims };
    setSliders(planned);
    chart?.destroy();
    chart = null;
    byId('plan').dataset.ready = 'true';
    onPoint();
  });
  on('replan', ({ session }) => {
    // Sliders still on the old plan follow the new one; a point the user chose stays, and only its explanation is redone.
    const followed = !state.point || (planned !== null && state.point.layers === planned.layers && state.point.dims === planned.dims);
    planned = { layers: session.plan.layers, dims: session.plan.dims };
    chart?.destroy();
    chart = null;
    if (followed) {
      setSliders(planned);
      onPoint();
    } else explain(session, state.point!);
  });
  on('measured', (m) => {
    byId('latency').textContent = `measured: ${m.n} texts at ${m.layers} × ${m.dims} in ${m.batches} batch${m.batches === 1 ? '' : 'es'}, ${fmtMs(m.ms)}`;
    byId('latency').dataset.layers = String(m.layers);
    byId('latency').dataset.dims = String(m.dims);
  });
  window.addEventListener('resize', () => {
    if (state.session && state.point) {
      chart?.destroy();
      chart = null;
      explain(state.session, state.point);
    }
  });
  const waiting = () => !state.session && byId('plan-text').replaceChildren(h('p', { class: 'muted' }, waitingText(state.load)));
  on('load', waiting);
  waiting();
}
