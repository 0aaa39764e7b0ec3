"""Shared settings and helpers for m3-tiny's training scripts (run with Debian's /usr/bin/python3)."""

from __future__ import annotations

import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data")  # ../shared/data
RUNS = os.path.join(REPO, "training", "runs")
MODEL_DIR = os.path.join(REPO, "public", "models", "m3-tiny")

# Held-out splits: training reads only these parts; tools/eval reads only the rest.
# Tatoeba pairs have 104..1000 aligned lines: the first half of each pair trains, the second half evaluates
# (tools/eval/datasets.py reads at most 200 of those). For 800-line pairs: train 0..399, evaluate 400..599.
def tatoeba_split(n_lines: int) -> int:
    return n_lines // 2


XQUAD_TRAIN_ARTICLES = 20  # articles 0..19 train; 20..39 evaluate


def ensure_apt(packages: list[str]) -> None:
    """apt-get install what is missing (idempotent; a fresh Debian machine gets everything it needs)."""
    missing = []
    for p in packages:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise SystemExit(f"missing Debian packages {missing}: run apt-get install -y {' '.join(missing)}")
        subprocess.run(["apt-get", "install", "-y", *missing], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def hf_ids(sp, text: str, max_len: int) -> list[int]:
    """<s> pieces </s> with XLM-R ids (spm <unk> 0 -> 3, piece i -> i + 1), truncated keeping </s> (as m3web does)."""
    ids = [3 if i == 0 else i + 1 for i in sp.encode(text)]
    return [0] + ids[: max_len - 2] + [2]


def load_spm():
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=os.path.join(RUNS, "spm.model"))


def set_threads(n: int) -> None:
    """Measured here (2 cores shared with other jobs, load ~8): one thread trained 3x faster than two (526 vs 169 tokens/s,
    6 x 128 model), because OpenMP's barriers spin against the other processes. --threads overrides."""
    import torch

    torch.set_num_threads(n)


def save_atomic(obj, path: str) -> None:
    import torch

    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_export(folder: str) -> tuple[dict, dict]:
    """An exported m3-tiny folder (training/export.py) -> (TinyConfig kwargs, float32 state_dict without lm_head).
    Reads safetensors by hand (u64 LE header length, JSON header, raw little-endian data) as export.py writes it."""
    import json
    import struct

    import torch

    with open(os.path.join(folder, "config.json")) as f:
        hf = json.load(f)
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    # F16: a shipped folder; F32: a quantised folder dequantised by tools/eval/dtype.ts (npm run eval -- --dtype).
    dtypes = {"F16": torch.float16, "F32": torch.float32}
    sd = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] in dtypes, (name, meta["dtype"])
        a, b = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
        sd[name] = t.float()
    keys = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "rms_norm_eps", "pad_token_id", "mrl_layers", "mrl_dims"]
    cfg = {k: hf[k] for k in keys}
    cfg["colbert_dim"] = sd["colbert_linear.weight"].shape[0]
    return cfg, sd
