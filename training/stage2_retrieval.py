#!/usr/bin/python3
"""Stage 2 (BGE-M3): contrastive retrieval training of dense, sparse and ColBERT heads with self-knowledge
distillation, under a 2D Matryoshka loss over m3BERT's (mrl_layers x mrl_dims) grid.

    nice -n 5 /usr/bin/python3 training/stage2_retrieval.py [--steps N] [--threads 1]

Per step: one source (fixed weights), B (query, passage) pairs, in-batch negatives (pairs that share a passage
group are masked out, not counted as negatives). For every exit k:
  dense_k,d  = cos(pool(h_k)[:d] of q, p) / temp    for every d in mrl_dims, both CLS and mean pooling
               (both are trained so the pooling can be chosen by measurement afterwards: see --dev);
  sparse_k   = sum over shared token ids of max-combined relu(sparse_linear(h_k)) weights (FlagEmbedding);
  colbert_k  = mean over query vectors of max over passage vectors of normalised colbert_linear(h_k[1:]);
Hard-label InfoNCE on each; the ensemble at the deepest exit, dense + 0.3 sparse + colbert (FlagEmbedding's
weights), is both trained and, detached, the soft teacher of every score at every exit (self-knowledge
distillation; distilling the deepest exit into the shallow ones as sentence-transformers' AdaptiveLayerLoss does).
Initialised from stage 1 (training/runs/stage1.pt); checkpoints training/runs/stage2.pt (resumed automatically).

Continued run (the second shipped stage 2; see the model card for why):
    nice -n 19 /usr/bin/python3 training/stage2_retrieval.py --continue-from training/runs/stage2.pt --out training/runs/stage2b.pt \
        --pools mean --exit-weights linear --steps 240 --schedule-steps 240 --threads 2
--pools mean drops the CLS cells (half the dense cells; their loss never left ln 32); --exit-weights linear weights exit k
by k / K instead of uniformly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RUNS, ensure_apt, hf_ids, load_spm, save_atomic, set_threads  # noqa: E402

ensure_apt(["python3-torch", "python3-sentencepiece", "python3-numpy", "libopenblas0-pthread"])
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from model import M3Tiny, TinyConfig, colbert_vecs, from_export, masked_mean, sparse_weights  # noqa: E402

SOURCE_WEIGHTS = {"debian-en": 0.22, "debian-xx": 0.18, "wordnet": 0.15, "tatoeba": 0.25, "xquad": 0.12, "man": 0.08}
W_DENSE, W_SPARSE, W_COLBERT = 1.0, 0.3, 1.0  # FlagEmbedding m3 ensemble weights
DEV_EVERY = 97  # group-hash bucket held out of training as the pooling dev set


def bucket(group: str) -> int:
    h = 0
    for ch in group:
        h = (h * 131 + ord(ch)) % 1_000_003
    return h % DEV_EVERY


def load_pairs():
    train: dict[str, list[dict]] = {}
    dev: dict[str, list[dict]] = {}
    with open(os.path.join(RUNS, "data", "pairs.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            src = r["src"] if not r["src"].startswith("debian-") or r["src"] == "debian-en" else "debian-xx"
            (dev if bucket(r["group"]) == 0 else train).setdefault(src, []).append(r)
    return train, dev


def encode_batch(sp, texts: list[str], max_len: int):
    seqs = [hf_ids(sp, t, max_len) for t in texts]
    T = max(map(len, seqs))
    ids = torch.full((len(seqs), T), 1, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def batch_for(step: int, seed: int, pairs, B: int):
    rng = random.Random(seed * 1_000_003 + step)
    srcs = sorted(SOURCE_WEIGHTS)
    src = rng.choices(srcs, [SOURCE_WEIGHTS[s] for s in srcs])[0]
    picked, groups = [], set()
    while len(picked) < B:
        r = rng.choice(pairs[src])
        if r["group"] in groups and len(groups) < len(pairs[src]) // 2:
            continue  # keep one pair per passage group so every off-diagonal is a true negative
        groups.add(r["group"])
        picked.append(r)
    return src, picked


def sparse_vocab(w: torch.Tensor, ids: torch.Tensor, V: int) -> torch.Tensor:
    """(B, T) token weights -> (B, V) lexical vector, max over repeats of an id (FlagEmbedding _sparse_embedding)."""
    out = torch.zeros(w.shape[0], V, dtype=w.dtype)
    return out.scatter_reduce(1, ids, w, reduce="amax", include_self=True)


def colbert_score(qv, qm, pv, pm) -> torch.Tensor:
    """(Bq, Tq, C), (Bq, Tq), (Bp, Tp, C), (Bp, Tp) -> (Bq, Bp): mean over query vectors of max over passage vectors."""
    s = torch.einsum("iqc,jpc->ijqp", qv, pv)  # (Bq, Bp, Tq, Tp)
    s = s.masked_fill(pm[None, :, None, :] == 0, -1e4).max(-1).values  # (Bq, Bp, Tq)
    s = (s * qm[:, None, :]).sum(-1) / qm.sum(-1, keepdim=True).clamp(min=1)
    return s


def all_scores(model: M3Tiny, q, p, pools=("mean", "cls")) -> dict:
    """Every score matrix (B, B) of the grid: ('dense', pool, k, d), ('sparse', k), ('colbert', k)."""
    cfg = model.cfg
    (qi, qm), (pi, pm) = q, p
    hq = model.model(qi, qm, cfg.mrl_layers)
    hp = model.model(pi, pm, cfg.mrl_layers)
    out = {}
    for k in cfg.mrl_layers:
        for pool in pools:
            eq = hq[k][:, 0] if pool == "cls" else masked_mean(hq[k], qm)  # (B, H)
            ep = hp[k][:, 0] if pool == "cls" else masked_mean(hp[k], pm)
            for d in cfg.mrl_dims:
                out[("dense", pool, k, d)] = F.normalize(eq[:, :d], dim=-1) @ F.normalize(ep[:, :d], dim=-1).T
        sq = sparse_vocab(sparse_weights(model, hq[k], qi, qm), qi, cfg.vocab_size)
        spv = sparse_vocab(sparse_weights(model, hp[k], pi, pm), pi, cfg.vocab_size)
        out[("sparse", k)] = sq @ spv.T
        qv, qvm = colbert_vecs(model, hq[k], qm)
        pv, pvm = colbert_vecs(model, hp[k], pm)
        out[("colbert", k)] = colbert_score(qv, qvm, pv, pvm)
    return out


def exit_weight(k: int, K: int, scheme: str) -> float:
    """Loss weight of exit k. uniform: every exit alike (the shipped run). linear: k / K, so the full-depth exit carries the
    most weight and shallow exits are auxiliary, as sentence-transformers' AdaptiveLayerLoss (2DMSE) always trains the last
    layer at full weight and down-weights prior ones. Measured on the shipped run (training/diagnose_exits.py, model card):
    blocks 1..2 get gradient from every exit's loss, blocks 5..6 only from exit 6's, so under uniform weights the top blocks
    get the smallest share of the gradient."""
    return k / K if scheme == "linear" else 1.0


def step_loss(model: M3Tiny, scores: dict, temp: float, exit_weights: str = "uniform"):
    cfg = model.cfg
    B = next(iter(scores.values())).shape[0]
    target = torch.arange(B)
    K, D = max(cfg.mrl_layers), max(cfg.mrl_dims)
    ens = W_DENSE * scores[("dense", "mean", K, D)] + W_SPARSE * scores[("sparse", K)] + W_COLBERT * scores[("colbert", K)]
    teacher = torch.softmax(ens.detach() / temp, dim=-1)
    hard, soft, wsum, parts = 0.0, 0.0, 0.0, {}
    for key, s in scores.items():
        k = key[2] if key[0] == "dense" else key[1]
        w = (W_SPARSE if key[0] == "sparse" else 1.0) * exit_weight(k, K, exit_weights)
        logits = s / temp
        h = F.cross_entropy(logits, target)
        kd = -(teacher * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
        hard = hard + w * h
        soft = soft + w * kd
        wsum += exit_weight(k, K, exit_weights)
        if (key[0] == "dense" and key[3] == D) or key[0] != "dense" or key == ("dense", "mean", min(cfg.mrl_layers), min(cfg.mrl_dims)):
            parts["/".join(map(str, key))] = round(h.item(), 3)  # per-exit curves: full-width dense, sparse, ColBERT at every exit
    ens_loss = F.cross_entropy(ens / temp, target)
    parts["ensemble"] = round(ens_loss.item(), 3)
    # uniform weights reduce to the shipped run's plain means over the score list
    loss = 0.5 * (hard / wsum + ens_loss) / 2 + 0.5 * soft / wsum
    return loss, parts


@torch.no_grad()
def dev_eval(model: M3Tiny, sp, dev, args) -> dict:
    """Recall@1 over each held-out source (up to 256 pairs, in-set retrieval) for every score: decides the pooling."""
    model.eval()
    res = {}
    for src in sorted(dev):
        rows = dev[src][:256]
        if len({r["group"] for r in rows}) < 64:
            continue  # too few distinct passages for a meaningful top-1 (XQuAD's dev bucket holds one paragraph)
        q = encode_batch(sp, [r["q"] for r in rows], args.qlen)
        p = encode_batch(sp, [r["p"] for r in rows], args.plen)
        sc = all_scores(model, q, p)
        groups = [r["group"] for r in rows]
        for key, s in sc.items():
            top = s.argmax(-1).tolist()
            acc = sum(groups[t] == groups[i] for i, t in enumerate(top)) / len(rows)
            res.setdefault("/".join(map(str, key)), {})[src] = round(acc, 4)
    model.train()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    # As in stage 1: the cosine schedule's length, kept when a run is stopped early for time (see the model card).
    ap.add_argument("--schedule-steps", type=int, default=120)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--qlen", type=int, default=32)
    ap.add_argument("--plen", type=int, default=96)
    ap.add_argument("--lr", type=float, default=7e-4)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--temp", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt-every", type=int, default=10)
    ap.add_argument("--init", default=os.path.join(RUNS, "stage1.pt"), help="stage-1 checkpoint (its config is always used)")
    # Measured on the shipped run: 40 stage-1 steps (82k tokens, all the loaded machine allowed) left the encoder in
    # MLM's unigram phase — mean pairwise cosine of pooled embeddings 0.9998 at every exit — and from there the dense
    # and ColBERT losses stayed at ln(32) for 20 stage-2 steps. --fresh starts stage 2 from the seeded init instead.
    ap.add_argument("--fresh", action="store_true", help="do not load the stage-1 weights")
    # Continued stage 2 (the second shipped run): weights and AdamW state from a finished stage-2 checkpoint; its step count
    # offsets the batch sequence (no batch is replayed) and a new warmup + cosine of --schedule-steps starts at 0.
    ap.add_argument("--continue-from", help="finished stage-2 checkpoint to continue from")
    # Continued from a shipped folder (f16 model.safetensors + config.json, no lm_head, no optimiser state): how a later
    # session continues training when the git-ignored checkpoints are gone. AdamW starts fresh (hence the warmup);
    # --base-step offsets the batch sequence past the steps the folder was trained on, so no batch is replayed.
    ap.add_argument("--from-export", help="exported m3-tiny folder to continue from (e.g. public/models/m3-tiny)")
    ap.add_argument("--base-step", type=int, default=0, help="with --from-export: stage-2 steps already in those weights")
    # Stop at the first checkpoint after this many seconds of steps (the wall budget), rather than guessing steps.
    ap.add_argument("--max-wall", type=float, default=float("inf"), help="seconds of training steps, then checkpoint and stop")
    ap.add_argument("--pools", default="mean,cls", help="poolings trained (the shipped model serves mean; CLS never left ln 32)")
    ap.add_argument("--exit-weights", choices=["uniform", "linear"], default="uniform")
    ap.add_argument("--out", default=os.path.join(RUNS, "stage2.pt"))
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    sp = load_spm()
    if args.from_export:
        model = from_export(args.from_export)  # lm_head keeps its seeded init: stage 2 never reads it
        cfg = model.cfg
    else:
        init = torch.load(args.init)
        cfg = TinyConfig(**init["config"])
        model = M3Tiny(cfg)  # seeded init (torch.manual_seed above)
        if not args.fresh and not args.continue_from:
            model.load_state_dict(init["model"])
    # Trained parameters: the encoder and the two heads (lm_head is not used here and is not shipped).
    params = [p for n, p in model.named_parameters() if not n.startswith("lm_head")]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    sched = lambda s: min(1.0, (s + 1) / args.warmup) * max(0.1, 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.schedule_steps))))  # noqa: E731
    step, wall, base = 0, 0.0, args.base_step
    if args.continue_from:
        prev = torch.load(args.continue_from)
        model.load_state_dict(prev["model"])
        opt.load_state_dict(prev["opt"])
        base = prev["step"]
    if os.path.exists(args.out):
        ck = torch.load(args.out)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, wall, base = ck["step"], ck["wall"], ck.get("base", 0)
        print(f"resumed at step {step} ({wall:.0f} s so far)", flush=True)
    train, dev = load_pairs()
    print(json.dumps({"train": {k: len(v) for k, v in train.items()}, "dev": {k: len(v) for k, v in dev.items()}}), flush=True)
    pools = tuple(args.pools.split(","))
    blocks = [list(b.parameters()) for b in model.model.layers]
    model.train()
    while step < args.steps:
        t0 = time.time()
        for g in opt.param_groups:
            g["lr"] = args.lr * sched(step)
        src, rows = batch_for(base + step, args.seed, train, args.batch)
        q = encode_batch(sp, [r["q"] for r in rows], args.qlen)
        p = encode_batch(sp, [r["p"] for r in rows], args.plen)
        loss, parts = step_loss(model, all_scores(model, q, p, pools), args.temp, args.exit_weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn_blocks = [round(sum(float(x.grad.pow(2).sum()) for x in ps if x.grad is not None) ** 0.5, 4) for ps in blocks]  # per block 1..L
        gnorm = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
        opt.step()
        step += 1
        dt = time.time() - t0
        wall += dt
        ntok = int(q[1].sum() + p[1].sum())
        print(json.dumps({"step": step, "src": src, "loss": round(loss.item(), 4), "tok_s": round(ntok / dt), "wall_s": round(wall), **parts, "gnorm": round(gnorm, 4), "gn_blocks": gn_blocks}), flush=True)
        out_of_time = wall >= args.max_wall
        if step % args.ckpt_every == 0 or step == args.steps or out_of_time:
            save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "wall": wall, "config": cfg.to_dict(), "args": vars(args), "base": base}, args.out)
        if out_of_time:
            print(f"--max-wall {args.max_wall:.0f} s reached at step {step}", flush=True)
            break
    dev_res = dev_eval(model, sp, dev, args)
    with open(args.out.replace(".pt", "_dev.json"), "w") as f:
        json.dump({"step": step, "wall_s": round(wall), "recall@1": dev_res}, f, indent=1)
    print(f"stage 2 done: {step} steps, {wall:.0f} s", flush=True)


if __name__ == "__main__":
    main()
