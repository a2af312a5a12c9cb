"""MGFN (AAAI 2023) weakly supervised anomaly detection head, written from the published description and code.

- Input: per video (crops, T, C) snippet features plus their L2 norm as one extra channel
  (:func:`with_magnitude`); training pools every video to ``seg_length`` (32) segments first
  (:func:`pool_segments`, the mean over ``linspace(0, T, 33)`` ranges).
- Feature amplification: ``Conv1d(C -> dims[0], k3)(features) + mag_ratio * Conv1d(1 -> dims[0], k3)(norm)``.
- Stages ``dims`` (64, 128, 1024), ``depths`` (3, 3, 2), blocks (glance, focus, focus). Each layer:
  ``x += conv3(x)``; ``x += block(x)``; ``x += feed_forward(x)``. Glance = full temporal self-attention
  (heads = dim / dim_head); focus = a depthwise temporal conv (kernel 5) per head, shared by the
  channels of that head. Between stages: LayerNorm + 1x1 conv. Output LayerNorm -> Linear -> sigmoid.
- Top-k: snippet scores and feature magnitudes averaged over crops; magnitudes multiplied by a
  dropout(0.7) mask while training; the ``k`` (3) segments of largest magnitude are selected; the video
  score is the mean of their scores.
- Loss: BCE on the video scores + 0.001 * (0.001 * L_con(abnormal vs normal, margin 200) + L_con within
  normal + L_con within abnormal), on the L1 norms of the selected features; plus sparsity and
  smoothness terms. ``loss_variant``:

  * ``"heads"`` (shared/reference/heads.md): sparsity 8e-3 * sum of the abnormal videos' segment scores,
    smoothness 8e-4 * sum of squared differences of consecutive abnormal segment scores;
  * ``"mgfn-code"`` (default; the released training script): sparsity 8e-3 * L2 norm of the *first half* of the
    batch's scores (the normal videos), smoothness 8e-4 * sum of squared differences over all videos;
  * ``"authors-copy"`` (the MGFN copy in the paper authors' TeD-SPAD code, ``anomaly_detection_mgfn/train.py``):
    both terms on the abnormal videos' scores flattened video after video: sparsity 8e-3 * their L2 norm,
    smoothness 8e-4 * sum of squared differences of consecutive entries of that flat vector (so the last
    segment of one video and the first of the next also form a pair, as in the copy).

Batches are arranged as MGFN's: the first half normal videos, the second half abnormal, same count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evaluate.heads.mgfn_config import MGFNConfig

# ---------------------------------------------------------------------------------------------- blocks
class ChannelNorm(nn.Module):
    """MGFN's LayerNorm over channels of (B, C, T): (x - mean) / (std + eps) * g + b."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1, dim, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.var(x, dim=1, unbiased=False, keepdim=True).sqrt()
        mean = torch.mean(x, dim=1, keepdim=True)
        return (x - mean) / (std + self.eps) * self.g + self.b


def feed_forward(dim: int, mult: int) -> nn.Sequential:
    return nn.Sequential(ChannelNorm(dim), nn.Conv1d(dim, dim * mult, 1), nn.GELU(), nn.Conv1d(dim * mult, dim, 1))


