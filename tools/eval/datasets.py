"""Evaluation splits, read from ../shared/data (never copied). Disjoint from what training/ reads:
the second half of each Tatoeba pair (training reads the first half), XQuAD articles 20..39 (training reads 0..19);
SciFact and MS MARCO are evaluation only."""

from __future__ import annotations

import ast
import csv
import glob
import io
import json
import os
import sys
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "training"))
from common import tatoeba_split  # noqa: E402  (the one definition of the split, shared with training/)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "datasets")
# M3_EVAL_SCOPE=quick (npm run eval -- --quick) evaluates deterministic subsets, for a machine too loaded to encode the
# full corpora in time (the shipped table says which scope it was measured on). Full: every SciFact / MS MARCO
# document, 100 held-out Tatoeba lines per pair, XQuAD articles 20..39.
SCOPE = os.environ.get("M3_EVAL_SCOPE", "full")
QUICK = SCOPE == "quick"
TATOEBA_EVAL_MAX = 25 if QUICK else 100  # held-out lines per language pair, from the second half
CORPUS_MAX = 1000 if QUICK else None  # documents kept per retrieval corpus: every judged one, then fixed-order distractors
XQUAD_EVAL_ARTICLES = (20, 26) if QUICK else (20, 40)
# Tatoeba codes of the XQuAD languages (English has no xxx-eng pair, so 11 of the 12).
XQUAD_TATOEBA = {"ar": "ara", "de": "deu", "el": "ell", "es": "spa", "hi": "hin", "ro": "ron", "ru": "rus", "th": "tha", "tr": "tur", "vi": "vie", "zh": "cmn"}


def available() -> bool:
    return os.path.isdir(DATA)


def scifact():
    """corpus {id: text}, queries {id: text} (the 300 test queries), qrels {qid: {did: rel}}."""
    root = os.path.join(DATA, "scifact")
    corpus = {}
    with zipfile.ZipFile(os.path.join(root, "scifact.zip")) as z:
        rows = csv.DictReader(io.TextIOWrapper(z.open("corpus_train.csv"), encoding="utf-8"))
        for r in rows:
            sents = ast.literal_eval(r["abstract"])
            corpus[r["doc_id"]] = (r["title"] + " " + " ".join(sents)).strip()
    qrels = read_qrels(os.path.join(root, "qrels", "test.tsv"))
    queries = {}
    with open(os.path.join(root, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    return subset(corpus, qrels), queries, qrels


def msmarco():
    root = os.path.join(DATA, "msmarco-subset")
    corpus = {}
    with open(os.path.join(root, "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            corpus[d["_id"]] = (d.get("title", "") + " " + d["text"]).strip()
    qrels = read_qrels(os.path.join(root, "qrels", "test.tsv"))
    queries = {}
    with open(os.path.join(root, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    return subset(corpus, qrels), queries, qrels


def subset(corpus: dict[str, str], qrels: dict[str, dict[str, int]]) -> dict[str, str]:
    """Quick scope: every document judged for an evaluated query, then others in a fixed (sorted-id) order, up to CORPUS_MAX."""
    if CORPUS_MAX is None:
        return corpus
    judged = sorted({d for r in qrels.values() for d in r if d in corpus})
    rest = [d for d in sorted(corpus) if d not in set(judged)]
    keep = (judged + rest)[:CORPUS_MAX]
    return {d: corpus[d] for d in keep}


def read_qrels(path: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")
            if int(s) > 0:
                out.setdefault(q, {})[d] = int(s)
    return out


def tatoeba():
    """{lang: (xxx sentences, eng sentences)} for the held-out lines, aligned."""
    root = os.path.join(DATA, "tatoeba")
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "tatoeba.*-eng.eng"))):
        pair = path.split("tatoeba.")[1].split(".")[0]
        lang = pair.split("-")[0]
        with open(os.path.join(root, f"tatoeba.{pair}.{lang}"), encoding="utf-8") as f:
            xs = f.read().rstrip("\n").split("\n")
        with open(path, encoding="utf-8") as f:
            es = f.read().rstrip("\n").split("\n")
        a = tatoeba_split(len(xs))
        xs, es = xs[a : a + TATOEBA_EVAL_MAX], es[a : a + TATOEBA_EVAL_MAX]
        out[lang] = ([x.strip() for x in xs], [e.strip() for e in es])
        assert out[lang][0], pair
    return out


def xquad():
    """{lang: (paragraphs [P], questions [(text, paragraph index)])} for the held-out articles; parallel across languages."""
    root = os.path.join(DATA, "xquad")
    a, b = XQUAD_EVAL_ARTICLES
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "xquad.*.json"))):
        lang = path.split("xquad.")[1].split(".")[0]
        with open(path, encoding="utf-8") as f:
            data = json.load(f)["data"][a:b]
        paras, qs = [], []
        for art in data:
            for p in art["paragraphs"]:
                for qa in p["qas"]:
                    qs.append((qa["question"].strip(), len(paras)))
                paras.append(p["context"].strip())
        out[lang] = (paras, qs)
    return out
