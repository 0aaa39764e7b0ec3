/**
 * BM25 baseline on exactly the splits the model is evaluated on (tools/eval/grid.py --splits writes them), with
 * minisearch 7 (BM25+ as minisearch implements it): k1 = 1.2, b = 0.7, d = 0.5 (its defaults), its default
 * tokenizer (split on Unicode space and punctuation) and term processing (lower-case), no stemming, no stop
 * words, OR of the query terms, no fuzzy or prefix matching. Documents are indexed whole (not cut to the
 * model's 128 tokens). Scripts without spaces (Chinese, Japanese, Thai) become one term per run of characters.
 */
import MiniSearch from 'minisearch';

export interface Splits {
  scifact: { corpus: Record<string, string>; queries: Record<string, string>; qrels: Record<string, Record<string, number>> };
  msmarco: { corpus: Record<string, string>; queries: Record<string, string>; qrels: Record<string, Record<string, number>> };
  tatoeba: Record<string, [string[], string[]]>;
  xquad: Record<string, [string[], [string, number][]]>;
  xquad_tatoeba: Record<string, string>;
}

export const BM25_PARAMS = { k: 1.2, b: 0.7, d: 0.5 } as const;

function index(docs: string[]): MiniSearch<{ id: number; text: string }> {
  const ms = new MiniSearch<{ id: number; text: string }>({ fields: ['text'], searchOptions: { bm25: BM25_PARAMS, combineWith: 'OR' } });
  ms.addAll(docs.map((text, id) => ({ id, text })));
  return ms;
}

/** nDCG@k with graded gains rel / log2(rank + 1) (BEIR / pytrec_eval's linear gain), ideal from the judgments. */
export function ndcgAt(ranked: string[], rels: Record<string, number>, k = 10): number {
  let dcg = 0;
  ranked.slice(0, k).forEach((d, i) => (dcg += (rels[d] ?? 0) / Math.log2(i + 2)));
  const ideal = Object.values(rels)
    .sort((a, b) => b - a)
    .slice(0, k);
  const idcg = ideal.reduce((s, r, i) => s + r / Math.log2(i + 2), 0);
  return idcg ? dcg / idcg : 0;
}

export function recallAt(ranked: string[], rels: Record<string, number>, k = 100): number {
  const top = new Set(ranked.slice(0, k));
  const ids = Object.keys(rels);
  return ids.filter((d) => top.has(d)).length / ids.length;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number) => Math.round(x * 1e4) / 1e4;

function retrieval(set: Splits['scifact']) {
  const ids = Object.keys(set.corpus);
  const ms = index(ids.map((d) => set.corpus[d]));
  const nd: number[] = [];
  const rc: number[] = [];
  for (const [q, text] of Object.entries(set.queries)) {
    const ranked = ms
      .search(text)
      .slice(0, 100)
      .map((r) => ids[r.id as number]);
    nd.push(ndcgAt(ranked, set.qrels[q]));
    rc.push(recallAt(ranked, set.qrels[q]));
  }
  return { 'ndcg@10': round(mean(nd)), 'recall@100': round(mean(rc)), queries: nd.length };
}

/** Top-1 accuracy: query i is right when its best-scoring document is gold[i]; no match at all counts as wrong. */
function top1(queries: string[], docs: string[], gold: number[]): number {
  const ms = index(docs);
  let hit = 0;
  queries.forEach((q, i) => {
    const r = ms.search(q);
    if (r.length && r[0].id === gold[i]) hit++;
  });
  return hit / queries.length;
}

export function bm25Baseline(s: Splits) {
  const tat: Record<string, number> = {};
  for (const [lang, [xs, es]] of Object.entries(s.tatoeba))
    tat[lang] = top1(
      xs,
      es,
      xs.map((_, i) => i),
    );
  const xqLangs = new Set(Object.values(s.xquad_tatoeba));
  const langs = Object.keys(s.xquad).sort();
  const cross: number[] = [];
  for (const lq of langs)
    for (const lp of langs)
      if (lq !== lp)
        cross.push(
          top1(
            s.xquad[lq][1].map(([q]) => q),
            s.xquad[lp][0],
            s.xquad[lq][1].map(([, p]) => p),
          ),
        );
  return {
    params: { library: 'minisearch', ...BM25_PARAMS, tokenizer: 'minisearch default (Unicode space/punctuation), lower-case, no stemming', combineWith: 'OR' },
    scifact: retrieval(s.scifact),
    msmarco: retrieval(s.msmarco),
    tatoeba: {
      acc_all: round(mean(Object.values(tat))),
      acc_xquad_langs: round(
        mean(
          Object.entries(tat)
            .filter(([l]) => xqLangs.has(l))
            .map(([, v]) => v),
        ),
      ),
      n_langs: Object.keys(tat).length,
    },
    xquad: { 'recall@1_cross': round(mean(cross)), pairs: cross.length },
  };
}
