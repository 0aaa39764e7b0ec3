#!/usr/bin/python3
"""m3-tiny over its whole trained grid, from the shipped folder: one forward per text gives every exit.

    /usr/bin/python3 tools/eval/grid.py [--model public/models/m3-tiny] [--out training/runs/eval/grid.json]

For each exit k in mrl_layers: dense at every d in mrl_dims (the folder's pooling, then truncate, then L2),
sparse (max-combined relu(sparse_linear(h)) per token id, special ids dropped), ColBERT (normalised
colbert_linear(h[1:]), MaxSim averaged over query vectors) and hybrid = (0.4 dense + 0.2 sparse + 0.4 colbert)
/ 1.0 (FlagEmbedding compute_score with the README's weights; hybrid uses dense at d). Retrieval sets
(SciFact, MS MARCO): ColBERT and hybrid rerank the union of the top-100 of dense (full width) and sparse at
that exit (Tatoeba, XQuAD: top-20); nothing outside that union is ranked by them (CPU budget; see the model card).
Passages are cut to --plen tokens (default 128), queries to 64. Writes grid.json and golden embeddings
of a few texts (tools/eval/golden-m3-tiny.json, for the engine parity test) when --golden is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets as ds  # noqa: E402

REPO = ds.REPO
sys.path.insert(0, os.path.join(REPO, "training"))
from common import ensure_apt, set_threads  # noqa: E402

ensure_apt(["python3-torch", "python3-sentencepiece", "python3-numpy", "libopenblas0-pthread"])
import numpy as np  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from model import colbert_vecs, from_export, masked_mean, sparse_weights  # noqa: E402

W_HYBRID = (0.4, 0.2, 0.4)  # dense, sparse, colbert


class Shipped:
    """The shipped folder as the engine sees it: f16 weights (upcast), its tokenizer model, its pooling."""

    def __init__(self, folder: str):
        self.model = from_export(folder)  # f16 weights upcast (or a dequantised f32 folder), every weight but lm_head
        self.cfg = self.model.cfg
        self.model.eval()
        pool = json.load(open(os.path.join(folder, "1_Pooling", "config.json")))
        self.pooling = "cls" if pool["pooling_mode_cls_token"] else "mean"
        self.sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "sentencepiece.bpe.model"))

    def ids(self, text: str, max_len: int) -> list[int]:
        ids = [3 if i == 0 else i + 1 for i in self.sp.encode(text)]
        return [0] + ids[: max_len - 2] + [2]

    @torch.no_grad()
    def encode(self, texts: list[str], max_len: int, colbert: bool = True, batch_tokens: int = 8192) -> dict[int, dict]:
        """Per exit k: dense_full (N, H) pooled un-truncated, sparse (N, V) float16-free dense lexical matrix, colbert list."""
        seqs = [self.ids(t, max_len) for t in texts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        K = self.cfg.mrl_layers
        out = {k: {"dense": torch.zeros(len(seqs), self.cfg.hidden_size), "sparse": {}, "colbert": [None] * len(seqs)} for k in K}
        i = 0
        while i < len(order):
            T = len(seqs[order[min(len(order) - 1, i)]])
            n = max(1, min(256, batch_tokens // max(T, 1)))
            idx = order[i : i + n]
            T = max(len(seqs[j]) for j in idx)
            ids = torch.full((len(idx), T), 1, dtype=torch.long)
            mask = torch.zeros(len(idx), T, dtype=torch.long)
            for r, j in enumerate(idx):
                ids[r, : len(seqs[j])] = torch.tensor(seqs[j])
                mask[r, : len(seqs[j])] = 1
            hs = self.model.model(ids, mask, K)
            for k, h in hs.items():
                e = h[:, 0] if self.pooling == "cls" else masked_mean(h, mask)
                out[k]["dense"][idx] = e
                w = sparse_weights(self.model, h, ids, mask)
                for r, j in enumerate(idx):
                    lex: dict[int, float] = {}
                    for t, wt in zip(ids[r].tolist(), w[r].tolist()):
                        if wt > 0 and wt > lex.get(t, 0.0):
                            lex[t] = wt
                    out[k]["sparse"][j] = lex
                if colbert:
                    v, m = colbert_vecs(self.model, h, mask)
                    for r, j in enumerate(idx):
                        out[k]["colbert"][j] = v[r, : int(m[r].sum())].clone()
            i += n
        return out


def dense_scores(q: torch.Tensor, p: torch.Tensor, d: int) -> torch.Tensor:
    return F.normalize(q[:, :d], dim=-1) @ F.normalize(p[:, :d], dim=-1).T


def lex_matrix(lex: dict[int, dict[int, float]], n: int, V: int) -> torch.Tensor:
    rows, cols, vals = [], [], []
    for i in range(n):
        for t, w in lex[i].items():
            rows.append(i)
            cols.append(t)
            vals.append(w)
    return torch.sparse_coo_tensor(torch.tensor([rows, cols], dtype=torch.long), torch.tensor(vals), (n, V)).coalesce()


def sparse_scores(q: dict, p: dict, nq: int, npas: int, V: int) -> torch.Tensor:
    Q = lex_matrix(q, nq, V).to_dense()  # (nq, V) small
    P = lex_matrix(p, npas, V)  # (np, V) sparse
    return torch.sparse.mm(P, Q.T).T  # (nq, np)


def colbert_pair(qv: torch.Tensor, pv: torch.Tensor) -> float:
    return float((qv @ pv.T).max(-1).values.mean()) if len(qv) and len(pv) else 0.0


def ndcg_at(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rels: dict[str, int], k: int = 100) -> float:
    return len(set(ranked[:k]) & set(rels)) / len(rels)


def retrieval(model: Shipped, corpus, queries, qrels, plen: int, log) -> dict:
    dids, qids = list(corpus), list(queries)
    t0 = time.time()
    P = model.encode([corpus[d] for d in dids], plen)
    log(f"  encoded {len(dids)} passages in {time.time() - t0:.0f} s")
    Q = model.encode([queries[q] for q in qids], 64)
    V = model.cfg.vocab_size
    res = {}
    for k in model.cfg.mrl_layers:
        sp = sparse_scores(Q[k]["sparse"], P[k]["sparse"], len(qids), len(dids), V)
        full = dense_scores(Q[k]["dense"], P[k]["dense"], model.cfg.hidden_size)
        runs: dict[str, list[list[str]]] = {}
        for d in model.cfg.mrl_dims:
            ds_ = dense_scores(Q[k]["dense"], P[k]["dense"], d)
            runs[f"dense/{d}"] = [[dids[j] for j in row] for row in ds_.topk(100, dim=-1).indices.tolist()]
        runs["sparse"] = [[dids[j] for j in row] for row in sp.topk(100, dim=-1).indices.tolist()]
        # ColBERT and hybrid on the candidate union (top-100 dense full width ∪ top-100 sparse).
        cand = [sorted(set(a) | set(b)) for a, b in zip(full.topk(100, -1).indices.tolist(), sp.topk(100, -1).indices.tolist())]
        col = [{j: colbert_pair(Q[k]["colbert"][i], P[k]["colbert"][j]) for j in cand[i]} for i in range(len(qids))]
        runs["colbert"] = [[dids[j] for j in sorted(c, key=lambda j: -c[j])][:100] for c in col]
        for d in model.cfg.mrl_dims:
            ds_ = dense_scores(Q[k]["dense"], P[k]["dense"], d)
            hy = []
            for i in range(len(qids)):
                s = {j: W_HYBRID[0] * float(ds_[i, j]) + W_HYBRID[1] * float(sp[i, j]) + W_HYBRID[2] * col[i][j] for j in cand[i]}
                hy.append([dids[j] for j in sorted(s, key=lambda j: -s[j])][:100])
            runs[f"hybrid/{d}"] = hy
        for name, ranked in runs.items():
            res[f"{k}/{name}"] = {
                "ndcg@10": round(float(np.mean([ndcg_at(r, qrels[q]) for r, q in zip(ranked, qids)])), 4),
                "recall@100": round(float(np.mean([recall_at(r, qrels[q]) for r, q in zip(ranked, qids)])), 4),
            }
    return res


def accuracy(scores: torch.Tensor, gold: list[int]) -> float:
    return float((scores.argmax(-1) == torch.tensor(gold)).float().mean())


def all_scores_small(model: Shipped, Q, P, k: int, nq: int, npas: int, top: int = 20) -> dict[str, torch.Tensor]:
    """Score matrices (nq, npas) for the small sets (Tatoeba, XQuAD): dense at every d and sparse in full; ColBERT and
    hybrid on the union of the top-`top` of dense (full width) and sparse per query, -inf elsewhere (CPU budget)."""
    V = model.cfg.vocab_size
    sp = sparse_scores(Q[k]["sparse"], P[k]["sparse"], nq, npas, V)
    full = dense_scores(Q[k]["dense"], P[k]["dense"], model.cfg.hidden_size)
    t = min(top, npas)
    col = torch.full((nq, npas), -math.inf)
    for i, (a, b) in enumerate(zip(full.topk(t, -1).indices.tolist(), sp.topk(t, -1).indices.tolist())):
        for j in set(a) | set(b):
            col[i, j] = colbert_pair(Q[k]["colbert"][i], P[k]["colbert"][j])
    out = {"sparse": sp, "colbert": col}
    for d in model.cfg.mrl_dims:
        de = dense_scores(Q[k]["dense"], P[k]["dense"], d)
        out[f"dense/{d}"] = de
        out[f"hybrid/{d}"] = W_HYBRID[0] * de + W_HYBRID[1] * sp + W_HYBRID[2] * col
    return out


def tatoeba_eval(model: Shipped, log) -> dict:
    data = ds.tatoeba()
    per: dict[str, dict[str, float]] = {}
    t0 = time.time()
    for lang, (xs, es) in data.items():
        X = model.encode(xs, 64)
        E = model.encode(es, 64)
        for k in model.cfg.mrl_layers:
            for name, s in all_scores_small(model, X, E, k, len(xs), len(es)).items():
                per.setdefault(f"{k}/{name}", {})[lang] = accuracy(s, list(range(len(xs))))
    log(f"  tatoeba: {len(data)} languages in {time.time() - t0:.0f} s")
    xq = set(ds.XQUAD_TATOEBA.values())
    return {key: {"acc_all": round(float(np.mean(list(v.values()))), 4), "acc_xquad_langs": round(float(np.mean([v[l] for l in v if l in xq])), 4), "n_langs": len(v)} for key, v in per.items()}


def xquad_eval(model: Shipped, log, plen: int) -> dict:
    data = ds.xquad()
    langs = sorted(data)
    enc_p = {l: model.encode(data[l][0], plen) for l in langs}
    enc_q = {l: model.encode([q for q, _ in data[l][1]], 64) for l in langs}
    per: dict[str, list[float]] = {}
    for lq in langs:
        gold = [p for _, p in data[lq][1]]
        for lp in langs:
            if lp == lq:
                continue
            for k in model.cfg.mrl_layers:
                for name, s in all_scores_small(model, enc_q[lq], enc_p[lp], k, len(gold), len(data[lp][0])).items():
                    per.setdefault(f"{k}/{name}", []).append(accuracy(s, gold))
    log(f"  xquad: {len(langs)} languages, {len(data['en'][0])} paragraphs, {len(data['en'][1])} questions each")
    return {key: {"recall@1_cross": round(float(np.mean(v)), 4), "pairs": len(v)} for key, v in per.items()}


GOLDEN_TEXTS = [
    "Where is the nearest train station?",
    "0-dimensional biomaterials lack inductive properties.",
    "Ich möchte heute Abend ins Kino gehen, aber es regnet.",
    "我们明天去北京看朋友。",
    "A command-line tool to convert images between formats, resize them and apply filters.",
    "Я не знаю, где он живёт.",
]


def golden(model: Shipped) -> dict:
    """Dense embeddings (truncated, normalised) of a few texts at every trained (k, d), plus the token ids used."""
    enc = model.encode(GOLDEN_TEXTS, 512, colbert=False)
    out = {"texts": GOLDEN_TEXTS, "ids": [model.ids(t, 512) for t in GOLDEN_TEXTS], "pooling": model.pooling, "cases": []}
    for k in model.cfg.mrl_layers:
        for d in model.cfg.mrl_dims:
            e = F.normalize(enc[k]["dense"][:, :d], dim=-1)
            out["cases"].append({"layers": k, "dims": d, "embeddings": [[round(x, 6) for x in row] for row in e.tolist()]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(REPO, "public", "models", "m3-tiny"))
    ap.add_argument("--out", default=os.path.join(REPO, "training", "runs", "eval", "grid.json"))
    ap.add_argument("--plen", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="scifact,msmarco,tatoeba,xquad")
    ap.add_argument("--golden", help="write golden embeddings here and exit")
    ap.add_argument("--splits", help="write the evaluation splits (texts, qrels) here as JSON for the BM25 baseline, and exit")
    args = ap.parse_args()
    set_threads(args.threads)
    model = Shipped(args.model) if not args.splits else None
    if args.golden:
        with open(args.golden, "w") as f:
            json.dump(golden(model), f)
            f.write("\n")
        return
    if not ds.available():
        raise SystemExit(f"skip: {ds.DATA} (../shared/data) is absent; the evaluation needs it")
    if args.splits:
        sf, mm = ds.scifact(), ds.msmarco()
        splits = {"scifact": dict(zip(("corpus", "queries", "qrels"), sf)), "msmarco": dict(zip(("corpus", "queries", "qrels"), mm)),
                  "tatoeba": ds.tatoeba(), "xquad": ds.xquad(), "xquad_tatoeba": ds.XQUAD_TATOEBA}
        with open(args.splits, "w", encoding="utf-8") as f:
            json.dump(splits, f, ensure_ascii=False)
        return
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    res = {"pooling": model.pooling, "plen": args.plen, "scope": ds.SCOPE, "grid": {"layers": model.cfg.mrl_layers, "dims": model.cfg.mrl_dims}}
    t0 = time.time()
    only = args.only.split(",")
    if "scifact" in only:
        res["scifact"] = retrieval(model, *ds.scifact(), args.plen, log)
        log(f"scifact done at {time.time() - t0:.0f} s")
    if "msmarco" in only:
        res["msmarco"] = retrieval(model, *ds.msmarco(), args.plen, log)
        log(f"msmarco done at {time.time() - t0:.0f} s")
    if "tatoeba" in only:
        res["tatoeba"] = tatoeba_eval(model, log)
        log(f"tatoeba done at {time.time() - t0:.0f} s")
    if "xquad" in only:
        res["xquad"] = xquad_eval(model, log, args.plen)
        log(f"xquad done at {time.time() - t0:.0f} s")
    res["wall_s"] = round(time.time() - t0)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(args.out)


if __name__ == "__main__":
    main()
