#!/usr/bin/python3
"""Plots m3-tiny's quality against (layers, dims) from eval.json: SciFact nDCG@10, MS MARCO nDCG@10 and Tatoeba xxx->eng
accuracy (112 languages) for dense at every grid point, hybrid (at full width) per exit and the BM25 line. Usage: plot.py EVAL_JSON OUT_PNG"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "training"))
from common import ensure_apt  # noqa: E402

ensure_apt(["python3-matplotlib"])
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    ev = json.load(open(sys.argv[1]))
    g = ev["model"]
    L, D = g["grid"]["layers"], g["grid"]["dims"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [("scifact", "ndcg@10", "SciFact test nDCG@10"), ("msmarco", "ndcg@10", "MS MARCO subset nDCG@10"), ("tatoeba", "acc_all", "Tatoeba xxx→eng accuracy (112 langs)")]
    for ax, (ds, metric, title) in zip(axes, panels):
        for k in L:
            ax.plot(D, [g[ds][f"{k}/dense/{d}"][metric] for d in D], marker="o", label=f"dense, {k} layers")
        for k in L:
            ax.scatter([max(D) * 1.15], [g[ds][f"{k}/hybrid/{max(D)}"][metric]], marker="*", s=80, label=f"hybrid, {k} layers")
        ax.axhline(ev["bm25"][ds][metric], color="k", linestyle="--", label="BM25 (minisearch)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(D)
        ax.set_xticklabels([str(d) for d in D])
        ax.set_xlabel("dims (Matryoshka prefix)")
        ax.set_ylabel(metric)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("m3-tiny: quality against (layers, dims); stars = hybrid dense+sparse+ColBERT at full width")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
