"""Helpers for the per-family encoder tests: random official-layout weights and independent references.

The reference forward here is written from the architecture description (encoders.md) with plain tensor
ops, reading the OFFICIAL key names directly: patches by reshape (not a convolution), attention by explicit
softmax, LayerNorm and exact GELU by formula. It never touches featstore.encoders code.
"""

from __future__ import annotations

import math

import pytest
import torch


def randomize_state(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Every float tensor replaced by random values (norm scales near 1, BN variances positive)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value.clone()
            continue
        noise = torch.randn(value.shape, generator=generator, dtype=torch.float32)
        if key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(value.shape, generator=generator)
        elif ("norm" in key or ".bn." in key or "batch3d" in key or "layernorm" in key) and key.endswith("weight"):
            out[key] = 1.0 + 0.1 * noise
        elif key.endswith(("gamma_1", "gamma_2")):
            out[key] = 0.5 + 0.1 * noise
        else:
            out[key] = 0.1 * noise / math.sqrt(max(1, value[0].numel() if value.ndim > 1 else 1) / 16)
    return out


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def reference_vit(
    state: dict[str, torch.Tensor],
    clips: torch.Tensor,
    *,
    num_heads: int,
    position_table: torch.Tensor,
    pooling: str,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Official-layout ViT video forward, (B, C, T, H, W) -> (B, D), float64 for a clean reference."""
    s = {k: v.double() for k, v in state.items()}
    x = clips.double()
    weight = s["patch_embed.proj.weight"]  # (D, C, t, p, p)
    dim, channels, tubelet, patch = weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3]
    batch, _, frames, height, width = x.shape
    nt, nh, nw = frames // tubelet, height // patch, width // patch
    # Cut (t, h, w) patches; token index = (t * nh + h) * nw + w.
    patches = x.reshape(batch, channels, nt, tubelet, nh, patch, nw, patch).permute(0, 2, 4, 6, 1, 3, 5, 7)
    tokens = patches.reshape(batch, nt * nh * nw, -1) @ weight.reshape(dim, -1).T + s["patch_embed.proj.bias"]
    tokens = tokens + position_table.double().reshape(1, -1, dim)
    depth = 1 + max(int(k.split(".")[1]) for k in s if k.startswith("blocks."))
    head_dim = dim // num_heads
    for i in range(depth):
        b = f"blocks.{i}."
        h = _layer_norm(tokens, s[b + "norm1.weight"], s[b + "norm1.bias"], eps)
        if b + "attn.q_bias" in s:
            qkv_bias = torch.cat([s[b + "attn.q_bias"], torch.zeros_like(s[b + "attn.q_bias"]), s[b + "attn.v_bias"]])
        else:
            qkv_bias = s[b + "attn.qkv.bias"]
        qkv = h @ s[b + "attn.qkv.weight"].T + qkv_bias
        q, k, v = (part.reshape(batch, -1, num_heads, head_dim).transpose(1, 2) for part in qkv.chunk(3, dim=-1))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(batch, -1, dim)
        attended = attended @ s[b + "attn.proj.weight"].T + s[b + "attn.proj.bias"]
        tokens = tokens + s.get(b + "gamma_1", torch.ones(dim, dtype=torch.float64)) * attended
        h = _layer_norm(tokens, s[b + "norm2.weight"], s[b + "norm2.bias"], eps)
        h = _gelu(h @ s[b + "mlp.fc1.weight"].T + s[b + "mlp.fc1.bias"]) @ s[b + "mlp.fc2.weight"].T + s[b + "mlp.fc2.bias"]
        tokens = tokens + s.get(b + "gamma_2", torch.ones(dim, dtype=torch.float64)) * h
    if pooling == "mean":
        return _layer_norm(tokens, s["norm.weight"], s["norm.bias"], eps).mean(dim=1)
    return _layer_norm(tokens.mean(dim=1), s["fc_norm.weight"], s["fc_norm.bias"], eps)


@pytest.fixture(scope="session")
def reference():
    """The independent reference forward, as a fixture (test modules are not importable as a package)."""
    return reference_vit


@pytest.fixture(scope="session")
def randomize():
    return randomize_state


@pytest.fixture(autouse=True)
def small_models_on_one_thread(single_thread):
    """These models are tiny: one intra-op thread is as fast, and far faster when the cores are shared."""
