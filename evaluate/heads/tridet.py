"""TriDet (CVPR 2023) temporal action detection head, written from the published description and code.

Pieces (docs/heads.md has the full description and the THUMOS14 defaults):

- backbone: ``embd_layers`` masked convs (kernel 3, channel LayerNorm, ReLU), ``stem_layers`` SGP blocks,
  ``branch_layers`` SGP blocks that each halve time with MaxPool1d(3, 2, 1) -> a pyramid of
  ``branch_layers + 1`` levels (strides 1, 2, 4, ...); identity neck with a LayerNorm per level.
- SGP block: LN; instant branch ``fc(x) * relu(global_fc(mean_t x))``; window branch
  ``(conv_w(x) + conv_kw(x)) * psi(x)`` (depthwise, kernels ``w`` and ``round((w + 1) * k)`` made odd),
  plus the normalized input; a per-channel scaled (init 1e-4) drop-path residual; then
  GroupNorm(16) -> MLP (GELU) residual, also scaled. With ``sgp_init_std=0`` (the released THUMOS config)
  the five SGP convs start at zero and receive zero gradient, so they stay zero: the block reduces to the
  scaled residuals and the MLP. We keep that behaviour by default because it is what the numbers
  reported for TriDet were obtained with.
- Trident head: classification head (3 layers, prior 0.01); start and end heads with the same layout on
  *detached* pyramid features; a regression head with ``2 * (num_bins + 1)`` outputs scaled per level
  and passed through ReLU. Each boundary is the expectation of the distance under
  ``softmax(boundary logits of the num_bins + 1 neighbouring instants + the regression bins)``.
- Targets: points inside the centre region (``center_sample_radius`` strides around the segment centre,
  clipped to the segment) and inside the level's regression range; the shortest segment wins.
- Loss: sigmoid focal loss (alpha 0.25, gamma 2) with positive entries multiplied by IoU^0.2 of the
  decoded offsets, plus the DIoU loss on positives; both divided by an EMA of the positive count
  (init 100, momentum 0.9), kept as a buffer so it survives checkpoints.
- Inference: sigmoid scores > 0.001, top 2000 per level, decode, drop segments shorter than 0.05 grid
  units, Gaussian soft-NMS per class (vectorized numpy, no compiled extension), keep the top 2000.

Feature-grid convention (as ActionFormer/TriDet): time is measured in feature indices; the caller
maps seconds <-> indices (``evaluate.protocols._action_detector.FeatureGrid`` uses the recorded clip times).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evaluate.heads.tridet_config import TriDetConfig

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0


# ---------------------------------------------------------------------------------------------- blocks
class MaskedConv1d(nn.Module):
    """Conv1d (stride 1, 'same' padding) whose output is zeroed outside the mask; bias starts at 0."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        if bias:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * mask.to(x.dtype)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a (B, C, T) tensor (biased variance, eps 1e-5)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        variance = (centred ** 2).mean(dim=1, keepdim=True)
        return centred / torch.sqrt(variance + self.eps) * self.weight + self.bias


class Scale(nn.Module):
    """A learnable scalar multiplier (per pyramid level, on the regression output)."""

    def __init__(self, value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class AffineDropPath(nn.Module):
    """Per-channel scale (init 1e-4) followed by per-sample stochastic depth while training."""

    def __init__(self, channels: int, drop_prob: float = 0.0, init_scale: float = 1e-4):
        super().__init__()
        self.scale = nn.Parameter(init_scale * torch.ones(1, channels, 1))
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scale * x
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = (keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)).floor_()
        return x.div(keep) * mask


