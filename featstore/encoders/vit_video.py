"""A compact video ViT: tubelet patch embedding, pre-norm blocks, fixed position table, pooled output.

One implementation serves every ViT video family here (tiny-vit, V-JEPA v1, VideoMAE v1/v2, InternVideo v1);
the families differ in a few switches: the qkv bias style, the position table, layer scale and the pooling.
Module names follow the official ViT layout except two kept from tiny-vit (whose stores must not change):
the patch convolution is ``patch_embed`` itself (official: ``patch_embed.proj``) and the MLP is a Sequential
(``mlp.0``/``mlp.2``, official: ``mlp.fc1``/``mlp.fc2``). Converters rename those.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from data_manifests.errors import FeatstoreError
from featstore.encoders._convert import unknown_layout
from featstore.encoders._registry import require_positive_integers

QKV_BIAS_STYLES = ("qkv", "qv", "none")
POS_TABLES = ("sincos-1d", "sincos-3d")
POOLINGS = ("mean", "mean_norm")
POOLING_DESCRIPTIONS = {"mean": "mean of final-normalized tokens", "mean_norm": "fc_norm(mean of tokens)"}


@dataclass(frozen=True)
class VideoViTConfig:
    embed_dim: int = 192
    depth: int = 4
    num_heads: int = 3
    mlp_ratio: float = 4.0  # hidden = int(embed_dim * mlp_ratio), as the official code rounds
    patch_size: int = 16
    tubelet_size: int = 2
    num_frames: int = 16
    img_size: int = 64
    # "qkv": one bias on the fused projection (V-JEPA); "qv": separate q_bias and v_bias parameters and no
    # key bias (VideoMAE, BEiT); "none": no bias.
    qkv_bias: str = "qkv"
    # "sincos-1d": interleaved sinusoid over the flat token index, computed, not a weight (VideoMAE);
    # "sincos-3d": separable t/h/w sin-cos table stored as the weight ``pos_embed`` (V-JEPA).
    pos_table: str = "sincos-1d"
    layer_scale: bool = False  # per-channel gamma_1/gamma_2 on the residual branches (some VideoMAE v2 fine-tunes)
    layer_norm_eps: float = 1e-6
    # "mean": final norm over tokens, then their mean; "mean_norm": mean of tokens, then fc_norm.
    pooling: str = "mean"

    def __post_init__(self) -> None:
        require_positive_integers(
            self, ("embed_dim", "depth", "num_heads", "patch_size", "tubelet_size", "num_frames", "img_size"))
        if self.embed_dim % self.num_heads:
            raise FeatstoreError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.img_size % self.patch_size or self.num_frames % self.tubelet_size:
            raise FeatstoreError("img_size must divide by patch_size and num_frames by tubelet_size")
        if not self.mlp_ratio > 0 or not self.layer_norm_eps > 0:
            raise FeatstoreError("mlp_ratio and layer_norm_eps must be positive")
        if self.qkv_bias not in QKV_BIAS_STYLES:
            raise FeatstoreError(f"qkv_bias must be one of {list(QKV_BIAS_STYLES)}, got {self.qkv_bias!r}")
        if self.pos_table not in POS_TABLES:
            raise FeatstoreError(f"pos_table must be one of {list(POS_TABLES)}, got {self.pos_table!r}")
        if self.pooling not in POOLINGS:
            raise FeatstoreError(f"pooling must be one of {list(POOLINGS)}")

    @property
    def grid(self) -> tuple[int, int, int]:
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

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


def _sincos_halves(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(M,) positions -> (M, dim): [sin(p * w_k) for k] then [cos(p * w_k) for k], w_k = 10000^(-k/(dim/2))."""
    frequencies = 1.0 / torch.pow(10000.0, torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angle = positions.to(torch.float64)[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def sincos_table_3d(grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """V-JEPA's separable table ("uniform power"): t, h and w each get int(ceil(dim/6)*2) dims,
    concatenated [t, h, w] and cut to ``dim``; rows in (t, h, w) token order. Returns (T*H*W, dim)."""
    part = int(math.ceil(dim / 6) * 2)
    t, h, w = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")
    table = torch.cat([_sincos_halves(axis.flatten(), part) for axis in (t, h, w)], dim=1)[:, :dim]
    return table.float()


def resize_table_3d(table: torch.Tensor, source: tuple[int, int, int], target: tuple[int, int, int]) -> torch.Tensor:
    """(1, prod(source), D) table -> (1, prod(target), D) by trilinear interpolation over (t, h, w)."""
    dim = table.shape[-1]
    volume = table.reshape(1, *source, dim).permute(0, 4, 1, 2, 3)
    resized = F.interpolate(volume.float(), size=target, mode="trilinear", align_corners=False)
    return resized.permute(0, 2, 3, 4, 1).reshape(1, -1, dim).to(table.dtype)


def infer_grid(n_tokens: int, like: tuple[int, int, int]) -> tuple[int, int, int]:
    """The (t, s, s) grid of a square-framed table of ``n_tokens`` rows, preferring ``like``'s t, then its s."""
    candidates = [
        (t, round(math.sqrt(n_tokens // t)), round(math.sqrt(n_tokens // t)))
        for t in range(1, n_tokens + 1)
        if n_tokens % t == 0 and round(math.sqrt(n_tokens // t)) ** 2 == n_tokens // t
    ]
    for matches in (lambda g: g[0] == like[0], lambda g: g[1] == like[1]):
        chosen = [g for g in candidates if matches(g)]
        if chosen:
            return chosen[0]
    raise FeatstoreError(f"cannot tell the (t, h, w) grid of a {n_tokens}-row position table (model grid {like})")


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: str):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias == "qkv")
        if qkv_bias == "qv":
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        if self.q_bias is None:
            qkv = self.qkv(x)
        else:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
            qkv = F.linear(x, self.qkv.weight, bias)
        qkv = qkv.reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # scale head_dim^-0.5
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    def __init__(self, config: VideoViTConfig):
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attn = Attention(dim, config.num_heads, config.qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(nn.Linear(dim, config.mlp_hidden), nn.GELU(), nn.Linear(config.mlp_hidden, dim))
        if config.layer_scale:
            self.gamma_1 = nn.Parameter(torch.ones(dim))
            self.gamma_2 = nn.Parameter(torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gamma_1 is None:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = x + self.gamma_1 * self.attn(self.norm1(x))
        return x + self.gamma_2 * self.mlp(self.norm2(x))


class VideoViT(nn.Module):
    """(B, 3, T, H, W) clips -> (B, D) clip embeddings."""

    def __init__(self, config: VideoViTConfig):
        super().__init__()
        self.config = config
        dim = config.embed_dim
        kernel = (config.tubelet_size, config.patch_size, config.patch_size)
        self.patch_embed = nn.Conv3d(3, dim, kernel_size=kernel, stride=kernel)
        if config.pos_table == "sincos-3d":
            # Stored in checkpoints (V-JEPA keeps it as a frozen parameter), so it is loaded, not recomputed.
            self.pos_embed = nn.Parameter(sincos_table_3d(config.grid, dim)[None], requires_grad=False)
        else:
            n_tokens = math.prod(config.grid)
            self.register_buffer("pos_embed", sinusoid_table_1d(n_tokens, dim)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        if config.pooling == "mean":
            self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        else:
            self.fc_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def position_table(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """The (1, N, D) table for an input token grid; another grid than the config's is adapted."""
        if grid == self.config.grid:
            return self.pos_embed
        if self.config.pos_table == "sincos-3d":
            return resize_table_3d(self.pos_embed, self.config.grid, grid)
        return sinusoid_table_1d(math.prod(grid), self.config.embed_dim)[None].to(self.pos_embed.device)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(clips)
        grid = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2)  # tokens in (t, h, w) order
        x = x + self.position_table(grid).to(x.dtype)
        for block in self.blocks:
            x = block(x)
        if self.config.pooling == "mean":
            return self.norm(x).mean(dim=1)
        return self.fc_norm(x.mean(dim=1))

    def fit_checkpoint(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Interpolate a stored position table made for another grid (e.g. a 384 checkpoint at 224)."""
        table = state.get("pos_embed")
        if self.config.pos_table != "sincos-3d" or table is None or table.ndim != 3:
            return state
        n_tokens = math.prod(self.config.grid)
        if table.shape[1] == n_tokens or table.shape[2] != self.config.embed_dim:
            return state  # same grid, or another model size: load_strict reports the shapes
        source = infer_grid(table.shape[1], self.config.grid)
        return {**state, "pos_embed": resize_table_3d(table, source, self.config.grid)}


# The official ViT key layout (timm / VideoMAE / V-JEPA) -> this module's names.
OFFICIAL_VIT_RENAMES = (
    (r"^patch_embed\.proj\.", "patch_embed."),
    (r"\.mlp\.fc1\.", ".mlp.0."),
    (r"\.mlp\.fc2\.", ".mlp.2."),
)


def official_or_native(state: dict[str, torch.Tensor], official: str, model: str, layouts: tuple[str, ...]) -> str:
    """The layout a ViT state dict's names are in: the official one (``patch_embed.proj``, named ``official``),
    or this project's own (``patch_embed``; e.g. weights saved from a built model); else one line naming ``layouts``."""
    if "patch_embed.proj.weight" in state:
        return official
    if "patch_embed.weight" in state:
        return "native"
    raise unknown_layout(model, state, layouts)
