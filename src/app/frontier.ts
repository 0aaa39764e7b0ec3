/**
 * The plan view's chart and table. The chart (uPlot) draws every candidate, latency against quality: the
 * Pareto frontier as a line (memory on the right axis), the others as grey dots, the current point as a ring, so
 * a frontier of one point (m3-tiny's: its 2-layer exit is predicted fastest and best) still shows what it beat.
 * uPlot's mode 2 (one x array per series) is used because candidates share latencies: the cost model prices
 * layers, not dims, so every dims of one depth sits at the same x. The table lists the same candidates in
 * text; each point's name is a button that moves the sliders there: the chart's content for keyboards and screen readers.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { fmtMs, h } from './dom.ts';
import type { Candidate, Session } from './m3.ts';
import type { Point } from './state.ts';

const key = (c: Candidate) => `${c.layers}|${c.dims}|${c.dtype}`;
/** Mode 2 leaves uPlot's visible-index window unset, so its default point filter would draw only index 0. */
const allPoints = (u: uPlot, si: number) => (u.data[si] as unknown as number[][])[0].map((_, i) => i);

/** Draws (or redraws into `prev` when the width is unchanged) the frontier chart in `box`. */
export function drawFrontier(box: HTMLElement, s: Session, current: Candidate | null, prev: uPlot | null): uPlot {
  const all = s.candidates();
  const front = s.frontier();
  const onFront = new Set(front.map(key));
  const others = all.filter((c) => !onFront.has(key(c)));
  const xy = (list: Candidate[], f: (c: Candidate) => number) => [list.map((c) => c.latencyMs), list.map(f)];
  const data = [null, xy(others, (c) => c.quality), xy(front, (c) => c.quality), xy(front, (c) => c.memoryMB), xy(current ? [current] : [], (c) => c.quality)] as unknown as uPlot.AlignedData;
  const width = Math.max(260, box.clientWidth || 600);
  if (prev && prev.width === width) {
    prev.setData(data);
    return prev;
  }
  prev?.destroy();
  // Both axes start at 0: a frontier spanning 1.93–2.12 ms is nearly flat, and an auto range would draw it as steep.
  const xMax = Math.max(...all.map((c) => c.latencyMs), 1e-3) * 1.08;
  const mbMax = Math.max(...all.map((c) => c.memoryMB), 1e-3) * 1.1;
  const point = (size: number, fill: string) => ({ show: true, size, fill, filter: allPoints });
  return new uPlot(
    {
      mode: 2,
      width,
      height: 240,
      title: 'Predicted latency vs quality',
      cursor: { show: false },
      // Quality is a share of the full model (≤ 1): a fixed axis, so a one-point frontier is not drawn on an auto range of 0..2.
      scales: { x: { time: false, auto: false, range: [0, xMax] }, y: { auto: false, range: [0, 1.02] }, mb: { auto: false, range: [0, mbMax] } },
      axes: [
        { label: 'latency (ms)', stroke: '#333' },
        { label: 'quality (share of full)', stroke: '#333' },
        { side: 1, scale: 'mb', label: 'memory (MB)', stroke: '#555', grid: { show: false } },
      ],
      series: [
        {},
        { label: 'other candidates', stroke: '#6b7380', width: 0, paths: () => null, points: point(8, '#aab2be') },
        { label: 'frontier quality', stroke: '#1f5fbf', width: 2, points: point(8, '#1f5fbf') },
        {
          label: 'frontier memory (MB)',
          stroke: '#8a5a00',
          width: 1,
          dash: [6, 4],
          facets: [
            { scale: 'x', auto: false },
            { scale: 'mb', auto: false },
          ],
          points: point(7, '#fff'),
        },
        // A ring, not a disc: the frontier point under it stays visible.
        { label: 'current point', stroke: '#c0182b', width: 0, paths: () => null, points: { ...point(16, 'transparent'), width: 3 } },
      ] as uPlot.Series[],
      legend: { show: true, live: false },
    },
    data,
    box,
  );
}

/** All candidates as a table, frontier first; "use" moves the sliders to that point. */
export function candidateTable(s: Session, current: Point, use: (p: Point) => void): HTMLElement {
  const all = s.candidates();
  const onFront = new Set(s.frontier().map(key));
  const dtypes = new Set(all.map((c) => c.dtype)).size > 1;
  const rows = [...all].sort((a, b) => Number(onFront.has(key(b))) - Number(onFront.has(key(a))) || a.latencyMs - b.latencyMs || b.quality - a.quality);
  return h(
    'table',
    { class: 'candidates' },
    h('caption', { class: 'visually-hidden' }, 'Every candidate (layers × dims) with its predicted latency, memory and quality'),
    h('thead', {}, h('tr', {}, ...['layers × dims', 'latency', 'memory', 'quality'].map((t) => h('th', { scope: 'col' }, t)))),
    h(
      'tbody',
      {},
      ...rows.map((c) => {
        const here = c.layers === current.layers && c.dims === current.dims;
        const name = `${c.layers} × ${c.dims}${dtypes ? ` ${c.dtype}` : ''}`;
        return h(
          'tr',
          { class: here ? 'current' : undefined },
          // The point's name is the button that moves the sliders there (a fifth "use" column did not fit 390 px).
          h(
            'th',
            { scope: 'row' },
            here ? h('span', { class: 'here' }, name, h('span', { class: 'visually-hidden' }, ' (in use)')) : h('button', { type: 'button', class: 'small', 'aria-label': `use ${name}`, onclick: () => use({ layers: c.layers, dims: c.dims }) }, name),
            onFront.has(key(c)) ? h('span', { class: 'tag' }, 'frontier') : null,
          ),
          h('td', {}, fmtMs(c.latencyMs)),
          h('td', {}, `${c.memoryMB.toFixed(1)} MB`),
          h('td', {}, `${(c.quality * 100).toFixed(1)} %`),
        );
      }),
    ),
  );
}
