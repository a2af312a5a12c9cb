"""Writing files atomically (a temporary name, then a rename): mp4 videos, PNG images, text."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

# One thread and no lookahead-driven decisions: x264's macroblock-tree rate control (on by default) gave
# different bytes for identical frames depending on what was encoded before in the same process.
_X264_OPTIONS = {"crf": "20", "preset": "veryfast", "threads": "1",
                 "x264-params": "mbtree=0:rc-lookahead=0:b-adapt=0:scenecut=0"}


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    import av

    tmp = _tmp_name(path)
    try:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                          options=dict(_X264_OPTIONS))
            stream.width = frames.shape[2]
            stream.height = frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    tmp = _tmp_name(path)
    try:
        Image.fromarray(image, mode="RGB").save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    tmp = _tmp_name(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
