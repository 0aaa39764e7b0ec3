"""m3-tiny in PyTorch: m3BERT's bidirectional Llama-style encoder with BGE-M3's three heads.

Mirrors what m3web's CPU reference runs (src/reference/encoder.ts), which follows XMUDeepLIT/m3bert's
modeling_custom_llama.py: x = input_norm(embed_tokens[ids] + pos_embeddings[0..T-1]); per block
h = x + o(attn(rms(x))), y = h + down(silu(gate(rms(h))) * up(rms(h))); the final `norm` is applied to
the output of whichever block is the exit. Parameter names are the Hugging Face names the engine reads
(src/model/weights.ts), under the `model.` prefix of CustomLlamaForMLM, plus `lm_head` (not shipped) and
the heads `colbert_linear` / `sparse_linear` (FlagEmbedding m3 names, unprefixed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TinyConfig:
    vocab_size: int = 16002
    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    rms_norm_eps: float = 1e-5
    colbert_dim: int = 128
    pad_token_id: int = 1
    mrl_layers: list = field(default_factory=lambda: [2, 4, 6])
    mrl_dims: list = field(default_factory=lambda: [32, 64, 128, 256])

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    """LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight, computed in float32."""

    def __init__(self, h: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(h))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(var + self.eps)).to(x.dtype) * self.weight


class Attention(nn.Module):
    def __init__(self, cfg: TinyConfig):
        super().__init__()
        H = cfg.hidden_size
        self.nh = cfg.num_attention_heads
        self.q_proj = nn.Linear(H, H, bias=False)
        self.k_proj = nn.Linear(H, H, bias=False)
        self.v_proj = nn.Linear(H, H, bias=False)
        self.o_proj = nn.Linear(H, H, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        d = H // self.nh
        q = self.q_proj(x).view(B, T, self.nh, d).transpose(1, 2)  # (B, nh, T, d)
        k = self.k_proj(x).view(B, T, self.nh, d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nh, d).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + bias  # (B, nh, T, T); bias (B, 1, 1, T): 0 or -inf-ish
        ctx = torch.softmax(scores, dim=-1) @ v  # (B, nh, T, d)
        return self.o_proj(ctx.transpose(1, 2).reshape(B, T, H))


class MLP(nn.Module):
    def __init__(self, cfg: TinyConfig):
        super().__init__()
        H, I = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x), bias)
        return h + self.mlp(self.post_attention_layernorm(h))


class Encoder(nn.Module):
    """CustomLlamaModel: the part the engine runs (names without the `model.` prefix)."""

    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.pos_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.input_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, exits: list[int]) -> dict[int, torch.Tensor]:
        """ids, mask: (B, T). Returns {k: norm(block_k output)} (B, T, H) for each exit k (the engine's exit rule)."""
        B, T = ids.shape
        pos = torch.arange(T, device=ids.device)
        x = self.input_norm(self.embed_tokens(ids) + self.pos_embeddings(pos)[None])  # (B, T, H)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * -1e9  # (B, 1, 1, T)
        out: dict[int, torch.Tensor] = {}
        last = max(exits)
        for i, layer in enumerate(self.layers[:last]):
            x = layer(x, bias)
            if i + 1 in exits:
                out[i + 1] = self.norm(x)
        return out


class M3Tiny(nn.Module):
    """CustomLlamaForMLM + BGE-M3 heads. state_dict names: model.*, lm_head.weight, colbert_linear.*, sparse_linear.*."""

    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Encoder(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.colbert_linear = nn.Linear(cfg.hidden_size, cfg.colbert_dim)
        self.sparse_linear = nn.Linear(cfg.hidden_size, 1)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        # Llama's initializer_range 0.02 for linears and embeddings.
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): sentence-transformers' mean pooling."""
    m = mask[..., None].to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1)


def pool(h: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    return h[:, 0] if mode == "cls" else masked_mean(h, mask)


def sparse_weights(model: M3Tiny, h: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) token weights relu(sparse_linear(h)), zero at padding and at special ids 0..3 (FlagEmbedding drops them)."""
    w = torch.relu(model.sparse_linear(h)).squeeze(-1)  # (B, T)
    keep = mask.bool() & (ids > 3)
    return w * keep.to(w.dtype)


def colbert_vecs(model: M3Tiny, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FlagEmbedding _colbert_embedding: normalise(colbert_linear(h[:, 1:])) with mask[:, 1:]. -> (B, T-1, C), (B, T-1)."""
    v = model.colbert_linear(h[:, 1:])
    m = mask[:, 1:]
    v = F.normalize(v, dim=-1) * m[..., None].to(v.dtype)
    return v, m


def from_export(folder: str) -> M3Tiny:
    """An exported folder (training/export.py: f16 or dequantised f32 model.safetensors + config.json) as M3Tiny. The MLM
    lm_head is not shipped, so it keeps its init; every other weight must be there."""
    from common import load_export

    cfg, sd = load_export(folder)
    m = M3Tiny(TinyConfig(**cfg))
    r = m.load_state_dict(sd, strict=False)
    assert r.unexpected_keys == [] and r.missing_keys == ["lm_head.weight"], (folder, r)
    return m
