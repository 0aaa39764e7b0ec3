/**
 * Funnel recall@10 against exact f32 on real embeddings (the whole SciFact corpus by m3-tiny, from
 * tools/bench/search-embed-scifact.py), through SemanticIndex itself: the binary first pass with centred sign
 * codes (the default) and with raw ones, at several multipliers, the exact int8 scans (int8 storage: codes of v;
 * binary+int8: codes of v − centre, the funnel's ceiling), and Matryoshka prefixes;
 * with --timing, p50 query times of the ×10, ×100 and ×200 (default) funnels on 100k synthetic vectors at 256 and 1024 dims.
 *
 *   /usr/bin/python3 tools/bench/search-embed-scifact.py training/runs/sf && npx tsx tools/bench/search-recall.ts training/runs/sf [--queries 300] [--timing]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SemanticIndex } from '../../src/search/semantic-index.ts';
import { overlap, randomUnit } from '../../src/search/testing.ts';
import type { DenseStorage, FunnelOptions, IndexOptions } from '../../src/search/types.ts';

const args = process.argv.slice(2);
const dir = args[0];
const nq = args.includes('--queries') ? Number(args[args.indexOf('--queries') + 1]) : 300;
const f32 = (p: string) => new Float32Array(readFileSync(p).buffer.slice(0));
const P = f32(join(dir, 'scifact-docs.f32'));
const Q = f32(join(dir, 'scifact-queries.f32'));
const ids = JSON.parse(readFileSync(join(dir, 'scifact-ids.json'), 'utf8')) as string[];
const d = P.length / ids.length;
const row = (a: Float32Array, i: number) => a.subarray(i * d, (i + 1) * d);
const docs = ids.map((id, i) => ({ id, dense: row(P, i) }));

async function build(storage: DenseStorage, extra: Partial<IndexOptions> = {}): Promise<SemanticIndex> {
  const idx = await SemanticIndex.create({ dims: d, storage, ...extra });
  await idx.add(docs);
  return idx;
}
const exact = await build('f32');
const truth = await Promise.all(Array.from({ length: nq }, async (_, j) => (await exact.search({ dense: row(Q, j) }, { k: 10, funnel: false })).map((h) => h.id)));
async function recall(idx: SemanticIndex, funnel: FunnelOptions | false): Promise<number> {
  let s = 0;
  for (let j = 0; j < nq; j++)
    s += overlap(
      (await idx.search({ dense: row(Q, j) }, { k: 10, funnel })).map((h) => h.id),
      truth[j],
    );
  return +(s / nq).toFixed(3);
}
const out: Record<string, number> = {};
const centred = await build('binary+int8');
const raw = await build('binary+int8', { centre: false });
for (const m of [4, 10, 20, 40, 100, 200]) out[`centred_x${m}`] = await recall(centred, { first: 'binary', multiplier: m });
out.centred_default = await recall(centred, { first: 'binary' }); // DEFAULT_MULTIPLIER.binary
for (const m of [10, 40]) out[`raw_signs_x${m}`] = await recall(raw, { first: 'binary', multiplier: m });
out.int8_exact = await recall(await build('int8'), false);
out['binary+int8_codes_exact'] = await recall(centred, false); // its int8 codes of v − centre, scanned exactly: the funnel's ceiling
for (const p of [32, 64]) out[`f32_prefix${p}_x10`] = await recall(exact, { first: 'prefix', prefixDims: p, multiplier: 10 });
console.log(JSON.stringify({ docs: ids.length, queries: nq, dims: d, recall_at_10: out }));

if (args.includes('--timing')) {
  const pct50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  for (const dd of [256, 1024]) {
    const idx = await SemanticIndex.create({ dims: dd, storage: 'binary+int8', chunkSize: 10_000 });
    for (let a = 0; a < 100_000; a += 10_000) {
      const v = randomUnit(10_000, dd, 1000 + a / 10_000);
      await idx.add(Array.from({ length: 10_000 }, (_, i) => ({ id: `s${a + i}`, dense: v.subarray(i * dd, (i + 1) * dd) })));
    }
    const qs = randomUnit(40, dd, 4242);
    for (const m of [10, 100, 200]) {
      const wall: number[] = [];
      const cpu: number[] = [];
      for (let j = 0; j < 43; j++) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        await idx.search({ dense: qs.subarray((j % 40) * dd, ((j % 40) + 1) * dd) }, { k: 10, funnel: { first: 'binary', multiplier: m } });
        const c = process.cpuUsage(c0);
        if (j < 3) continue;
        wall.push(performance.now() - t0);
        cpu.push((c.user + c.system) / 1000);
      }
      console.log(JSON.stringify({ size: '100k', dims: dd, multiplier: m, wall_ms_p50: +pct50(wall).toFixed(2), cpu_ms_p50: +pct50(cpu).toFixed(2) }));
    }
  }
}
