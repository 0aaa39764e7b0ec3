#!/usr/bin/python3
"""Why does (or doesn't) dense quality rise with depth? Per-exit evidence from a stage-2 checkpoint, on training-distribution data only.

    nice -n 19 /usr/bin/python3 training/diagnose_exits.py [training/runs/stage2.pt | exported folder ...] [--batches 3] [--dev-rows 128]

For each checkpoint, printed as one JSON line:
- dev: recall@1 of dense (mean pooling, every exit x prefix), sparse and ColBERT on stage 2's held-out dev bucket (the
  group-hash bucket training never sees; in-set retrieval over up to --dev-rows pairs per source), averaged over sources;
- grad: on --batches training batches, the gradient norm that each exit's dense loss (mean pooling, summed over the
  prefixes) sends into each block, and the share of the whole stage-2 loss's gradient per block: shows which blocks each
  exit trains (blocks above an exit get nothing from it, blocks 1..2 get every exit's loss);
- dense_full_width: dense recall@1 at full width raw and after removing the common mean vector, and that mean's energy share;
- update: per exit, ||h_k - h_{k-2}|| / ||h_k|| of the residual stream before the final norm (how much blocks k-1..k change
  the representation) and the mean pairwise cosine of pooled dev passages (collapse: a common direction shared by every text).
SciFact and MS MARCO are never read here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RUNS, set_threads  # noqa: E402
import stage2_retrieval as s2  # noqa: E402  (its ensure_apt runs on import)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from model import M3Tiny, TinyConfig, from_export, masked_mean  # noqa: E402


def load(path: str) -> M3Tiny:
    if os.path.isdir(path):  # an exported folder (f16 weights, no lm_head, which nothing here reads)
        m = from_export(path)
        return m, {"config": m.cfg.to_dict(), "step": None}
    ck = torch.load(path)
    m = M3Tiny(TinyConfig(**ck["config"]))
    m.load_state_dict(ck["model"])
    return m, ck


@torch.no_grad()
def dev_recall(model: M3Tiny, sp, dev, rows_max: int) -> dict:
    model.eval()
    acc: dict[str, list[float]] = {}
    for src in sorted(dev):
        rows = dev[src][:rows_max]
        if len({r["group"] for r in rows}) < 64:
            continue
        q = s2.encode_batch(sp, [r["q"] for r in rows], 32)
        p = s2.encode_batch(sp, [r["p"] for r in rows], 96)
        groups = [r["group"] for r in rows]
        for key, s in s2.all_scores(model, q, p, pools=("mean",)).items():
            top = s.argmax(-1).tolist()
            acc.setdefault("/".join(map(str, key)), []).append(sum(groups[t] == groups[i] for i, t in enumerate(top)) / len(rows))
    return {k: round(sum(v) / len(v), 4) for k, v in acc.items()}


@torch.no_grad()
def centered_recall(model: M3Tiny, sp, dev, rows_max: int) -> dict:
    """Dense recall@1 at full width with and without removing the mean pooled vector (over the source's dev queries and
    passages): if centering recovers depth, the deep exits carry the information under a text-independent offset."""
    model.eval()
    acc: dict[str, list[float]] = {}
    K, D = model.cfg.mrl_layers, max(model.cfg.mrl_dims)
    for src in sorted(dev):
        rows = dev[src][:rows_max]
        if len({r["group"] for r in rows}) < 64:
            continue
        (qi, qm), (pi, pm) = s2.encode_batch(sp, [r["q"] for r in rows], 32), s2.encode_batch(sp, [r["p"] for r in rows], 96)
        hq, hp = model.model(qi, qm, K), model.model(pi, pm, K)
        groups = [r["group"] for r in rows]
        for k in K:
            eq, ep = masked_mean(hq[k], qm)[:, :D], masked_mean(hp[k], pm)[:, :D]  # (N, D)
            mu = torch.cat([eq, ep]).mean(0, keepdim=True)
            for name, (a, b) in {"raw": (eq, ep), "centered": (eq - mu, ep - mu)}.items():
                top = (F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T).argmax(-1).tolist()
                acc.setdefault(f"{name}/{k}", []).append(sum(groups[t] == groups[i] for i, t in enumerate(top)) / len(rows))
            # share of the pooled vectors' energy in their common mean: 1 = every text has the same vector
            acc.setdefault(f"common_share/{k}", []).append(float(mu.norm() ** 2 / torch.cat([eq, ep]).pow(2).sum(-1).mean()))
    return {k: round(sum(v) / len(v), 4) for k, v in acc.items()}


@torch.no_grad()
def updates(model: M3Tiny, sp, dev, rows_max: int) -> dict:
    """Residual-stream change per exit and pooled-embedding collapse, on dev passages."""
    model.eval()
    rows = [r for src in sorted(dev) for r in dev[src][: rows_max // 4]]
    ids, mask = s2.encode_batch(sp, [r["p"] for r in rows], 96)
    enc = model.model
    pos = torch.arange(ids.shape[1])
    x = enc.input_norm(enc.embed_tokens(ids) + enc.pos_embeddings(pos)[None])  # (B, T, H)
    bias = (1.0 - mask[:, None, None, :].float()) * -1e9
    m = mask[..., None].float()
    out, prev = {}, x
    for i, layer in enumerate(enc.layers):
        x = layer(x, bias)
        k = i + 1
        if k in model.cfg.mrl_layers:
            rel = (((x - prev) * m).norm() / (x * m).norm()).item()
            e = F.normalize(masked_mean(enc.norm(x), mask), dim=-1)
            n = e.shape[0]
            out[k] = {"rel_change_vs_prev_exit": round(rel, 4), "mean_pairwise_cos": round(((e @ e.T).sum().item() - n) / (n * n - n), 4)}
            prev = x
    return out


def grads(model: M3Tiny, sp, train, n_batches: int, seed: int, base_step: int) -> dict:
    """Gradient norm per block from each exit's dense (mean) loss, and per block from the full stage-2 loss."""
    model.train()
    cfg = model.cfg
    blocks = {f"block{i + 1}": list(b.parameters()) for i, b in enumerate(model.model.layers)}
    blocks["embed"] = list(model.model.embed_tokens.parameters()) + list(model.model.pos_embeddings.parameters())
    per_exit = {k: {b: 0.0 for b in blocks} for k in cfg.mrl_layers}
    full = {b: 0.0 for b in blocks}
    for j in range(n_batches):
        _, rows = s2.batch_for(base_step + j, seed, train, 32)
        q = s2.encode_batch(sp, [r["q"] for r in rows], 32)
        p = s2.encode_batch(sp, [r["p"] for r in rows], 96)
        target = torch.arange(len(rows))
        for k in cfg.mrl_layers + [None]:
            model.zero_grad(set_to_none=True)
            sc = s2.all_scores(model, q, p)
            if k is None:
                loss, _ = s2.step_loss(model, sc, 0.05)
            else:
                loss = sum(F.cross_entropy(sc[("dense", "mean", k, d)] / 0.05, target) for d in cfg.mrl_dims)
            loss.backward()
            for b, ps in blocks.items():
                g = sum(float(pp.grad.pow(2).sum()) for pp in ps if pp.grad is not None) ** 0.5
                (full if k is None else per_exit[k])[b] += g / n_batches
    tot = sum(full.values())
    return {"per_exit_dense_loss": {k: {b: round(v, 4) for b, v in d.items()} for k, d in per_exit.items()},
            "full_loss_share": {b: round(v / tot, 3) for b, v in full.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpts", nargs="*", default=[os.path.join(RUNS, "stage2.pt")])
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--dev-rows", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-grads", action="store_true")
    ap.add_argument("--only-centered", action="store_true", help="just the dense centering check (fast)")
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(13)
    sp = s2.load_spm()
    train, dev = s2.load_pairs()
    for path in args.ckpts:
        model, ck = load(path)
        if args.only_centered:
            print(json.dumps({"ckpt": os.path.relpath(path), "step": ck["step"], "dense_full_width": centered_recall(model, sp, dev, args.dev_rows)}), flush=True)
            continue
        res = {"ckpt": os.path.relpath(path), "step": ck["step"], "dev_recall@1": dev_recall(model, sp, dev, args.dev_rows), "update": updates(model, sp, dev, args.dev_rows),
               "dense_full_width": centered_recall(model, sp, dev, args.dev_rows)}
        if not args.skip_grads:
            res["grad"] = grads(model, sp, train, args.batches, 13, ck["step"])
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
