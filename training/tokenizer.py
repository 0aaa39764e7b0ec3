#!/usr/bin/python3
"""Trains m3-tiny's SentencePiece Unigram vocabulary on the training text and writes it as a Hugging Face
tokenizer.json with XLM-R's special ids, through the project's converter
(tools/fixtures/train_unigram_tokenizer.py: same spm options, same normalizer emulation, same id layout).

    /usr/bin/python3 training/tokenizer.py [--vocab 16000]

Input: a deterministic, source-balanced sample of training/runs/data/mlm.jsonl (so the 112 Tatoeba
languages are not drowned by English package descriptions). Output: training/runs/spm.model and
tokenizer.json, tokenizer_config.json, special_tokens_map.json in public/models/m3-tiny/.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random

from common import MODEL_DIR, REPO, RUNS, ensure_apt

# Lines per source in the tokenizer sample (all of the small multilingual ones).
SAMPLE = {"debian-en": 40000, "debian-xx": 30000, "wordnet": 30000, "man": 4000, "tatoeba": 50000, "xquad": 2000}


def converter():
    path = os.path.join(REPO, "tools", "fixtures", "train_unigram_tokenizer.py")
    spec = importlib.util.spec_from_file_location("train_unigram_tokenizer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=16000, help="spm pieces; HF vocab = this + 2 (<pad>, <mask>)")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    ensure_apt(["python3-sentencepiece"])
    conv = converter()
    spm = conv.spm
    by_src: dict[str, list[str]] = {}
    with open(os.path.join(RUNS, "data", "mlm.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            by_src.setdefault(r["src"], []).append(r["t"])
    rng = random.Random(args.seed)
    lines = []
    for src in sorted(by_src):
        xs = by_src[src]
        lines += rng.sample(xs, min(len(xs), SAMPLE.get(src, 0)))
    os.makedirs(RUNS, exist_ok=True)
    corpus = os.path.join(RUNS, "tokenizer_corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.writelines(t[:2000] + "\n" for t in lines)
    prefix = os.path.join(RUNS, "spm")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, **{**conv.SPM_OPTIONS, "vocab_size": args.vocab})
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    tok = conv.build_tokenizer_json(sp)
    mask_id = len(tok["model"]["vocab"]) - 1
    os.makedirs(MODEL_DIR, exist_ok=True)
    conv.write_json(os.path.join(MODEL_DIR, "tokenizer.json"), tok, compact=True)
    conv.write_json(os.path.join(MODEL_DIR, "tokenizer_config.json"), {**conv.tokenizer_config(mask_id), "model_max_length": 512})
    conv.write_json(os.path.join(MODEL_DIR, "special_tokens_map.json"), conv.SPECIAL_TOKENS_MAP)
    print(f"tokenizer: {len(lines)} lines, {sp.get_piece_size()} spm pieces, HF vocab {mask_id + 1} -> {MODEL_DIR}")


if __name__ == "__main__":
    main()
