#!/usr/bin/python3
"""Dense + Normalize module fixture and its PyTorch golden (`/usr/bin/python3 tools/goldens/dense_golden.py`).

Writes fixtures/modules/xlmr-dense/ (two sentence-transformers Dense module folders sized for the xlmr-tiny
fixture, hidden 52) and fixtures/goldens/dense-modules.json. The formulas are sentence-transformers'
(sentence_transformers/models/Dense.py: `activation_function(linear(x))`; Normalize.py:
`F.normalize(x, p=2, dim=1)`; `truncate_dim` cuts the final embedding before normalising):
  2_Dense: Linear(52, 24, bias=True), Tanh      -> pytorch_model.bin (torch.save of the module's state_dict, older ST)
  3_Dense: Linear(24, 20, bias=False), Identity -> model.safetensors (newer ST)
Golden: seeded pooled vectors x (5, 52) -> y = dense3(dense2(x)) (5, 20); full = normalize(y); d8 = normalize(y[:, :8]).
"""
import base64
import json
import os
import struct

import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "fixtures", "modules", "xlmr-dense")


class Dense(torch.nn.Module):
    """sentence_transformers.models.Dense, reduced to its forward."""

    def __init__(self, i, o, bias, act):
        super().__init__()
        self.linear = torch.nn.Linear(i, o, bias=bias)
        self.activation_function = act

    def forward(self, x):
        return self.activation_function(self.linear(x))


def b64(t):
    return base64.b64encode(t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()).decode()


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    torch.manual_seed(20261201)
    d2 = Dense(52, 24, True, torch.nn.Tanh())
    d3 = Dense(24, 20, False, torch.nn.Identity())
    os.makedirs(os.path.join(OUT, "2_Dense"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "3_Dense"), exist_ok=True)
    for name, d, act in (("2_Dense", d2, "torch.nn.modules.activation.Tanh"), ("3_Dense", d3, "torch.nn.modules.linear.Identity")):
        cfg = {"in_features": d.linear.in_features, "out_features": d.linear.out_features, "bias": d.linear.bias is not None, "activation_function": act}
        with open(os.path.join(OUT, name, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    torch.save(d2.state_dict(), os.path.join(OUT, "2_Dense", "pytorch_model.bin"))  # as Dense.save does: with _metadata
    write_safetensors(os.path.join(OUT, "3_Dense", "model.safetensors"), d3.state_dict())

    x = torch.randn(5, 52)
    with torch.no_grad():
        y = d3(d2(x))
        golden = {
            "source": "tools/goldens/dense_golden.py",
            "torch": torch.__version__,
            "note": "base64 little-endian float32 row-major; x (5, 52) pooled vectors; y (5, 20) = 3_Dense(2_Dense(x)); full = F.normalize(y); d8 = F.normalize(y[:, :8])",
            "x": b64(x),
            "y": b64(y),
            "full": b64(F.normalize(y, p=2, dim=1)),
            "d8": b64(F.normalize(y[:, :8], p=2, dim=1)),
        }
    with open(os.path.join(ROOT, "fixtures", "goldens", "dense-modules.json"), "w") as f:
        json.dump(golden, f, indent=2)
    print(f"torch {torch.__version__}: wrote {OUT} and fixtures/goldens/dense-modules.json")


if __name__ == "__main__":
    main()
