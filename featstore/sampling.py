"""Clip sampling arithmetic: which frames form each clip and each static clip.

Frame indices here are *timeline* indices; with ``fps`` resampling the timeline is a list of source
frame indices (``resample_indices``), without it the timeline is the source frames themselves.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from data_manifests.errors import FeatstoreError

TAIL_RULES = ("drop", "pad")
# k evenly spaced positions among n items: "centres" of k equal bins (ours, the default) or the authors'
# np.linspace(0, n - 1, k) truncated to integers (first and last item included)
POSITION_RULES = ("centres", "linspace")


@dataclass(frozen=True)
class SamplingConfig:
    """How clips are cut.

    tail: "drop" discards a partial clip at the end of a video (a video shorter than one clip still
    gives one clip, padded by repeating its last frame); "pad" pads the partial tail clip the same way.
    """

    clip_len: int = 16
    stride: int | None = None  # None -> clip_len (non-overlapping)
    fps: float | None = None  # None -> the video's native frame rate
    tail: str = "drop"
    static_per_video: int = 10
    static_positions: str = "centres"  # where the static frames sit on the timeline (POSITION_RULES)

    def __post_init__(self) -> None:
        if self.clip_len < 1:
            raise FeatstoreError(f"clip length must be >= 1, got {self.clip_len}")
        if self.stride is not None and self.stride < 1:
            raise FeatstoreError(f"stride must be >= 1, got {self.stride}")
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise FeatstoreError(f"fps must be a positive number, got {self.fps}")
        if self.tail not in TAIL_RULES:
            raise FeatstoreError(f"tail rule must be one of {list(TAIL_RULES)}, got {self.tail!r}")
        if self.static_per_video < 0:
            raise FeatstoreError(f"static clips per video must be >= 0, got {self.static_per_video}")
        check_position_rule(self.static_positions)

    @property
    def effective_stride(self) -> int:
        return self.clip_len if self.stride is None else self.stride

    def to_json(self) -> dict:
        record = asdict(self)
        record["stride"] = self.effective_stride
        return record


def read_sampling_record(record: dict) -> dict:
    """A stored sampling record as this version writes it: a store written before the static-frame rule
    was recorded placed its static frames at bin centres."""
    return {"static_positions": "centres", **record}


def check_position_rule(rule: str) -> None:
    if rule not in POSITION_RULES:
        raise FeatstoreError(f"positions must be one of {list(POSITION_RULES)}, got {rule!r}")


def evenly_spaced_positions(counts: np.ndarray, k: int, rule: str = "centres") -> np.ndarray:
    """(len(counts), k) indices of k evenly spaced items among each of ``counts`` items (repeats when a
    count is below k; meaningless where a count is 0). ``rule``: see POSITION_RULES."""
    check_position_rule(rule)
    counts = np.asarray(counts, dtype=np.int64)
    if rule == "centres":
        return np.floor((np.arange(k) + 0.5)[None, :] * counts[:, None] / k).astype(np.int64)
    # np.linspace itself, one call per distinct count: its floats (truncated) are exactly the authors', which
    # one vectorized call does not always give (it takes another arithmetic path when any count is 1)
    distinct, inverse = np.unique(np.maximum(counts, 1), return_inverse=True)
    table = np.zeros((len(distinct), k), dtype=np.int64)
    for i, n in enumerate(distinct):
        table[i] = np.linspace(0, n - 1, k).astype(np.int64)
    return table[inverse.reshape(-1)]


def resample_indices(n_frames: int, native_fps: float, target_fps: float | None) -> np.ndarray:
    """Source frame index shown at each tick of a ``target_fps`` timeline (nearest earlier frame)."""
    if target_fps is None or n_frames == 0:
        return np.arange(n_frames, dtype=np.int64)
    duration = n_frames / native_fps
    n_ticks = max(1, math.ceil(duration * target_fps - 1e-9))
    ticks = np.arange(n_ticks, dtype=np.float64) / target_fps
    # The small epsilon keeps exact frame times (e.g. t = 1/25 at 25 fps) on their own frame.
    return np.minimum(np.floor(ticks * native_fps + 1e-6).astype(np.int64), n_frames - 1)


def clip_windows(n_timeline: int, config: SamplingConfig) -> np.ndarray:
    """(n_clips, 2) array of [start, end) timeline windows; end - start may be < clip_len (padded)."""
    length, stride = config.clip_len, config.effective_stride
    if n_timeline <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    if n_timeline < length:
        return np.array([[0, n_timeline]], dtype=np.int64)
    starts = list(range(0, n_timeline - length + 1, stride))
    windows = [(s, s + length) for s in starts]
    next_start = starts[-1] + stride
    if config.tail == "pad" and next_start < n_timeline and windows[-1][1] < n_timeline:
        windows.append((next_start, n_timeline))
    return np.asarray(windows, dtype=np.int64)


def clip_frame_indices(window: np.ndarray, clip_len: int) -> np.ndarray:
    """Timeline indices of one clip, padding a short window by repeating its last frame."""
    start, end = int(window[0]), int(window[1])
    idx = np.arange(start, start + clip_len, dtype=np.int64)
    return np.minimum(idx, end - 1)


def static_frame_indices(n_timeline: int, k: int, rule: str = "centres") -> np.ndarray:
    """K evenly spaced timeline indices by ``rule`` (see POSITION_RULES; repeats when n < K)."""
    if n_timeline <= 0 or k == 0:
        return np.zeros(0, dtype=np.int64)
    return evenly_spaced_positions(np.array([n_timeline]), k, rule)[0]
