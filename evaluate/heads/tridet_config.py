"""TriDet's settings, torch-free (the command line reads them): the architecture config, the named presets and
the training recipes.

A preset is an architecture (keyword overrides of :class:`TriDetConfig`, ``PRESETS``) with its training recipe
(keyword overrides of :class:`TriDetTrainConfig`, ``TRAIN_PRESETS``); "auto" picks one for a store's size
(``evaluate.heads.choose_preset``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from data_manifests.errors import FeatstoreError

THUMOS_REGRESSION_RANGE = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000))
FULL_DATA_PRESET = "thumos14"  # what "auto" picks for a store of THUMOS14's size


@dataclass
class TriDetConfig:
    """Architecture, target, loss and inference settings. Defaults: the THUMOS14 I3D configuration."""

    input_dim: int
    num_classes: int
    embd_dim: int = 512
    embd_kernel: int = 3
    embd_layers: int = 2
    stem_layers: int = 2
    branch_layers: int = 5
    sgp_mlp_dim: int = 768
    sgp_window: int = 1
    sgp_k: float = 5.0
    sgp_init_std: float = 0.0
    drop_path: float = 0.1
    head_dim: int = 512
    head_layers: int = 3
    head_kernel: int = 3
    boundary_kernel: int = 3
    num_bins: int = 16
    regression_range: tuple = THUMOS_REGRESSION_RANGE
    max_seq_len: int = 2304
    input_noise: float = 0.0005
    center_sample_radius: float = 1.5
    iou_weight_power: float = 0.2
    cls_prior_prob: float = 0.01
    init_loss_norm: float = 100.0
    loss_norm_momentum: float = 0.9
    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000
    duration_thresh: float = 0.05
    nms_sigma: float = 0.5
    min_score: float = 0.001
    max_seg_num: int = 2000

    def __post_init__(self):
        self.regression_range = tuple(tuple(float(v) for v in pair) for pair in self.regression_range)

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise FeatstoreError(f"TriDetConfig: {message}")

        need(self.input_dim >= 1, f"input_dim must be >= 1, got {self.input_dim}")
        need(self.num_classes >= 1, f"num_classes must be >= 1, got {self.num_classes}")
        need(self.embd_dim % 16 == 0 and self.embd_dim > 0, f"embd_dim must be a positive multiple of 16 "
             f"(GroupNorm(16)), got {self.embd_dim}")
        for name in ("embd_layers", "head_layers", "sgp_mlp_dim", "head_dim", "num_bins", "pre_nms_topk", "max_seg_num"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.stem_layers >= 0 and self.branch_layers >= 0, "stem_layers and branch_layers must be >= 0")
        for name in ("embd_kernel", "head_kernel", "boundary_kernel", "sgp_window"):
            value = getattr(self, name)
            need(value >= 1 and value % 2 == 1, f"{name} must be a positive odd number, got {value}")
        need(len(self.regression_range) == self.n_levels, f"regression_range needs one (low, high) pair per pyramid "
             f"level ({self.n_levels}), got {len(self.regression_range)}")
        need(self.max_seq_len >= 1 and self.max_seq_len % self.max_div_factor == 0,
             f"max_seq_len must be a positive multiple of {self.max_div_factor} (2^(levels-1)), got {self.max_seq_len}")
        need(0 <= self.drop_path < 1, f"drop_path must be in [0, 1), got {self.drop_path}")
        need(0 < self.cls_prior_prob < 1, f"cls_prior_prob must be in (0, 1), got {self.cls_prior_prob}")
        need(0 <= self.loss_norm_momentum < 1, "loss_norm_momentum must be in [0, 1)")
        need(self.nms_sigma > 0, f"nms_sigma must be > 0, got {self.nms_sigma}")
        for name in ("input_noise", "center_sample_radius", "iou_weight_power", "init_loss_norm", "sgp_init_std",
                     "pre_nms_thresh", "duration_thresh", "min_score"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def n_levels(self) -> int:
        return self.branch_layers + 1

    @property
    def strides(self) -> list[int]:
        return [2 ** level for level in range(self.n_levels)]

    @property
    def max_div_factor(self) -> int:
        # TriDet: max over levels of stride * window (window > 1), else stride
        return max(s * self.sgp_window if self.sgp_window > 1 else s for s in self.strides)

    def to_json(self) -> dict:
        out = asdict(self)
        out["regression_range"] = [list(pair) for pair in self.regression_range]
        return out

    @classmethod
    def from_json(cls, values: dict) -> TriDetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise FeatstoreError(f"TriDetConfig: unknown fields {unknown}")
        return cls(**values)


# Named presets: keyword overrides of TriDetConfig (input_dim / num_classes come from the store).
PRESETS: dict[str, dict] = {
    "thumos14": {},
    # For the small synthetic stores (tens of videos, sequences of 15-100 features): narrower layers.
    "small": {"embd_dim": 128, "sgp_mlp_dim": 256, "head_dim": 128, "max_seq_len": 128, "sgp_init_std": 0.0},
}


@dataclass
class TriDetTrainConfig:
    """Optimization settings. Defaults: THUMOS14 (AdamW 1e-4, wd 0.025, batch 2, 20 warmup + 20 cosine
    epochs, grad clip 1.0, model EMA 0.999 evaluated, random crop 0.9-1.0 keeping actions >= 50 %)."""

    lr: float = 1e-4
    weight_decay: float = 0.025
    batch_size: int = 2
    warmup_epochs: int = 20
    epochs: int = 20
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    crop_ratio: tuple = (0.9, 1.0)
    trunc_thresh: float = 0.5
    seed: int = 0

    def __post_init__(self):
        self.crop_ratio = tuple(float(v) for v in self.crop_ratio)

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise FeatstoreError(f"TriDetTrainConfig: {message}")

        need(self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.warmup_epochs >= 0 and self.epochs >= 1, "need warmup_epochs >= 0 and epochs >= 1")
        need(self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}")
        need(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        need(len(self.crop_ratio) == 2 and 0 < self.crop_ratio[0] <= self.crop_ratio[1] <= 1,
             f"crop_ratio must be (low, high) with 0 < low <= high <= 1, got {self.crop_ratio}")
        need(0 < self.trunc_thresh <= 1, f"trunc_thresh must be in (0, 1], got {self.trunc_thresh}")


TRAIN_PRESETS: dict[str, dict] = {
    "thumos14": {},
    # Few videos -> few steps per epoch: higher lr, more epochs and a faster model EMA.
    "small": {"lr": 1e-3, "weight_decay": 0.025, "batch_size": 2, "warmup_epochs": 5, "epochs": 40, "ema_decay": 0.99},
}

# "auto" max_seq_len (the longest training sequence rounded up) is capped by the preset's own max_seq_len, except
# for the small preset, whose short default (128) would cut the longer sequences of some small stores
AUTO_MAX_SEQ_LEN_CAP: dict[str, int] = {"small": 512}


def auto_max_seq_len(lengths: list[int], preset_len: int, div: int) -> int:
    """The longest training sequence rounded up to the pyramid divisor, capped at the preset's length."""
    longest = max(lengths)
    return min(preset_len, max(div, (longest + div - 1) // div * div))