class DepthwiseConv1d(nn.Module):
    """Depthwise (one kernel per channel) 'same' Conv1d with nn.Conv1d's parameter shapes.

    Written as a sum of shifted products because PyTorch's CPU kernel for grouped convolutions loops
    over the groups one by one (hundreds of tiny convolutions per call, ~100x slower here).
    """

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        reference = nn.Conv1d(channels, channels, kernel_size, groups=channels)  # the default init
        with torch.no_grad():
            self.weight.copy_(reference.weight)
            self.bias.copy_(reference.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight[:, 0, :]  # C, k
        if self.kernel_size == 1:
            return x * weight[None, :, 0, None] + self.bias[None, :, None]
        half = self.kernel_size // 2
        padded = F.pad(x, (half, half))
        length = x.shape[-1]
        out = padded[..., 0:length] * weight[None, :, 0, None]
        for shift in range(1, self.kernel_size):
            out = out + padded[..., shift:shift + length] * weight[None, :, shift, None]
        return out + self.bias[None, :, None]


# TriDet's AdamW decays the weights of these modules only (``evaluate.heads.training.parameter_groups``)
WEIGHT_DECAYED = (nn.Conv1d, nn.Linear, DepthwiseConv1d)


class SGPBlock(nn.Module):
    """Scalable-granularity perception block (see the module docstring); ``downsample`` halves time."""

    def __init__(self, dim: int, window: int, k: float, mlp_dim: int, downsample: bool, drop_path: float,
                 init_std: float):
        super().__init__()
        self.downsample = nn.MaxPool1d(3, stride=2, padding=1) if downsample else nn.Identity()
        self.stride = 2 if downsample else 1
        self.ln = ChannelLayerNorm(dim)
        self.gn = nn.GroupNorm(16, dim)
        up = round((window + 1) * k)
        up = up + 1 if up % 2 == 0 else up
        self.psi = DepthwiseConv1d(dim, window)
        self.fc = DepthwiseConv1d(dim, 1)
        self.convw = DepthwiseConv1d(dim, window)
        self.convkw = DepthwiseConv1d(dim, up)
        self.global_fc = DepthwiseConv1d(dim, 1)
        for conv in (self.psi, self.fc, self.convw, self.convkw, self.global_fc):
            nn.init.normal_(conv.weight, 0.0, init_std)
            nn.init.zeros_(conv.bias)
        self.mlp = nn.Sequential(nn.Conv1d(dim, mlp_dim, 1), nn.GELU(), nn.Conv1d(mlp_dim, dim, 1))
        self.drop_path_out = AffineDropPath(dim, drop_path) if drop_path > 0 else nn.Identity()
        self.drop_path_mlp = AffineDropPath(dim, drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = x.shape[-1]
        x = self.downsample(x)
        out_mask = F.interpolate(mask.to(x.dtype), size=length // self.stride, mode="nearest")
        out = self.ln(x)
        phi = torch.relu(self.global_fc(out.mean(dim=-1, keepdim=True)))
        out = self.fc(out) * phi + (self.convw(out) + self.convkw(out)) * self.psi(out) + out
        out = x * out_mask + self.drop_path_out(out)
        out = out + self.drop_path_mlp(self.mlp(self.gn(out)))
        return out, out_mask.bool()


class ConvHead(nn.Module):
    """(layers - 1) x [masked conv, channel LN, ReLU] then a masked conv to ``out_channels``, per level."""

    def __init__(self, in_dim: int, dim: int, out_channels: int, layers: int, kernel: int, detach: bool = False):
        super().__init__()
        self.detach = detach
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for index in range(layers - 1):
            self.convs.append(MaskedConv1d(in_dim if index == 0 else dim, dim, kernel, bias=False))
            self.norms.append(ChannelLayerNorm(dim))
        self.out = MaskedConv1d(dim if layers > 1 else in_dim, out_channels, kernel)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.detach:
            x = x.detach()
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x, mask)))
        return self.out(x, mask)


# ---------------------------------------------------------------------------------------------- model
@dataclass
class TriDetOutput:
    """Per pyramid level, batch-first: cls/start/end (B, T_l, K), offsets (B, T_l, 2, bins+1), mask (B, T_l)."""

    cls_logits: list[torch.Tensor]
    start_logits: list[torch.Tensor]
    end_logits: list[torch.Tensor]
    offsets: list[torch.Tensor]
    masks: list[torch.Tensor]


@dataclass
class TadTarget:
    """Ground truth of one (possibly cropped) sequence in feature-grid units."""

    segments: torch.Tensor  # (N, 2) float32
    labels: torch.Tensor  # (N,) int64


