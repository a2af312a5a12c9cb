"""Frames: a background with actor sprites composited along their per-frame states."""

from __future__ import annotations

import numpy as np

from data_manifests.synth.appearance import SUPERSAMPLE
from data_manifests.synth.config import Geometry


def _composite(frames: np.ndarray, sprite: np.ndarray, state: np.ndarray, geo: Geometry,
               frame_index: np.ndarray | None = None) -> None:
    """Draw the sprite into ``frames`` (in place) at per-frame (x, y, log_scale, angle).

    Each output pixel of a fixed window around the actor is mapped back into the (supersampled) sprite
    by the inverse rotation/scale and sampled there; only pixels the sprite covers are blended.
    """
    if len(state) == 0:
        return
    if frame_index is None:
        frame_index = np.arange(len(state))
    assert frames.flags.c_contiguous
    b = geo.window
    height, width = frames.shape[1:3]
    xs, ys = state[:, 0], state[:, 1]
    scale = np.exp(state[:, 2])
    x0 = np.clip(np.floor(xs).astype(np.int64) - b // 2, 0, width - b)
    y0 = np.clip(np.floor(ys).astype(np.int64) - b // 2, 0, height - b)
    ar = np.arange(b)
    px = x0[:, None] + ar[None, :]                                            # [T, b]
    py = y0[:, None] + ar[None, :]
    k = float(SUPERSAMPLE)
    size = sprite.shape[0]                      # padded: inner size + 2
    half = (size - 2) / 2.0 + 1.0
    dx = ((px + 0.5 - xs[:, None]) * k).astype(np.float32)[:, None, :]       # [T, 1, b]
    dy = ((py + 0.5 - ys[:, None]) * k).astype(np.float32)[:, :, None]       # [T, b, 1]
    cos = (np.cos(state[:, 3]) / scale).astype(np.float32)[:, None, None]
    sin = (np.sin(state[:, 3]) / scale).astype(np.float32)[:, None, None]
    u = cos * dx + sin * dy
    u += half
    v = cos * dy - sin * dx
    v += half
    np.clip(u, 0, size - 1, out=u)
    np.clip(v, 0, size - 1, out=v)
    src = v.astype(np.intp) * size + u.astype(np.intp)    # non-negative, so truncation is floor
    alpha = sprite[..., 3].reshape(-1)[src]
    covered = alpha > 0
    src = src[covered]
    a = alpha[covered][:, None]
    rgb = sprite[..., :3].reshape(-1, 3)[src]
    pix = ((frame_index[:, None, None] * height + py[:, :, None]) * width + px[:, None, :])[covered]
    flat = frames.reshape(-1, 3)
    out = rgb + (1.0 - a) * flat[pix].astype(np.float32)
    flat[pix] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_video(background: np.ndarray, actors: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                  n: int, geo: Geometry) -> np.ndarray:
    frames = np.broadcast_to(background, (n,) + background.shape).copy()
    for sprite, state, index in actors:
        _composite(frames, sprite, state, geo, index)
    return frames
