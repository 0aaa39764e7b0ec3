#!/usr/bin/python3
"""How lexical is each exit's dense ranking? On an evaluation set's queries and corpus (reporting only: nothing here
trains or tunes), per exit k: the overlap of full-width dense top-10 with the top-10 of an idf-weighted
token-overlap ranker over the model's own SentencePiece ids (a BM25-like lexical ranker without length
normalisation), and each ranking's nDCG@10.

    M3_EVAL_SCOPE=quick /usr/bin/python3 training/lexical_overlap.py [--model public/models/m3-tiny] [--set scifact]

Used in the model card's "Does dense quality rise with depth?": if deeper exits rank less lexically and the set
rewards lexical overlap, shallow exits win there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "eval"))
import datasets as ds  # noqa: E402
import grid  # noqa: E402  (its ensure_apt runs on import)

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ds.REPO, "public", "models", "m3-tiny"))
    ap.add_argument("--set", choices=["scifact", "msmarco"], default="scifact")
    ap.add_argument("--plen", type=int, default=128)
    args = ap.parse_args()
    m = grid.Shipped(args.model)
    corpus, queries, qrels = getattr(ds, args.set)()
    dids, qids = list(corpus), list(queries)
    P = m.encode([corpus[d] for d in dids], args.plen, colbert=False)
    Q = m.encode([queries[q] for q in qids], 64, colbert=False)
    # Lexical ranker: sum over the query's distinct pieces (specials dropped) of idf, for pieces the passage contains.
    ptoks = [set(m.ids(corpus[d], args.plen)[1:-1]) for d in dids]
    df = Counter(t for s in ptoks for t in s)
    N = len(dids)
    idf = {t: math.log(1 + (N - n + 0.5) / (n + 0.5)) for t, n in df.items()}
    lex_top = []
    for q in qids:
        qt = set(m.ids(queries[q], 64)[1:-1])
        sc = [sum(idf.get(t, 0.0) for t in qt & s) for s in ptoks]
        lex_top.append(sorted(range(N), key=lambda j: -sc[j])[:10])
    ndcg = lambda tops: round(sum(grid.ndcg_at([dids[j] for j in t], qrels[q]) for t, q in zip(tops, qids)) / len(qids), 4)  # noqa: E731
    out = {"set": args.set, "scope": ds.SCOPE, "docs": N, "queries": len(qids), "lexical_ndcg@10": ndcg(lex_top), "exits": {}}
    D = m.cfg.hidden_size
    for k in m.cfg.mrl_layers:
        top = grid.dense_scores(Q[k]["dense"], P[k]["dense"], D).topk(10, dim=-1).indices.tolist()
        overlap = sum(len(set(a) & set(b)) for a, b in zip(top, lex_top)) / (10 * len(qids))
        out["exits"][k] = {"dense_ndcg@10": ndcg(top), "top10_overlap_with_lexical": round(overlap, 4)}
    print(json.dumps(out))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
