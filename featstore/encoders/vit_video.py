"""A compact video ViT: tubelet patch embedding, pre-norm blocks, fixed position table, pooled output.

The switches (qkv bias style, position table, pooling) are where the ViT video families differ.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from featstore.errors import FeatstoreError

POOLINGS = ("mean", "mean_norm")


@dataclass(frozen=True)
class VideoViTConfig:
    embed_dim: int = 192
    depth: int = 4
    num_heads: int = 3
    mlp_ratio: float = 4.0
    patch_size: int = 16
    tubelet_size: int = 2
    num_frames: int = 16
    img_size: int = 64
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    # "mean": final norm, then mean of tokens; "mean_norm": mean of tokens, then fc_norm.
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise FeatstoreError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.img_size % self.patch_size or self.num_frames % self.tubelet_size:
            raise FeatstoreError("img_size must divide by patch_size and num_frames by tubelet_size")
        if self.pooling not in POOLINGS:
            raise FeatstoreError(f"pooling must be one of {list(POOLINGS)}")

    @property
    def grid(self) -> tuple[int, int, int]:
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side

    def to_json(self) -> dict:
        return asdict(self)


def sinusoid_table_1d(n_positions: int, dim: int) -> torch.Tensor:
    """Interleaved sinusoid table: even dims sin, odd dims cos, angle p / 10000^(2*(j//2)/dim)."""
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = position / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.zeros(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    def __init__(self, config: VideoViTConfig):
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attn = Attention(dim, config.num_heads, config.qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        hidden = int(dim * config.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoViT(nn.Module):
    """(B, 3, T, H, W) clips -> (B, D) clip embeddings."""

    def __init__(self, config: VideoViTConfig):
        super().__init__()
        self.config = config
        dim = config.embed_dim
        kernel = (config.tubelet_size, config.patch_size, config.patch_size)
        self.patch_embed = nn.Conv3d(3, dim, kernel_size=kernel, stride=kernel)
        n_tokens = math.prod(config.grid)
        self.register_buffer("pos_embed", sinusoid_table_1d(n_tokens, dim)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        if config.pooling == "mean":
            self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        else:
            self.fc_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(clips).flatten(2).transpose(1, 2)  # tokens in (t, h, w) order
        x = x + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        if self.config.pooling == "mean":
            return self.norm(x).mean(dim=1)
        return self.fc_norm(x.mean(dim=1))
