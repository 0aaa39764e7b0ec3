#!/usr/bin/python3
"""Writes the shipped Hugging Face folder public/models/m3-tiny/ from a stage-2 checkpoint.

    /usr/bin/python3 training/export.py [--ckpt training/runs/stage2.pt] [--pooling mean|cls]

- model.safetensors, f16: the encoder under CustomLlamaForMLM's `model.` prefix (names as m3web's
  src/model/weights.ts reads them) plus the BGE-M3 heads `colbert_linear.{weight,bias}` and
  `sparse_linear.{weight,bias}` unprefixed (src/model/load.ts collects them from the safetensors).
  `lm_head` is not shipped: the encoder never reads it.
- config.json with upstream's keys and the trained grid (mrl_layers, mrl_dims);
- sentence-transformers modules.json + 1_Pooling/config.json (pooling chosen by the dev measurement in
  training/runs/stage2_dev.json unless --pooling is given).
The tokenizer files were written there by training/tokenizer.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MODEL_DIR, RUNS  # noqa: E402

import torch  # noqa: E402

MODEL_TYPE = os.environ.get("M3TINY_MODEL_TYPE", "custom_llama")


def write_safetensors(path: str, tensors: dict[str, torch.Tensor]) -> None:
    """safetensors layout: u64 LE header length, JSON header (8-byte aligned), raw little-endian data."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float16).contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def choose_pooling(ckpt: str, cfg: dict) -> tuple[str, dict]:
    """Mean unless CLS wins the held-out dev recall@1 (stage 2's dev split of the training sources), averaged over
    sources and the whole grid; the deepest exit at full width is reported beside it."""
    with open(ckpt.replace(".pt", "_dev.json")) as f:
        dev = json.load(f)["recall@1"]
    K, D = max(cfg["mrl_layers"]), max(cfg["mrl_dims"])
    avg = {}
    for pool in ("mean", "cls"):
        vals = [v for k, by in dev.items() if k.startswith(f"dense/{pool}/") for v in by.values()]
        avg[pool] = sum(vals) / len(vals)
        avg[f"{pool}@{K}x{D}"] = sum(dev[f"dense/{pool}/{K}/{D}"].values()) / len(dev[f"dense/{pool}/{K}/{D}"])
    return ("cls" if avg["cls"] > avg["mean"] else "mean"), avg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(RUNS, "stage2.pt"))
    ap.add_argument("--pooling", choices=["mean", "cls"])
    ap.add_argument("--out", default=MODEL_DIR)
    args = ap.parse_args()
    ck = torch.load(args.ckpt)
    cfg = ck["config"]
    sd = {k: v for k, v in ck["model"].items() if not k.startswith("lm_head")}
    os.makedirs(os.path.join(args.out, "1_Pooling"), exist_ok=True)
    write_safetensors(os.path.join(args.out, "model.safetensors"), sd)
    pooling, avg = (args.pooling, {}) if args.pooling else choose_pooling(args.ckpt, cfg)
    config = {
        # Keys as XMUDeepLIT/m3bert's CustomLlamaConfig saves them; bi_attn kept for loaders that read "llama".
        "architectures": ["CustomLlamaForMLM"],
        "model_type": MODEL_TYPE,
        "bi_attn": True,
        "attention_bias": False,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
        "hidden_act": "silu",
        "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["intermediate_size"],
        "max_position_embeddings": cfg["max_position_embeddings"],
        "num_attention_heads": cfg["num_attention_heads"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "num_key_value_heads": cfg["num_attention_heads"],
        "rms_norm_eps": cfg["rms_norm_eps"],
        "rope_theta": 500000.0,
        "mrl_layers": cfg["mrl_layers"],
        "mrl_dims": cfg["mrl_dims"],
        "cur_dim": cfg["hidden_size"],
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "vocab_size": cfg["vocab_size"],
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    with open(os.path.join(args.out, "modules.json"), "w") as f:
        json.dump(modules, f, indent=2)
        f.write("\n")
    pool_cfg = {
        "word_embedding_dimension": cfg["hidden_size"],
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    with open(os.path.join(args.out, "1_Pooling", "config.json"), "w") as f:
        json.dump(pool_cfg, f, indent=2)
        f.write("\n")
    # XLM-R ships its spm model beside tokenizer.json (as sentencepiece.bpe.model, a Unigram model despite the name);
    # tools/eval/grid.py tokenizes with it.
    shutil.copyfile(os.path.join(RUNS, "spm.model"), os.path.join(args.out, "sentencepiece.bpe.model"))
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.abspath(args.out) != os.path.abspath(MODEL_DIR):
            shutil.copyfile(os.path.join(MODEL_DIR, f), os.path.join(args.out, f))
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    print(json.dumps({"pooling": pooling, "dev_recall@1_avg": avg, "model.safetensors_bytes": size, "step": ck["step"], "wall_s": round(ck["wall"])}))


if __name__ == "__main__":
    main()
