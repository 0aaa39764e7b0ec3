/**
 * The search benchmark's rows measured in headless Chromium (e2e/pages/bench-search.ts), driven from Node:
 *
 * - worker_1m: 1M × 256 binary+int8 (the default funnel) in the search worker (workers/search.worker.ts),
 *   queried from the page: the query's wall time from the call to the reply, the search's own time inside
 *   the worker, and the gaps between animation frames on the page while the queries run (and, for
 *   comparison, while it sits idle for a second): the main thread stays responsive when the busy gaps look
 *   like the idle ones.
 * - keystroke: M3Client with the default model (public/models/m3-tiny) on the backend its planner picks
 *   embeds one short query (dense + sparse), then a hybrid top-10 over a 100k in-page index of the model's width.
 *
 *   npx tsx tools/bench/search-browser.ts [--n 1000000] [--runs 30] [--json out.json]
 */
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { SearchBenchPage } from '../../e2e/pages/bench-search.ts';
import { REPO_ROOT } from '../fixtures/paths.ts';
import { openPage, withBrowserServer } from '../parity/run-browser.ts';

declare global {
  interface Window {
    __searchBench?: SearchBenchPage;
  }
}

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);
const r2 = (x: number) => +x.toFixed(2);

export interface SearchBrowserRows {
  worker: { size: number; dims: number; storage: 'binary+int8'; build_s: number; query_ms_p50: number; query_ms_p95: number; in_worker_ms_p50: number; raf_gap_ms_p50: number; raf_gap_ms_max: number; idle_raf_gap_ms_max: number; frames: number };
  keystroke: { model: string; plan: string; dims: number; index_size: number; total_ms_p50: number; total_ms_p95: number; embed_ms_p50: number; search_ms_p50: number; load_ms: number } | null;
  notes: string[];
}

export async function runSearchBrowserBench(opts: { n?: number; runs?: number; keystrokeSize?: number; log?: (s: string) => void } = {}): Promise<SearchBrowserRows> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const n = opts.n ?? 1_000_000;
  const runs = opts.runs ?? 30;
  const kn = opts.keystrokeSize ?? 100_000;
  // Port 0 (any free one): `npm run bench` calls this while its own server holds M3WEB_E2E_PORT.
  return withBrowserServer(
    async (browser, base) => {
      const page = await openPage(browser, base, 'e2e/pages/bench-search.html', () => window.__searchBench !== undefined);
      page.on('pageerror', (e) => log(`page error: ${e.message}`));
      const w = await page.evaluate(([n, runs]) => window.__searchBench!.worker(n, 256, runs), [n, runs] as const);
      const worker = {
        size: w.count,
        dims: 256,
        storage: 'binary+int8' as const,
        build_s: r2(w.buildMs / 1000),
        query_ms_p50: r2(pct(w.wall, 50)),
        query_ms_p95: r2(pct(w.wall, 95)),
        in_worker_ms_p50: r2(pct(w.inWorker, 50)),
        raf_gap_ms_p50: r2(pct(w.busyGaps, 50)),
        raf_gap_ms_max: r2(Math.max(...w.busyGaps)),
        idle_raf_gap_ms_max: r2(Math.max(...w.idleGaps)),
        frames: w.busyGaps.length,
      };
      log(
        `  search in a worker (Chromium), ${w.count} × 256 binary+int8: p50 ${worker.query_ms_p50} ms (in the worker ${worker.in_worker_ms_p50}), p95 ${worker.query_ms_p95}; frame gaps while querying p50 ${worker.raf_gap_ms_p50} / max ${worker.raf_gap_ms_max} ms (idle max ${worker.idle_raf_gap_ms_max}); build ${worker.build_s} s`,
      );
      const notes = [
        `worker: ${runs} dense top-10 queries after 3 warm-up, issued one after another from the page to workers/search.worker.ts; query_ms is the page's wall time per call (message round trip included), in_worker_ms the search alone; raf_gap_ms are the gaps between requestAnimationFrame callbacks on the page during the queries (idle: during 1 s with nothing running)`,
      ];
      let keystroke: SearchBrowserRows['keystroke'] = null;
      await page.close();
      if (existsSync(resolve(REPO_ROOT, 'public/models/m3-tiny/config.json'))) {
        const p2 = await openPage(browser, base, 'e2e/pages/bench-search.html', () => window.__searchBench !== undefined);
        p2.on('pageerror', (e) => log(`page error: ${e.message}`));
        const k = await p2.evaluate(([kn, runs]) => window.__searchBench!.keystroke('/models/m3-tiny/', kn, runs), [kn, runs] as const);
        keystroke = {
          model: 'm3-tiny',
          plan: k.plan,
          dims: k.dims,
          index_size: kn,
          total_ms_p50: r2(pct(k.total, 50)),
          total_ms_p95: r2(pct(k.total, 95)),
          embed_ms_p50: r2(pct(k.embed, 50)),
          search_ms_p50: r2(pct(k.search, 50)),
          load_ms: Math.round(k.loadMs),
        };
        log(`  keystroke (Chromium, ${k.plan}): p50 ${keystroke.total_ms_p50} ms (embed ${keystroke.embed_ms_p50} + hybrid search ${keystroke.search_ms_p50}), p95 ${keystroke.total_ms_p95}`);
        notes.push(
          `keystroke: M3Client (default options: its planner calibrates and picks the backend) embeds one short query (dense + sparse), then a hybrid top-10 over ${kn} binary+int8 documents of the model's width with random sparse weights, in the page's main thread; ${runs} keystrokes after 2 warm-up`,
        );
      } else notes.push('keystroke skipped: public/models/m3-tiny is absent');
      return { worker, keystroke, notes };
    },
    { port: 0 },
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const rows = await runSearchBrowserBench({ n: arg('--n') ? Number(arg('--n')) : undefined, runs: arg('--runs') ? Number(arg('--runs')) : undefined });
  console.log(JSON.stringify(rows, null, 1));
  if (arg('--json')) writeFileSync(resolve(arg('--json')!), JSON.stringify(rows, null, 1) + '\n');
}