@dataclass
class Detections:
    """Post-processed detections of one video in feature-grid units, sorted by score."""

    segments: np.ndarray  # (M, 2)
    scores: np.ndarray  # (M,)
    labels: np.ndarray  # (M,)


class TriDet(nn.Module):
    """The TriDet detector on (B, T, C) feature sequences with a (B, T) validity mask."""

    def __init__(self, config: TriDetConfig):
        super().__init__()
        self.config = config
        c = config
        self.embd = nn.ModuleList()
        self.embd_norm = nn.ModuleList()
        for index in range(c.embd_layers):
            self.embd.append(MaskedConv1d(c.input_dim if index == 0 else c.embd_dim, c.embd_dim, c.embd_kernel, bias=False))
            self.embd_norm.append(ChannelLayerNorm(c.embd_dim))
        self.stem = nn.ModuleList(SGPBlock(c.embd_dim, 1, c.sgp_k, c.sgp_mlp_dim, False, 0.0, c.sgp_init_std)
                                  for _ in range(c.stem_layers))
        self.branch = nn.ModuleList(SGPBlock(c.embd_dim, c.sgp_window, c.sgp_k, c.sgp_mlp_dim, True, c.drop_path,
                                             c.sgp_init_std) for _ in range(c.branch_layers))
        for block in (*self.stem, *self.branch):  # TriDet zeroes every conv bias of the backbone
            for module in block.modules():
                if isinstance(module, (nn.Conv1d, DepthwiseConv1d)) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        self.neck_norms = nn.ModuleList(ChannelLayerNorm(c.embd_dim) for _ in range(c.n_levels))
        prior_bias = -math.log((1 - c.cls_prior_prob) / c.cls_prior_prob)
        self.cls_head = ConvHead(c.embd_dim, c.head_dim, c.num_classes, c.head_layers, c.head_kernel)
        self.start_head = ConvHead(c.embd_dim, c.head_dim, c.num_classes, c.head_layers, c.boundary_kernel, detach=True)
        self.end_head = ConvHead(c.embd_dim, c.head_dim, c.num_classes, c.head_layers, c.boundary_kernel, detach=True)
        for head in (self.cls_head, self.start_head, self.end_head):
            nn.init.constant_(head.out.conv.bias, prior_bias)
        self.reg_head = ConvHead(c.embd_dim, c.head_dim, 2 * (c.num_bins + 1), c.head_layers, c.head_kernel)
        self.scales = nn.ModuleList(Scale() for _ in range(c.n_levels))
        self.register_buffer("loss_normalizer", torch.tensor(float(c.init_loss_norm), dtype=torch.float64))

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> TriDetOutput:
        """``x`` (B, T, C) with T a multiple of ``config.max_div_factor``; ``mask`` (B, T) bool."""
        if x.shape[1] % self.config.max_div_factor:
            raise ValueError(f"sequence length {x.shape[1]} is not a multiple of {self.config.max_div_factor}")
        feats = x.transpose(1, 2)
        masks = mask[:, None, :]
        for conv, norm in zip(self.embd, self.embd_norm):
            feats = torch.relu(norm(conv(feats, masks)))
        for block in self.stem:
            feats, masks = block(feats, masks)
        levels, level_masks = [feats], [masks]
        for block in self.branch:
            feats, masks = block(feats, masks)
            levels.append(feats)
            level_masks.append(masks)
        levels = [norm(level) for norm, level in zip(self.neck_norms, levels)]
        out = TriDetOutput([], [], [], [], [])
        bins = self.config.num_bins + 1
        for index, (level, level_mask) in enumerate(zip(levels, level_masks)):
            out.cls_logits.append(self.cls_head(level, level_mask).transpose(1, 2))
            out.start_logits.append(self.start_head(level, level_mask).transpose(1, 2))
            out.end_logits.append(self.end_head(level, level_mask).transpose(1, 2))
            offsets = F.relu(self.scales[index](self.reg_head(level, level_mask))).transpose(1, 2)
            out.offsets.append(offsets.reshape(offsets.shape[0], offsets.shape[1], 2, bins))
            out.masks.append(level_mask[:, 0, :])
        return out

    # ------------------------------------------------------------------ geometry
    def points(self, lengths: list[int], device: torch.device) -> torch.Tensor:
        """(sum T_l, 4): [position in grid units, regression low, regression high, stride] per level point."""
        rows = []
        for (low, high), stride, length in zip(self.config.regression_range, self.config.strides, lengths):
            position = torch.arange(0, length * stride, stride, dtype=torch.float32, device=device)[:, None]
            rows.append(torch.cat([position, position.new_full((length, 1), low), position.new_full((length, 1), high),
                                   position.new_full((length, 1), float(stride))], dim=1))
        return torch.cat(rows)

    def boundary_windows(self, logits: torch.Tensor, side: str) -> torch.Tensor:
        """(B, T, K) boundary logits -> (B, T, K, bins+1) windows of neighbours; zero logits off the edges.

        start: instants t - bins .. t (distance bins .. 0); end: instants t .. t + bins (distance 0 .. bins).
        """
        bins = self.config.num_bins
        channels_first = logits.transpose(1, 2)  # B, K, T
        padded = F.pad(channels_first, (bins, 0) if side == "start" else (0, bins))
        return padded.unfold(-1, bins + 1, 1).permute(0, 2, 1, 3)  # B, T, K, bins+1

    def decode_offsets(self, offsets: torch.Tensor, start_windows: torch.Tensor, end_windows: torch.Tensor) -> torch.Tensor:
        """Expected (left, right) distances in strides: offsets (..., 2, bins+1), windows (..., K, bins+1)
        -> (..., K, 2)."""
        bins = self.config.num_bins + 1
        left = torch.softmax(start_windows + offsets[..., None, 0, :], dim=-1)
        right = torch.softmax(end_windows + offsets[..., None, 1, :], dim=-1)
        left_distance = torch.arange(bins - 1, -1, -1, dtype=left.dtype, device=left.device)
        right_distance = torch.arange(bins, dtype=right.dtype, device=right.device)
        return torch.stack([(left * left_distance).sum(-1), (right * right_distance).sum(-1)], dim=-1)

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def assign_targets(self, points: torch.Tensor, target: TadTarget) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, K) one-hot class targets and (P, 2) stride-normalized distances for one sequence."""
        n_points, n_gt = points.shape[0], target.segments.shape[0]
        if n_gt == 0:
            return points.new_zeros((n_points, self.config.num_classes)), points.new_zeros((n_points, 2))
        segments = target.segments.to(points)
        lengths = (segments[:, 1] - segments[:, 0])[None, :].repeat(n_points, 1)
        position, low, high, stride = points[:, 0, None], points[:, 1, None], points[:, 2, None], points[:, 3, None]
        left = position - segments[None, :, 0]
        right = segments[None, :, 1] - position
        distances = torch.stack([left, right], dim=-1)  # P, N, 2
        centre = 0.5 * (segments[None, :, 0] + segments[None, :, 1])
        radius = stride * self.config.center_sample_radius
        centre_left = position - torch.maximum(centre - radius, segments[None, :, 0])
        centre_right = torch.minimum(centre + radius, segments[None, :, 1]) - position
        inside = torch.minimum(centre_left, centre_right) > 0
        farthest = distances.max(-1).values
        in_range = (farthest >= low) & (farthest <= high)
        lengths = lengths.masked_fill(~inside | ~in_range, float("inf"))
        min_length, min_index = lengths.min(dim=1)
        # several segments of (almost) the same shortest length: every one of their classes is positive
        shortest = ((lengths <= min_length[:, None] + 1e-3) & (lengths < float("inf"))).to(points.dtype)
        one_hot = F.one_hot(target.labels.to(points.device), self.config.num_classes).to(points.dtype)
        cls_targets = (shortest @ one_hot).clamp_(0.0, 1.0)
        reg_targets = distances[torch.arange(n_points, device=points.device), min_index] / stride
        return cls_targets, reg_targets

    def loss(self, output: TriDetOutput, targets: list[TadTarget], update_normalizer: bool = True) -> dict[str, torch.Tensor]:
        """Focal (IoU-weighted) + DIoU losses over the batch, normalized by the EMA of the positive count."""
        device = output.cls_logits[0].device
        points = self.points([level.shape[1] for level in output.cls_logits], device)
        assigned = [self.assign_targets(points, target) for target in targets]
        gt_cls = torch.stack([a[0] for a in assigned])  # B, P, K
        gt_offsets = torch.stack([a[1] for a in assigned])  # B, P, 2
        valid = torch.cat(output.masks, dim=1)  # B, P
        positive = (gt_cls.sum(-1) > 0) & valid
        start = torch.cat([self.boundary_windows(x, "start") for x in output.start_logits], dim=1)
        end = torch.cat([self.boundary_windows(x, "end") for x in output.end_logits], dim=1)
        offsets = torch.cat(output.offsets, dim=1)
        decoded = self.decode_offsets(offsets[positive], start[positive], end[positive])  # Npos, K, 2
        positive_classes = gt_cls[positive].bool()
        pred_offsets = decoded[positive_classes]  # one row per (positive point, positive class)
        which = torch.where(positive_classes)[0]
        target_offsets = gt_offsets[positive][which]

        n_positive = int(positive.sum())
        if update_normalizer and self.training:
            momentum = self.config.loss_norm_momentum
            self.loss_normalizer.mul_(momentum).add_((1 - momentum) * max(n_positive, 1))
        normalizer = float(self.loss_normalizer)

        target = gt_cls[valid]
        cls_loss = sigmoid_focal_loss(torch.cat(output.cls_logits, dim=1)[valid], target)
        # Positive entries (row-major, the same order as pred_offsets) are weighted by IoU^power; as in
        # TriDet the weight is not detached, so the classification loss also trains the boundaries.
        rated = target > 0
        iou = 1.0 - center_iou_loss(pred_offsets, target_offsets)
        cls_loss = cls_loss.masked_scatter(rated, cls_loss[rated] * iou ** self.config.iou_weight_power)
        cls_loss = cls_loss.sum() / normalizer
        if n_positive == 0:
            reg_loss = 0 * pred_offsets.sum()
        else:
            reg_loss = center_diou_loss(pred_offsets, target_offsets).sum() / normalizer
        return {"cls_loss": cls_loss, "reg_loss": reg_loss, "loss": cls_loss + reg_loss}

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def detect(self, output: TriDetOutput, index: int) -> Detections:
        """Decode + soft-NMS for sequence ``index`` of the batch (grid units)."""
        c = self.config
        segments, scores, labels = [], [], []
        lengths = [level.shape[1] for level in output.cls_logits]
        points = self.points(lengths, output.cls_logits[0].device)
        first = 0
        for level, length in enumerate(lengths):
            level_points = points[first:first + length]
            first += length
            probs = (output.cls_logits[level][index].sigmoid() * output.masks[level][index][:, None]).flatten()
            keep = torch.nonzero(probs > c.pre_nms_thresh).squeeze(1)
            probs = probs[keep]
            top = min(c.pre_nms_topk, keep.numel())
            probs, order = probs.sort(descending=True)
            probs, keep = probs[:top], keep[order[:top]]
            point_index = torch.div(keep, c.num_classes, rounding_mode="floor")
            class_index = torch.fmod(keep, c.num_classes)
            start = self.boundary_windows(output.start_logits[level][index][None], "start")[0]  # T, K, bins+1
            end = self.boundary_windows(output.end_logits[level][index][None], "end")[0]
            offsets = self.decode_offsets(output.offsets[level][index][point_index],
                                          start[point_index, class_index][:, None], end[point_index, class_index][:, None])[:, 0]
            pts = level_points[point_index]
            left = pts[:, 0] - offsets[:, 0] * pts[:, 3]
            right = pts[:, 0] + offsets[:, 1] * pts[:, 3]
            long_enough = (right - left) > c.duration_thresh
            segments.append(torch.stack([left, right], dim=-1)[long_enough])
            scores.append(probs[long_enough])
            labels.append(class_index[long_enough])
        segs = torch.cat(segments).float().cpu().numpy()
        scs = torch.cat(scores).float().cpu().numpy()
        labs = torch.cat(labels).cpu().numpy()
        return batched_soft_nms(segs, scs, labs, sigma=c.nms_sigma, min_score=c.min_score, max_seg_num=c.max_seg_num)


# ---------------------------------------------------------------------------------------------- losses
def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = FOCAL_ALPHA,
                       gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Element-wise focal loss (RetinaNet), computed in float32."""
    logits, targets = logits.float(), targets.float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * loss