class Glance(nn.Module):
    """Full temporal multi-head self-attention on (B, C, T)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.scale = dim_head ** -0.5
        inner = dim_head * heads
        self.norm = ChannelNorm(dim)
        self.to_qkv = nn.Conv1d(dim, inner * 3, 1, bias=False)
        self.to_out = nn.Conv1d(inner, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        b, _, t = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=1)
        q, k, v = (z.reshape(b, self.heads, -1, t).transpose(2, 3) for z in (q, k, v))  # b h t d
        attention = torch.softmax((q * self.scale) @ k.transpose(2, 3), dim=-1)
        out = (attention @ v).transpose(2, 3).reshape(b, -1, t)
        return self.to_out(out)


class Focus(nn.Module):
    """BatchNorm, 1x1 value projection, then a temporal conv per head shared by the head's channels.

    Channel ``c * heads + h`` uses head ``h``'s kernel (MGFN's ``(c h)`` channel split). Written as shifted
    products: PyTorch's CPU grouped convolution loops over groups and is very slow.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, kernel: int):
        super().__init__()
        self.heads = heads
        self.kernel = kernel
        inner = dim_head * heads
        self.norm = nn.BatchNorm1d(dim)
        self.to_v = nn.Conv1d(dim, inner, 1, bias=False)
        reference = nn.Conv1d(heads, heads, kernel, padding=kernel // 2, groups=heads)  # default init
        self.rel_weight = nn.Parameter(reference.weight.detach().clone())  # heads, 1, kernel
        self.rel_bias = nn.Parameter(reference.bias.detach().clone())  # heads
        self.to_out = nn.Conv1d(inner, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.to_v(self.norm(x))
        b, inner, t = v.shape
        v = v.reshape(b, inner // self.heads, self.heads, t)
        half = self.kernel // 2
        padded = F.pad(v, (half, half))
        weight = self.rel_weight[:, 0, :]  # heads, kernel
        out = padded[..., 0:t] * weight[None, None, :, 0, None]
        for shift in range(1, self.kernel):
            out = out + padded[..., shift:shift + t] * weight[None, None, :, shift, None]
        out = out + self.rel_bias[None, None, :, None]
        return self.to_out(out.reshape(b, inner, t))


class Stage(nn.Module):
    def __init__(self, dim: int, depth: int, block: str, dim_head: int, kernel: int, ff_mult: int):
        super().__init__()
        heads = dim // dim_head
        self.layers = nn.ModuleList()
        for _ in range(depth):
            mixer = Glance(dim, heads, dim_head) if block == "glance" else Focus(dim, heads, dim_head, kernel)
            self.layers.append(nn.ModuleList([nn.Conv1d(dim, dim, 3, padding=1), mixer, feed_forward(dim, ff_mult)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, mixer, ff in self.layers:
            x = conv(x) + x
            x = mixer(x) + x
            x = ff(x) + x
        return x


# ---------------------------------------------------------------------------------------------- model
@dataclass
class MGFNOutput:
    scores: torch.Tensor  # (B, crops, T) snippet scores in [0, 1]
    features: torch.Tensor  # (B, crops, T, dims[-1]) features after the output LayerNorm


@dataclass
class Selection:
    """The top-k magnitude selection of a normal/abnormal batch (MGFN's MSNSD)."""

    score_normal: torch.Tensor  # (n,)
    score_abnormal: torch.Tensor  # (n,)
    normal_features: torch.Tensor  # (crops * n, k, F), crop-major
    abnormal_features: torch.Tensor
    scores: torch.Tensor  # (2n, T) crop-averaged snippet scores


class MGFN(nn.Module):
    def __init__(self, config: MGFNConfig):
        super().__init__()
        self.config = config
        c = config
        self.to_tokens = nn.Conv1d(c.input_dim, c.dims[0], 3, padding=1)
        self.to_mag = nn.Conv1d(1, c.dims[0], 3, padding=1)
        self.stages = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for index, (dim, depth, block) in enumerate(zip(c.dims, c.depths, c.block_types)):
            self.stages.append(Stage(dim, depth, block, c.dim_head, c.focus_kernel, c.ff_mult))
            if index < len(c.dims) - 1:
                self.transitions.append(nn.Sequential(ChannelNorm(dim), nn.Conv1d(dim, c.dims[index + 1], 1)))
        self.to_logits = nn.LayerNorm(c.dims[-1])
        self.fc = nn.Linear(c.dims[-1], 1)

    def forward(self, video: torch.Tensor) -> MGFNOutput:
        """``video`` (B, crops, T, C + 1): features with their magnitude as the last channel."""
        b, crops, t, channels = video.shape
        if channels != self.config.input_dim + 1:
            raise ValueError(f"expected {self.config.input_dim} feature channels + 1 magnitude, got {channels}")
        x = video.reshape(b * crops, t, channels).transpose(1, 2)
        x = self.to_tokens(x[:, :-1]) + self.config.mag_ratio * self.to_mag(x[:, -1:])
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index < len(self.transitions):
                x = self.transitions[index](x)
        features = self.to_logits(x.transpose(1, 2))  # b*crops, t, F
        scores = torch.sigmoid(self.fc(features))[..., 0]
        return MGFNOutput(scores.reshape(b, crops, t), features.reshape(b, crops, t, -1))

    def select(self, output: MGFNOutput, n_normal: int) -> Selection:
        """Top-k magnitude selection for a batch of ``n_normal`` normal then as many abnormal videos."""
        c = self.config
        scores = output.scores.mean(1)  # B, T
        features = output.features  # B, crops, T, F
        magnitudes = features.norm(p=2, dim=-1).mean(1)  # B, T
        if features.shape[0] != 2 * n_normal:
            raise ValueError(f"expected {n_normal} normal + {n_normal} abnormal videos, got {features.shape[0]}")
        picked = []
        for part in (slice(n_normal, None), slice(0, n_normal)):  # abnormal first: MGFN draws its mask first
            mask = F.dropout(torch.ones_like(magnitudes[part]), c.magnitude_dropout, self.training)
            index = torch.topk(magnitudes[part] * mask, c.k, dim=1).indices  # n, k
            part_scores = torch.gather(scores[part], 1, index).mean(1)
            part_features = features[part]  # n, crops, T, F
            gather_index = index[:, None, :, None].expand(-1, part_features.shape[1], -1, part_features.shape[-1])
            selected = torch.gather(part_features, 2, gather_index)  # n, crops, k, F
            picked.append((part_scores, selected.transpose(0, 1).reshape(-1, c.k, part_features.shape[-1])))
        (score_abnormal, abnormal_features), (score_normal, normal_features) = picked
        return Selection(score_normal, score_abnormal, normal_features, abnormal_features, scores)

    def loss(self, selection: Selection) -> dict[str, torch.Tensor]:
        c = self.config
        n = selection.score_normal.shape[0]
        video_scores = torch.cat([selection.score_normal, selection.score_abnormal])
        labels = torch.cat([torch.zeros(n), torch.ones(n)]).to(video_scores)
        bce = F.binary_cross_entropy(video_scores, labels)
        abnormal_l1 = selection.abnormal_features.norm(p=1, dim=2)  # crops*n, k
        normal_l1 = selection.normal_features.norm(p=1, dim=2)
        half = normal_l1.shape[0] // 2  # MGFN splits the crop-major rows in two halves
        con = contrastive(abnormal_l1, normal_l1, 1.0, c.margin)
        con_n = contrastive(normal_l1[half:2 * half], normal_l1[:half], 0.0, c.margin) if half else bce * 0
        con_a = contrastive(abnormal_l1[half:2 * half], abnormal_l1[:half], 0.0, c.margin) if half else bce * 0
        magnitude = 0.001 * (0.001 * con + con_a + con_n)
        scores = selection.scores  # 2n, T
        if c.loss_variant == "heads":
            abnormal = scores[n:]
            sparsity = c.sparsity_weight * abnormal.sum()
            smoothness = c.smoothness_weight * ((abnormal[:, 1:] - abnormal[:, :-1]) ** 2).sum()
        elif c.loss_variant == "authors-copy":
            abnormal = scores[n:].reshape(-1)  # the copy's scores.view(-1)[n * T:]: one vector across videos
            sparsity = c.sparsity_weight * abnormal.norm()
            smoothness = c.smoothness_weight * ((abnormal[1:] - abnormal[:-1]) ** 2).sum()
        else:
            sparsity = c.sparsity_weight * scores[:n].reshape(-1).norm(dim=0)
            smoothness = c.smoothness_weight * ((scores[:, 1:] - scores[:, :-1]) ** 2).sum()
        total = bce + magnitude + sparsity + smoothness
        return {"loss": total, "bce": bce, "magnitude": magnitude, "sparsity": sparsity, "smoothness": smoothness}

    @torch.no_grad()
    def snippet_scores(self, video: torch.Tensor) -> torch.Tensor:
        """(crops, T, C + 1) features of one video -> (T,) crop-averaged snippet scores."""
        return self(video[None]).scores[0].mean(0)


def contrastive(first: torch.Tensor, second: torch.Tensor, label: float, margin: float) -> torch.Tensor:
    """MGFN's contrastive loss: mean((1 - y) d^2 + y clamp(margin - d, 0)^2), d = pairwise L2 distance."""
    distance = F.pairwise_distance(first, second, keepdim=True)
    return torch.mean((1 - label) * distance.pow(2) + label * torch.clamp(margin - distance, min=0.0).pow(2))


# ---------------------------------------------------------------------------------------------- inputs
def with_magnitude(features: torch.Tensor) -> torch.Tensor:
    """Append the L2 norm of every feature vector as one more channel (last dimension)."""
    return torch.cat([features, features.norm(p=2, dim=-1, keepdim=True)], dim=-1)


def segment_bounds(length: int, segments: int) -> np.ndarray:
    """MGFN's ``process_feat`` ranges: integer ``linspace(0, length, segments + 1)``."""
    return np.linspace(0, length, segments + 1).astype(np.int64)


def pool_segments(features: torch.Tensor, segments: int) -> torch.Tensor:
    """(..., T, C) -> (..., segments, C): the mean of each range; an empty range takes the snippet at its
    start (MGFN's ``process_feat``). Differentiable, so anonymizer gradients flow through it."""
    length = features.shape[-2]
    bounds = segment_bounds(length, segments)
    starts, ends = bounds[:-1], bounds[1:]
    empty = ends <= starts
    ends_fixed = np.where(empty, np.minimum(starts + 1, length), ends)
    starts_fixed = np.where(empty, np.minimum(starts, length - 1), starts)
    # (segments, T) averaging matrix
    positions = np.arange(length)
    weights = ((positions[None, :] >= starts_fixed[:, None]) & (positions[None, :] < ends_fixed[:, None])).astype(np.float32)
    weights /= weights.sum(1, keepdims=True)
    matrix = torch.from_numpy(weights).to(features)
    return torch.matmul(matrix, features)
