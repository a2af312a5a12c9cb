"""Video and image decoding: decord first, PyAV as fallback; frames are read in requested chunks.

A source never holds a whole video: callers ask for sorted frame indices a chunk at a time
(``read``), and each call returns only those frames as uint8 (N, H, W, 3).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

DECODERS = ("auto", "decord", "pyav")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


class VideoDecodeError(Exception):
    """A file that cannot be decoded; the message is the reason recorded in the store."""


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    height: int
    width: int

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else 0.0


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


class DecordSource:
    name = "decord"

    def __init__(self, path: Path):
        import decord

        if path.stat().st_size == 0:
            raise VideoDecodeError("zero-byte file")
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
            n_frames = len(self._reader)
            fps = float(self._reader.get_avg_fps())
            height, width = self._reader[0].shape[:2] if n_frames else (0, 0)
        except (RuntimeError, decord.DECORDError) as exc:
            raise VideoDecodeError(f"decord cannot open the file: {_first_line(exc)}") from exc
        if n_frames == 0:
            raise VideoDecodeError("no decodable video frames")
        self.info = VideoInfo(n_frames, fps, height, width)
        self._decord_error = decord.DECORDError

    def read(self, indices: np.ndarray) -> np.ndarray:
        try:
            return self._reader.get_batch(indices.tolist()).asnumpy()
        except (RuntimeError, self._decord_error, IndexError) as exc:
            raise VideoDecodeError(f"decoding failed near frame {int(indices[0])}: {_first_line(exc)}") from exc

    def close(self) -> None:
        self._reader = None


class PyAVSource:
    """Sequential decoding; successive ``read`` calls must ask for non-decreasing indices."""

    name = "pyav"

    def __init__(self, path: Path):
        if path.stat().st_size == 0:
            raise VideoDecodeError("zero-byte file")
        try:
            self._container = av.open(str(path))
            if not self._container.streams.video:
                raise VideoDecodeError("the file has no video stream")
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            n_frames = stream.frames or _count_frames(path)
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(f"PyAV cannot open the file: {_first_line(exc)}") from exc
        if n_frames == 0 or fps <= 0:
            raise VideoDecodeError("no decodable video frames")
        self.info = VideoInfo(n_frames, fps, stream.codec_context.height, stream.codec_context.width)
        self._frames = self._container.decode(stream)
        self._position = -1
        self._current: np.ndarray | None = None

    def read(self, indices: np.ndarray) -> np.ndarray:
        out = []
        try:
            for index in indices.tolist():
                if index < self._position:
                    raise ValueError(f"PyAV source reads forward only (asked {index} after {self._position})")
                while self._position < index:
                    frame = next(self._frames, None)
                    if frame is None:
                        raise VideoDecodeError(f"the stream ends at frame {self._position + 1}, expected {self.info.n_frames}")
                    self._current = frame.to_ndarray(format="rgb24")
                    self._position += 1
                out.append(self._current)
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(f"decoding failed near frame {self._position + 1}: {_first_line(exc)}") from exc
        return np.stack(out)

    def close(self) -> None:
        self._container.close()


class ImageSource:
    name = "pillow"

    def __init__(self, path: Path):
        try:
            with Image.open(path) as image:
                self._frame = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise VideoDecodeError(f"cannot read the image: {_first_line(exc)}") from exc
        height, width = self._frame.shape[:2]
        self.info = VideoInfo(1, 0.0, height, width)

    def read(self, indices: np.ndarray) -> np.ndarray:
        return np.repeat(self._frame[None], len(indices), axis=0)

    def close(self) -> None:
        self._frame = None


def open_media(path: Path, decoder: str = "auto", media: str = "video"):
    """Open a video (or image) for chunked reads; raises VideoDecodeError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError("file not found")
    if media == "image" or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    if decoder == "pyav" or (decoder == "auto" and not decord_available()):
        return PyAVSource(path)
    if decoder == "decord":
        return DecordSource(path)
    try:
        return DecordSource(path)
    except VideoDecodeError as decord_error:
        try:
            return PyAVSource(path)
        except VideoDecodeError:
            raise decord_error from None


def _count_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.demux(container.streams.video[0]) if _.size)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
