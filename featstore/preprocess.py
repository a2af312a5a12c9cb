"""Frame preprocessing an encoder declares: resize short side, centre crop, scale, normalize."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PreprocessSpec:
    resize_short: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    antialias: bool = True

    def to_json(self) -> dict:
        return asdict(self)


def resized_shape(height: int, width: int, short: int) -> tuple[int, int]:
    """Output (h, w) keeping aspect ratio with the short side equal to ``short`` (rounded)."""
    if height <= width:
        return short, max(short, round(width * short / height))
    return max(short, round(height * short / width)), short


def preprocess_frames(frames: np.ndarray | torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """uint8 (N, H, W, 3) frames -> float32 (N, 3, crop, crop), normalized, on the frames' device."""
    return normalize_crops(resize_crop_uint8(frames, spec), spec)


def resize_crop_uint8(frames: np.ndarray | torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """uint8 (N, H, W, 3) frames -> uint8 (N, 3, crop, crop) views: resized short side, centre crop."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) frames, got shape {tuple(frames.shape)}")
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    x = frames.permute(0, 3, 1, 2)  # NCHW view with channels-last strides
    height, width = x.shape[-2:]
    new_h, new_w = resized_shape(height, width, spec.resize_short)
    if (new_h, new_w) != (height, width):
        x = _resize_uint8(x, (new_h, new_w), spec)
    top = (new_h - spec.crop) // 2
    left = (new_w - spec.crop) // 2
    return x[:, :, top : top + spec.crop, left : left + spec.crop]


def normalize_crops(crops: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """uint8 crops (..., 3, h, w) -> float32 scaled by the spec's mean and std (a new tensor)."""
    x = crops.float()  # a new tensor: safe to edit in place
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(3, 1, 1) * 255.0
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(3, 1, 1) * 255.0
    return x.sub_(mean).div_(std)


def _resize_uint8(x: torch.Tensor, size: tuple[int, int], spec: PreprocessSpec) -> torch.Tensor:
    """Resize uint8 frames to uint8 (the resized image is rounded to whole levels, as image libraries do).

    On the CPU torch has a fast SIMD path for uint8 channels-last input; elsewhere the float result is
    rounded, which agrees with it to within one level.
    """
    if x.device.type == "cpu":
        return F.interpolate(x, size=size, mode=spec.interpolation, align_corners=False, antialias=spec.antialias)
    resized = F.interpolate(x.float(), size=size, mode=spec.interpolation, align_corners=False, antialias=spec.antialias)
    return resized.round_().clamp_(0, 255).to(torch.uint8)