def _center_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8):
    pred, target = pred.float(), target.float()
    lp, rp, lg, rg = pred[:, 0], pred[:, 1], target[:, 0], target[:, 1]
    intersection = torch.min(rp, rg) + torch.min(lp, lg)
    union = (lp + rp) + (lg + rg) - intersection
    return intersection / union.clamp(min=eps), (lp, rp, lg, rg)


def center_iou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1 - IoU of segments given as (left, right) distances from the same centre point."""
    iou, _ = _center_iou(pred, target, eps)
    return 1.0 - iou


def center_diou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Distance-IoU loss: 1 - IoU + (centre distance / enclosing length)^2, per row."""
    iou, (lp, rp, lg, rg) = _center_iou(pred, target, eps)
    enclosing = torch.max(lp, lg) + torch.max(rp, rg)
    rho = 0.5 * (rp - lp - rg + lg)
    return 1.0 - iou + torch.square(rho / enclosing.clamp(min=eps))


# ---------------------------------------------------------------------------------------------- soft-NMS
def soft_nms(segments: np.ndarray, scores: np.ndarray, sigma: float = 0.5, min_score: float = 0.001,
             max_keep: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS of one class: (indices kept in selection order, their decayed scores).

    Same semantics as the 1-D C++ op of ActionFormer/TriDet (float32): repeatedly take the highest
    remaining score, multiply every other remaining score by ``exp(-IoU^2 / sigma)`` and drop the ones
    that fall below ``min_score`` (the first pick is kept even when below it). Vectorized: segments are
    sorted by start, so each pick only touches the slice of segments that can overlap it; a segment that
    fell below ``min_score`` is not removed but can never be picked (the loop stops when the best remaining
    score is below it), which selects exactly the same segments. Exactly equal scores may be picked in a
    different order than the C++ op.
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scale = np.float32(-1.0 / sigma)
    order = np.argsort(segments[:, 0], kind="stable")
    x1 = np.ascontiguousarray(segments[order, 0], dtype=np.float32)
    x2 = np.ascontiguousarray(segments[order, 1], dtype=np.float32)
    live = np.ascontiguousarray(scores[order], dtype=np.float32).copy()
    area = x2 - x1
    starts, ends, areas = x1.tolist(), x2.tolist(), area.tolist()  # Python floats: fast scalar access
    longest = float(area.max())
    removed = np.float32(-np.inf)
    limit = n if max_keep is None else min(n, max_keep)
    kept, kept_scores = [], []
    floor = -np.inf  # the first pick is kept whatever its score
    while len(kept) < limit:
        j = int(live.argmax())
        score = live[j]
        if score < floor or score == removed:
            break
        floor = min_score
        kept.append(j)
        kept_scores.append(score)
        live[j] = removed
        # candidates that can overlap segment j: start in (x1_j - longest, x2_j)
        lo = bisect.bisect_left(starts, starts[j] - longest)
        hi = bisect.bisect_left(starts, ends[j])
        if hi <= lo:
            continue
        inter = np.minimum(x2[lo:hi], ends[j]) - np.maximum(x1[lo:hi], starts[j])
        np.maximum(inter, 0, out=inter)
        union = area[lo:hi] + np.float32(areas[j])
        union -= inter
        np.divide(inter, union, out=inter)
        np.square(inter, out=inter)
        inter *= scale
        np.exp(inter, out=inter)
        live[lo:hi] *= inter
    return order[np.asarray(kept, dtype=np.int64)], np.asarray(kept_scores, dtype=np.float32)


def batched_soft_nms(segments: np.ndarray, scores: np.ndarray, labels: np.ndarray, sigma: float = 0.5,
                     min_score: float = 0.001, max_seg_num: int = 2000) -> Detections:
    """Soft-NMS per class, then the top ``max_seg_num`` over all classes by decayed score."""
    kept_segments, kept_scores, kept_labels = [], [], []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        picked, decayed = soft_nms(segments[rows], scores[rows], sigma, min_score, max_seg_num)
        kept_segments.append(segments[rows[picked]])
        kept_scores.append(decayed)
        kept_labels.append(np.full(len(picked), label, dtype=np.int64))
    if not kept_scores:
        return Detections(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    all_segments = np.concatenate(kept_segments)
    all_scores = np.concatenate(kept_scores)
    all_labels = np.concatenate(kept_labels)
    top = np.argsort(-all_scores, kind="stable")[:max_seg_num]
    return Detections(all_segments[top], all_scores[top], all_labels[top])


# ---------------------------------------------------------------------------------------------- inputs
def pad_batch(sequences: list[torch.Tensor], config: TriDetConfig, training: bool,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, C) sequences -> zero-padded (B, T, C) and mask (B, T), as TriDet's preprocessing.

    Training: padded to ``max_seq_len`` (longer inputs are an error: crop them first) and Gaussian
    input noise of std ``input_noise`` added everywhere. Inference: padded to ``max_seq_len``, or to
    the next multiple of the pyramid's divisor when longer.
    """
    lengths = [len(s) for s in sequences]
    longest = max(lengths)
    if training:
        if longest > config.max_seq_len:
            raise ValueError(f"training sequences must be cropped to max_seq_len {config.max_seq_len}, got {longest}")
        size = config.max_seq_len
    elif longest <= config.max_seq_len:
        size = config.max_seq_len
    else:
        div = config.max_div_factor
        size = (longest + div - 1) // div * div
    first = sequences[0]
    batch = first.new_zeros((len(sequences), size, first.shape[1]))
    for row, sequence in enumerate(sequences):
        batch[row, :len(sequence)] = sequence
    mask = torch.arange(size, device=first.device)[None, :] < torch.tensor(lengths, device=first.device)[:, None]
    if training and config.input_noise > 0:
        noise = torch.randn(batch.shape, generator=generator, dtype=batch.dtype, device="cpu").to(batch.device)
        batch = batch + noise * config.input_noise
    return batch, mask


def random_crop(length: int, segments: np.ndarray, labels: np.ndarray, max_len: int, crop_ratio: tuple,
                trunc_thresh: float, rng: np.random.Generator, max_trials: int = 200) -> tuple[int, int, np.ndarray, np.ndarray]:
    """TriDet's ``truncate_feats``: (start, end, segments, labels) of a random window of the sequence.

    A sequence no longer than ``max_len`` is cropped to a random 0.9-1.0 (``crop_ratio``) of its length;
    a longer one to ``max_len``. Up to ``max_trials`` windows are drawn until one keeps an action with at
    least ``trunc_thresh`` of its length inside; kept actions are clipped to the window and shifted.
    """
    window = max_len
    if length <= max_len:
        low = max(round(crop_ratio[0] * length), 1)
        high = min(round(crop_ratio[1] * length), length)
        window = int(rng.integers(low, high + 1))
        if window == length:
            return 0, length, segments, labels
    for _ in range(max_trials):
        start = int(rng.integers(0, length - window + 1))
        end = start + window
        left = np.maximum(start, segments[:, 0])
        right = np.minimum(end, segments[:, 1])
        inter = np.clip(right - left, 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = inter / np.abs(segments[:, 1] - segments[:, 0])
        keep = ratio >= trunc_thresh
        if keep.any():
            break
    kept = np.stack([left[keep], right[keep]], axis=1) - start if len(segments) else segments
    return start, end, kept.astype(np.float32), labels[keep] if len(segments) else labels


__all__ = [
    "WEIGHT_DECAYED", "Detections", "TadTarget", "TriDet", "TriDetOutput", "batched_soft_nms", "center_diou_loss",
    "center_iou_loss", "pad_batch", "random_crop", "sigmoid_focal_loss", "soft_nms",
]
