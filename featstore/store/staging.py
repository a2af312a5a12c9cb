"""The staging area of an extraction in progress (``STORE/_staging``): one file per committed part.

A part is the results of a fixed, consecutive group of manifest videos (``Part``, ``VideoResult``);
``write_store`` consolidates the parts into the store's arrays once they are all staged.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featstore.store.layout import STAGING_DIR
from featstore.store.location import Location, is_url


@dataclass
class VideoResult:
    """Everything extraction produced for one video (no rows when it failed)."""

    video_id: str
    failed_reason: str = ""
    decoder: str = ""
    n_frames: int = 0
    fps: float = 0.0
    duration: float = 0.0
    clip_embeddings: np.ndarray | None = None  # (n, D)
    clip_frames: np.ndarray | None = None  # (n, 2) int64
    clip_times: np.ndarray | None = None  # (n, 2) float64
    static_embeddings: np.ndarray | None = None  # (k, D)
    static_frames: np.ndarray | None = None  # (k,) int64

    @property
    def failed(self) -> bool:
        return bool(self.failed_reason)


@dataclass
class Part:
    """A commit unit: the results of a fixed, consecutive group of manifest videos."""

    index: int
    results: list[VideoResult]
    meta: dict = field(default_factory=dict)

    @property
    def video_ids(self) -> list[str]:
        return [r.video_id for r in self.results]


ZIP_MAGIC = b"PK\x03\x04"  # how an .npz (a zip archive) begins


class DamagedPartError(Exception):
    """A staged part file that cannot be used as it is; the message says why (the part is recomputed)."""


class StagingArea:
    """Work in progress inside ``STORE/_staging``: run.json, manifest.jsonl and one file per part.

    Each part file is written to a temporary name, flushed to disk and renamed, so a part either
    exists whole or not at all, whenever the process is killed. Ranks of a distributed run each write
    only their own part files; run.json and the manifest copy are written by rank 0 alone.
    """

    RUN_FILE = "run.json"
    MANIFEST_FILE = "manifest.jsonl"

    def __init__(self, store_path: str | Path, dim: int, dtype: str):
        self.location = Location(store_path)
        self.root = self.location.join(STAGING_DIR)  # a Path for local stores, a URL for remote ones
        self.dim = dim
        self.dtype = np.dtype(dtype)

    @property
    def run_file(self) -> Path | str:
        return self.location.join(STAGING_DIR, self.RUN_FILE)

    @property
    def manifest_file(self) -> Path | str:
        return self.location.join(STAGING_DIR, self.MANIFEST_FILE)

    @staticmethod
    def part_name(index: int) -> str:
        return f"part-{index:06d}.npz"

    def part_file(self, index: int) -> Path | str:
        return self.location.join(STAGING_DIR, self.part_name(index))

    def _name(self, name: str) -> str:
        return f"{STAGING_DIR}/{name}"

    def exists(self) -> bool:
        return has_staged_run(self.location)

    def has_part(self, index: int) -> bool:
        return self.location.is_file(self._name(self.part_name(index)))

    def create(self) -> None:
        self.location.makedirs(STAGING_DIR)

    def clear_temporaries(self) -> None:
        for name in self.location.names(STAGING_DIR):
            if ".tmp" in name:
                self.location.remove(self._name(name))

    # ------------------------------------------------------------------ run.json and other small files
    def read_run(self) -> dict:
        return json.loads(self.location.read_bytes(self._name(self.RUN_FILE)))

    def write_run(self, run: dict) -> None:
        text = json.dumps(run, indent=2).encode()
        self.location.write_atomic(self._name(self.RUN_FILE), lambda handle: handle.write(text))

    def write_file(self, name: str, data: bytes) -> None:
        self.location.write_atomic(self._name(name), lambda handle: handle.write(data))

    def read_file(self, name: str) -> bytes:
        return self.location.read_bytes(self._name(name))

    # ------------------------------------------------------------------ parts
    def save_part(self, part: Part) -> None:
        results = part.results
        ok = [r for r in results if not r.failed]
        arrays = {
            "video_ids": np.array([r.video_id for r in results], dtype=str),
            "failed_reasons": np.array([r.failed_reason for r in results], dtype=str),
            "decoders": np.array([r.decoder for r in results], dtype=str),
            "n_frames": np.array([r.n_frames for r in results], dtype=np.int64),
            "fps": np.array([r.fps for r in results], dtype=np.float64),
            "duration": np.array([r.duration for r in results], dtype=np.float64),
            "clip_counts": np.array([0 if r.failed else len(r.clip_embeddings) for r in results], dtype=np.int64),
            "static_counts": np.array([0 if r.failed else len(r.static_embeddings) for r in results], dtype=np.int64),
            "clip_embeddings": _concat([r.clip_embeddings for r in ok], (0, self.dim), self.dtype),
            "clip_frames": _concat([r.clip_frames for r in ok], (0, 2), np.int64),
            "clip_times": _concat([r.clip_times for r in ok], (0, 2), np.float64),
            "static_embeddings": _concat([r.static_embeddings for r in ok], (0, self.dim), self.dtype),
            "static_frames": _concat([r.static_frames for r in ok], (0,), np.int64),
            "meta": np.array(json.dumps(part.meta)),
        }
        self.location.write_atomic(self._name(self.part_name(part.index)), lambda handle: np.savez(handle, **arrays))

    SUMMARY_KEYS = ("video_ids", "failed_reasons", "decoders", "n_frames", "fps", "duration", "clip_counts", "static_counts")
    ROW_KEYS = ("clip_embeddings", "clip_frames", "clip_times", "static_embeddings", "static_frames")

    def load_summary(self, index: int) -> dict[str, np.ndarray]:
        """The per-video columns of a part, without its rows."""
        with self.location.open_read(self._name(self.part_name(index))) as handle:
            with np.load(handle, allow_pickle=False) as data:
                return {key: data[key] for key in self.SUMMARY_KEYS}

    def verify_part(self, index: int) -> dict[str, np.ndarray]:
        """The per-video columns of a staged part after reading all of it: every member whole (the zip
        checks each one's CRC) and every array agreeing with the others and with the store's width and
        dtype. Raises DamagedPartError saying what is wrong (a torn copy, zero bytes, foreign content)."""
        try:
            with self.location.open_read(self._name(self.part_name(index))) as handle:
                head = handle.read(len(ZIP_MAGIC))
                if not head:
                    raise DamagedPartError("zero bytes")
                if head != ZIP_MAGIC:
                    raise DamagedPartError("not an .npz archive")
                handle.seek(0)
                with np.load(handle, allow_pickle=False) as data:
                    missing = [key for key in (*self.SUMMARY_KEYS, *self.ROW_KEYS, "meta") if key not in data.files]
                    if missing:
                        raise DamagedPartError(f"lacks {', '.join(missing)}")
                    arrays = {key: data[key] for key in (*self.SUMMARY_KEYS, *self.ROW_KEYS, "meta")}
            json.loads(str(arrays["meta"]))
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:  # JSONDecodeError is a ValueError
            raise DamagedPartError(f"unreadable ({type(exc).__name__}: {exc})") from exc
        n_videos = len(arrays["video_ids"])
        if any(arrays[key].shape != (n_videos,) for key in self.SUMMARY_KEYS):
            raise DamagedPartError("per-video columns of different lengths")
        n_clips, n_static = int(arrays["clip_counts"].sum()), int(arrays["static_counts"].sum())
        expected = {
            "clip_embeddings": (n_clips, self.dim),
            "clip_frames": (n_clips, 2),
            "clip_times": (n_clips, 2),
            "static_embeddings": (n_static, self.dim),
            "static_frames": (n_static,),
        }
        for key, shape in expected.items():
            if arrays[key].shape != shape:
                raise DamagedPartError(f"{key} has shape {arrays[key].shape}, expected {shape}")
        for key in ("clip_embeddings", "static_embeddings"):
            if arrays[key].dtype != self.dtype:
                raise DamagedPartError(f"{key} is {arrays[key].dtype}, expected {self.dtype}")
        return {key: arrays[key] for key in self.SUMMARY_KEYS}

    def load_part(self, index: int) -> Part | None:
        if not self.has_part(index):
            return None
        with self.location.open_read(self._name(self.part_name(index))) as handle:
            with np.load(handle, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        results = []
        clip_at = static_at = 0
        for i, video_id in enumerate(arrays["video_ids"].tolist()):
            result = VideoResult(
                video_id=video_id,
                failed_reason=str(arrays["failed_reasons"][i]),
                decoder=str(arrays["decoders"][i]),
                n_frames=int(arrays["n_frames"][i]),
                fps=float(arrays["fps"][i]),
                duration=float(arrays["duration"][i]),
            )
            if not result.failed:
                n_clips, n_static = int(arrays["clip_counts"][i]), int(arrays["static_counts"][i])
                result.clip_embeddings = arrays["clip_embeddings"][clip_at : clip_at + n_clips]
                result.clip_frames = arrays["clip_frames"][clip_at : clip_at + n_clips]
                result.clip_times = arrays["clip_times"][clip_at : clip_at + n_clips]
                result.static_embeddings = arrays["static_embeddings"][static_at : static_at + n_static]
                result.static_frames = arrays["static_frames"][static_at : static_at + n_static]
                clip_at += n_clips
                static_at += n_static
            results.append(result)
        return Part(index, results, json.loads(str(arrays["meta"])))

    def remove(self) -> None:
        self.location.remove_tree(STAGING_DIR)


def has_staged_run(location: Location) -> bool:
    """An extraction is in progress at ``location``: its staging area holds the run file."""
    return location.is_file(f"{STAGING_DIR}/{StagingArea.RUN_FILE}")


def remove_partial_writes(store_path: str | Path) -> None:
    """Delete the temporary files a killed Zarr write leaves (zarr writes ``*.partial`` then renames).

    Only local stores have them: through fsspec, zarr writes each object with one PUT.
    """
    if is_url(store_path):
        return
    for leftover in Path(store_path).rglob("*.partial"):
        leftover.unlink()


def _concat(blocks: list, empty_shape: tuple, dtype) -> np.ndarray:
    blocks = [b for b in blocks if b is not None and len(b)]
    if not blocks:
        return np.zeros(empty_shape, dtype=dtype)
    return np.concatenate(blocks).astype(dtype, copy=False)
