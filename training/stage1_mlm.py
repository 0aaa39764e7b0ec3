#!/usr/bin/python3
"""Stage 1 (m3BERT): masked-LM pretraining with the multi-exit x multi-width loss.

    nice -n 5 /usr/bin/python3 training/stage1_mlm.py [--steps N] [--threads 1]

Loss (XMUDeepLIT/m3bert's MRL MLM, re-implemented): for every exit k in mrl_layers and prefix d in mrl_dims,
cross-entropy of lm_head.weight[:, :d] applied to h_k[..., :d] at the masked positions, averaged over the grid
(upstream sums; the mean only rescales the learning rate). One deviation, on purpose: h_k is taken *after* the
final `norm` at every exit, because that is what m3web serves (the engine, like upstream's embedding evaluation,
applies the final RMSNorm to the exit block); upstream's MLM reads un-normed states below the last layer.

Data: packed sequences (RoBERTa FULL-SENTENCES: `<s> a </s> b </s> ...`) sampled per step from
training/runs/data/mlm.jsonl with fixed source weights; BERT masking 15% (80/10/10). The sampler is a pure
function of (seed, step), so a resumed run sees exactly the batches an uninterrupted one would.
Checkpoint: training/runs/stage1.pt every --ckpt-every steps and at the end (resumed automatically).
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

from model import M3Tiny, TinyConfig  # noqa: E402

SOURCE_WEIGHTS = {"debian-en": 0.3, "debian-xx": 0.2, "wordnet": 0.15, "tatoeba": 0.25, "xquad": 0.07, "man": 0.03}
MASK_ID_OFFSET = 1  # <mask> is the last id


def model_config(vocab: int) -> TinyConfig:
    # Sized by measurement (training/README.md): 6 x 128, 4 heads, FFN 512 trains at ~600 tokens/s here.
    return TinyConfig(vocab_size=vocab, hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=512,
                      max_position_embeddings=512, colbert_dim=64, mrl_layers=[2, 4, 6], mrl_dims=[16, 32, 64, 128])


def load_texts() -> dict[str, list[str]]:
    by_src: dict[str, list[str]] = {}
    with open(os.path.join(RUNS, "data", "mlm.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            by_src.setdefault(r["src"], []).append(r["t"])
    return by_src


def batch_for(step: int, seed: int, texts, sp, B: int, T: int, vocab: int):
    """(B, T) packed input ids with masking, labels (-100 where not predicted) and attention mask. Pure in (seed, step)."""
    rng = random.Random(seed * 1_000_003 + step)
    srcs = sorted(SOURCE_WEIGHTS)
    weights = [SOURCE_WEIGHTS[s] for s in srcs]
    mask_id = vocab - MASK_ID_OFFSET
    ids = torch.full((B, T), 1, dtype=torch.long)
    for b in range(B):
        seq = [0]
        while len(seq) < T:
            src = rng.choices(srcs, weights)[0]
            doc = hf_ids(sp, rng.choice(texts[src]), T)[1:]  # drop <s>, keep </s> as the separator
            seq += doc
        ids[b] = torch.tensor(seq[:T])
    attn = torch.ones(B, T, dtype=torch.long)
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    special = ids <= 3
    chosen = (torch.rand(B, T, generator=g) < 0.15) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    r = torch.rand(B, T, generator=g)
    inputs = ids.clone()
    inputs[chosen & (r < 0.8)] = mask_id
    rand_tok = torch.randint(4, vocab - 1, (B, T), generator=g)
    swap = chosen & (r >= 0.8) & (r < 0.9)
    inputs[swap] = rand_tok[swap]
    return inputs, labels, attn


def grid_mlm_loss(model: M3Tiny, inputs, labels, attn) -> tuple[torch.Tensor, dict]:
    cfg = model.cfg
    hs = model.model(inputs, attn, cfg.mrl_layers)  # {k: (B, T, H)}
    sel = labels != -100
    y = labels[sel]
    K, D = max(cfg.mrl_layers), max(cfg.mrl_dims)
    # Compute budget (training/README.md): the 16k-way softmax of 12 grid cells cost 3x the encoder here, so the
    # full-depth, full-width cell sees every masked token and the other cells a fixed quarter of them.
    sub = torch.arange(y.numel()) % 4 == 0
    losses = {}
    for k, h in hs.items():
        hm = h[sel]  # (N, H)
        for d in cfg.mrl_dims:
            rows = slice(None) if (k, d) == (K, D) else sub
            logits = hm[rows, :d] @ model.lm_head.weight[:, :d].T  # (N, V) or (N/4, V)
            losses[(k, d)] = F.cross_entropy(logits, y[rows])
    total = sum(losses.values()) / len(losses)
    return total, {f"{k}x{d}": round(v.item(), 3) for (k, d), v in losses.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    # The shipped run was planned for 80 steps and stopped at 40 when the shared machine's load (~20 on 2 cores)
    # made steps 4x slower than measured; the schedule keeps its 80-step cosine so `npm run train` reproduces it.
    ap.add_argument("--schedule-steps", type=int, default=80)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt-every", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(RUNS, "stage1.pt"))
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    sp = load_spm()
    vocab = sp.get_piece_size() + 2
    cfg = model_config(vocab)
    model = M3Tiny(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    sched = lambda s: min(1.0, (s + 1) / args.warmup) * max(0.1, 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.schedule_steps))))  # noqa: E731
    step, wall = 0, 0.0
    if os.path.exists(args.out):
        ck = torch.load(args.out)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, wall = ck["step"], ck["wall"]
        print(f"resumed at step {step} ({wall:.0f} s so far)", flush=True)
    texts = load_texts()
    print(f"config {json.dumps(cfg.to_dict())}; params {sum(p.numel() for p in model.parameters()):,}", flush=True)
    model.train()
    while step < args.steps:
        t0 = time.time()
        for g in opt.param_groups:
            g["lr"] = args.lr * sched(step)
        inputs, labels, attn = batch_for(step, args.seed, texts, sp, args.batch, args.seq, vocab)
        loss, parts = grid_mlm_loss(model, inputs, labels, attn)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        dt = time.time() - t0
        wall += dt
        print(json.dumps({"step": step, "loss": round(loss.item(), 4), "lr": round(opt.param_groups[0]["lr"], 6), "tok_s": round(args.batch * args.seq / dt), "wall_s": round(wall), "grid": parts}), flush=True)
        if step % args.ckpt_every == 0 or step == args.steps:
            save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "wall": wall, "config": cfg.to_dict(), "args": vars(args)}, args.out)
    print(f"stage 1 done: {step} steps, {wall:.0f} s", flush=True)


if __name__ == "__main__":
    main()
