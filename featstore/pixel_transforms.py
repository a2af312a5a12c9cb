"""Pixel-level anonymization baselines applied to decoded frames before the encoder (the paper's Table 1, I3D
rows: Downsample-2x, Downsample-4x, Blurring, Blackening).

- ``downsample-2x`` / ``downsample-4x``: each frame reduced by 2 / 4 on both sides (area average) and restored
  to its size (bilinear), so the encoder sees the same frame size with a quarter / a sixteenth of the detail.
- ``blur``: a Gaussian blur (sigma = ``blur_sigma`` x the frame's shorter side) inside the person boxes of a box
  file, or over the whole frame when no box file is given.
- ``blacken``: the person boxes set to black; needs a box file.

The paper detects people with an object detector and does not name it; this toolkit reads the boxes from a file
(``read_boxes``), so any detector's output can be used and the boxes are part of the store's identity.

Box file: CSV with the header ``video_id,frame,x1,y1,x2,y2``, one row per box; ``frame`` is the 0-based frame
number in the source video (before any fps resampling), coordinates are fractions of the frame's width and
height in [0, 1] (AVA's convention, so the boxes do not depend on the decoded resolution). A decoded frame uses
the boxes of the nearest annotated frame of its video (ties: the earlier one), so detections on keyframes
cover the frames between them; a video without rows is left as it is.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from data_manifests.errors import FeatstoreError
from featstore.pixel_transform_config import PixelTransformConfig

DOWNSAMPLE_FACTORS = {"downsample-2x": 2, "downsample-4x": 4}
BOX_COLUMNS = ("video_id", "frame", "x1", "y1", "x2", "y2")


@dataclass(frozen=True)
class VideoBoxes:
    """One video's boxes: annotated frame numbers (sorted) and the boxes of each."""

    frames: np.ndarray  # (F,) int64, sorted
    boxes: list[np.ndarray]  # per annotated frame, (B, 4) float32 x1, y1, x2, y2 in [0, 1]

    def at(self, frame_numbers: np.ndarray) -> list[np.ndarray]:
        """The boxes of the nearest annotated frame of each source frame number."""
        right = np.searchsorted(self.frames, frame_numbers).clip(0, len(self.frames) - 1)
        left = (right - 1).clip(0)
        nearer_left = np.abs(frame_numbers - self.frames[left]) <= np.abs(self.frames[right] - frame_numbers)
        return [self.boxes[i] for i in np.where(nearer_left, left, right)]


def read_boxes(path: str | Path, video_ids: set[str]) -> dict[str, VideoBoxes]:
    """The box file's boxes per video; a malformed row or an id not among ``video_ids`` is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise FeatstoreError(f"box file {path} does not exist")
    per_video: dict[str, dict[int, list[list[float]]]] = {}
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(name.strip() for name in header) != BOX_COLUMNS:
            raise FeatstoreError(f"{path}: the first line must be the header {','.join(BOX_COLUMNS)}, got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(BOX_COLUMNS):
                raise FeatstoreError(f"{path}:{line}: expected {len(BOX_COLUMNS)} fields, got {len(row)}")
            video_id = row[0]
            try:
                frame = int(row[1])
                x1, y1, x2, y2 = (float(value) for value in row[2:])
            except ValueError:
                raise FeatstoreError(f"{path}:{line}: frame must be an integer and x1,y1,x2,y2 numbers") from None
            if frame < 0 or not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
                raise FeatstoreError(f"{path}:{line}: need frame >= 0 and 0 <= x1 < x2 <= 1, 0 <= y1 < y2 <= 1 "
                                     f"(fractions of the frame), got {row[1:]}")
            per_video.setdefault(video_id, {}).setdefault(frame, []).append([x1, y1, x2, y2])
    unknown = sorted(set(per_video) - video_ids)
    if unknown:
        raise FeatstoreError(f"{path}: {len(unknown)} video id(s) not in the dataset, e.g. {unknown[0]!r}")
    return {video_id: VideoBoxes(np.array(sorted(frames), dtype=np.int64),
                                 [np.asarray(frames[f], dtype=np.float32) for f in sorted(frames)])
            for video_id, frames in per_video.items()}


def box_masks(boxes: list[np.ndarray], height: int, width: int, device: torch.device) -> torch.Tensor:
    """(n, H, W) bool: pixel centres inside any of each frame's boxes."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    masks = torch.zeros(len(boxes), height, width, dtype=torch.bool, device=device)
    for index, frame_boxes in enumerate(boxes):
        for x1, y1, x2, y2 in frame_boxes.tolist():
            inside_y = (ys >= y1) & (ys < y2)
            inside_x = (xs >= x1) & (xs < x2)
            masks[index] |= inside_y[:, None] & inside_x[None, :]
    return masks


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of float (n, 3, H, W) frames, reflect padding (radius 3 sigma, within the frame)."""
    height, width = frames.shape[-2:]
    radius = max(1, min(int(math.ceil(3 * sigma)), height - 1, width - 1))
    offsets = torch.arange(-radius, radius + 1, device=frames.device, dtype=frames.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = frames.shape[1]
    rows = F.conv2d(F.pad(frames, (radius, radius, 0, 0), mode="reflect"),
                    kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(F.pad(rows, (0, 0, radius, radius), mode="reflect"),
                    kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


class PixelTransform:
    """Applies a ``PixelTransformConfig`` to uint8 (n, H, W, 3) frames of one video, on the frames' device."""

    def __init__(self, config: PixelTransformConfig, video_ids: set[str]):
        self.config = config
        self.boxes = {} if config.boxes is None else read_boxes(config.boxes, video_ids)

    def __call__(self, frames: torch.Tensor, video_id: str, frame_numbers: np.ndarray) -> torch.Tensor:
        name = self.config.name
        if name == "none":
            return frames
        height, width = frames.shape[1:3]
        pixels = frames.permute(0, 3, 1, 2).float()
        if name in DOWNSAMPLE_FACTORS:
            factor = DOWNSAMPLE_FACTORS[name]
            small = F.interpolate(pixels, size=(max(1, height // factor), max(1, width // factor)), mode="area")
            changed = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
            mask = None
        else:
            changed = (torch.zeros_like(pixels) if name == "blacken"
                       else gaussian_blur(pixels, self.config.blur_sigma * min(height, width)))
            if self.config.boxes is None:  # a transform not in BOXES_REQUIRED (the config checks): the whole frame
                mask = None
            elif video_id in self.boxes:
                mask = box_masks(self.boxes[video_id].at(frame_numbers), height, width, frames.device)[:, None]
            else:
                return frames  # no person boxes in this video
        if mask is not None:
            changed = torch.where(mask, changed, pixels)
        return changed.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
