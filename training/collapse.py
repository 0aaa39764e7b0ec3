#!/usr/bin/python3
"""Representation-collapse check: mean pairwise cosine of mean-pooled embeddings of unrelated texts at every exit.

    /usr/bin/python3 training/collapse.py training/runs/stage1.pt [more checkpoints]

A healthy encoder gives well under 1 (the seeded init: ~0.56); a value near 1 means every text maps to nearly the
same vector, as early MLM training does while it only predicts unigram frequencies.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common import load_spm  # noqa: E402
from model import M3Tiny, TinyConfig, masked_mean  # noqa: E402
from stage2_retrieval import encode_batch  # noqa: E402

TEXTS = ["Where is the nearest train station?", "A library for parsing XML files", "the cat sat on the mat",
         "Ich gehe heute ins Kino", "quantum mechanics of black holes", "tool to compress files"]


def main() -> None:
    sp = load_spm()
    ids, mask = encode_batch(sp, TEXTS, 64)
    n = len(TEXTS)
    for path in sys.argv[1:]:
        ck = torch.load(path)
        m = M3Tiny(TinyConfig(**ck["config"]))
        m.load_state_dict(ck["model"])
        m.eval()
        with torch.no_grad():
            hs = m.model(ids, mask, m.cfg.mrl_layers)
        for k, h in hs.items():
            e = F.normalize(masked_mean(h, mask), dim=-1)
            print(f"{path} step {ck['step']} exit {k}: mean pairwise cos {((e @ e.T).sum().item() - n) / (n * n - n):.4f}")


if __name__ == "__main__":
    main()
