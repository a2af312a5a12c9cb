"""The Store: the one class that owns the on-disk Zarr v3 layout of a feature store.

Layout (FORMAT_VERSION 1), a Zarr v3 group::

    attrs: featstore {format, format_version, state, created, finalized}, identity, config,
           provenance, dataset {header, fingerprint, n_videos}, failures [{video_id, path, reason}]
    clips/embeddings     (N, D) float16|float32   clip embeddings, rows grouped by video
    clips/frames         (N, 2) int64             [start, end) source frame of each clip
    clips/times          (N, 2) float64           [start, end) seconds of each clip
    clips/offsets        (V + 1,) int64           rows of video v: offsets[v]:offsets[v + 1]
    static/embeddings    (M, D)                   static-clip embeddings (one frame tiled to a clip)
    static/frames        (M,) int64               the source frame of each static clip
    static/offsets       (V + 1,) int64
    videos/{video_id, path, split, subject, decoder}   (V,) str
    videos/{label}                                      (V,) int64, -1 = none
    videos/attributes                                   (V, A) int8, -1 = unknown
    videos/{fps, duration}                              (V,) float64
    videos/n_frames                                     (V,) int64
    videos/segments (S, 3) float64 [start_s, end_s, label] + videos/segment_offsets (V + 1,)
    _staging/            only while an extraction is in progress (see StagingArea)

Beside the store, ``<store>.lock`` names the one process writing it (see StoreLock).

Every manifest video has a row in ``videos/``; a failed video has zero clips and an entry in the
``failures`` attribute. Embedding arrays are chunked at ~1 MB rows and written one whole shard at a
time by a single writer.

A store lives in a local folder or at an fsspec URL (``s3://bucket/x.zarr`` with s3fs installed;
``file://`` and ``memory://`` work too): see ``Location``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import socket
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import fsspec
import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.registry import register_codec
from zarr.storage import FsspecStore, LocalStore, WrapperStore

from data_manifests.errors import FeatstoreError
from featstore.sampling import evenly_spaced_positions

FORMAT_NAME = "featstore"
FORMAT_VERSION = 1
STAGING_DIR = "_staging"
LOCK_SUFFIX = ".lock"  # the writer lock beside the store: runs/x.zarr -> runs/x.zarr.lock
CHUNK_BYTES = 1 << 20
CHUNKS_PER_SHARD = 16
STORE_DTYPES = ("float16", "float32")
TABLE_COLUMNS = ("video_id", "path", "split", "subject", "decoder", "label", "attributes", "fps", "duration", "n_frames")
# The private columns an anonymized export drops by default (``write_transformed_store``): they keep their
# shape and hold "unknown" values, so readers and ``verify`` work unchanged; protocols join them from the
# raw store by video id. The export records "dropped" or "kept" as provenance.anonymizer.private_labels.
PRIVATE_COLUMNS = ("attributes", "subject", "path")
PRIVATE_LABELS_DROPPED, PRIVATE_LABELS_KEPT = "dropped", "kept"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def chunk_rows(dim: int, itemsize: int) -> int:
    """Rows per chunk: the power of two giving at least ~1 MB per chunk."""
    rows = max(1, CHUNK_BYTES // max(1, dim * itemsize))
    return 1 << math.ceil(math.log2(rows)) if rows > 1 else 1


def is_url(location: str | Path) -> bool:
    """An fsspec URL (``s3://bucket/x.zarr``, ``file:///data/x.zarr``, ``memory://x.zarr``), not a local path."""
    return isinstance(location, str) and "://" in location


class Location:
    """Where a store lives, and the few file operations the store and its staging area need.

    A local folder keeps os-level operations: a file is written to a temporary name, fsynced and
    renamed. An fsspec URL goes through fsspec: a file is serialized in memory, written with one PUT
    to a temporary key and then moved to its name; on object stores each object appears whole (a PUT
    and a server-side copy are atomic per object), on file-like backends the move is a rename. Either
    way a reader never sees half a file. fsspec settings (credentials, endpoints) come from the usual
    places, e.g. ``FSSPEC_S3='{"endpoint_url": ...}'`` or the AWS environment for s3fs.
    """

    def __init__(self, location: str | Path):
        self.is_url = is_url(location)
        if self.is_url:
            self.text = str(location).rstrip("/")
            self.storage_options = _storage_options(self.text)
            try:
                self.fs, self._root = fsspec.core.url_to_fs(self.text, **self.storage_options)
            except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
                raise FeatstoreError(f"cannot open {self.text}: {exc}") from exc
            self.path: Path | str = self.text
        else:
            self.path = Path(location)
            self.text = str(self.path)

    def __str__(self) -> str:
        return self.text

    def join(self, *names: str) -> Path | str:
        """A child location: a Path for local folders, a URL for remote ones."""
        if self.is_url:
            return "/".join([self.text, *names])
        return self.path.joinpath(*names)

    def _key(self, name: str) -> str:
        return f"{self._root}/{name}" if name else self._root

    # ------------------------------------------------------------------ queries
    def exists(self, name: str = "") -> bool:
        if self.is_url:
            return self.fs.exists(self._key(name))
        return self.path.joinpath(name).exists() if name else self.path.exists()

    def is_file(self, name: str) -> bool:
        if self.is_url:
            return self.fs.isfile(self._key(name))
        return self.path.joinpath(name).is_file()

    def is_empty_folder(self) -> bool:
        if self.is_url:
            return self.fs.isdir(self._root) and not self.fs.ls(self._root, detail=False)
        return self.path.is_dir() and not any(self.path.iterdir())

    def names(self, folder: str) -> list[str]:
        """File names (not paths) directly inside ``folder``; empty when it does not exist."""
        if self.is_url:
            if not self.fs.isdir(self._key(folder)):
                return []
            return sorted(p.rsplit("/", 1)[-1] for p in self.fs.ls(self._key(folder), detail=False))
        path = self.path / folder
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    # ------------------------------------------------------------------ reading
    def read_bytes(self, name: str) -> bytes:
        if self.is_url:
            return self.fs.cat_file(self._key(name))
        return self.path.joinpath(name).read_bytes()

    def open_read(self, name: str) -> BinaryIO:
        """A seekable binary file (a member of an .npz is then read without fetching the others)."""
        if self.is_url:
            return self.fs.open(self._key(name), "rb")
        return open(self.path / name, "rb")

    # ------------------------------------------------------------------ writing
    def makedirs(self, name: str = "") -> None:
        if self.is_url:
            self.fs.makedirs(self._key(name), exist_ok=True)  # a no-op on object stores
        else:
            self.path.joinpath(name).mkdir(parents=True, exist_ok=True)

    def write_atomic(self, name: str, write: Callable[[BinaryIO], None]) -> None:
        """Write a file whole or not at all: ``write(handle)`` fills a temporary that is then renamed."""
        if self.is_url:
            buffer = io.BytesIO()
            write(buffer)
            tmp = self._key(name + ".tmp")
            self.fs.pipe_file(tmp, buffer.getvalue())
            self.fs.mv(tmp, self._key(name))
            return
        final = self.path / name
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(final)

    def remove(self, name: str) -> None:
        if self.is_url:
            self.fs.rm_file(self._key(name))
        else:
            self.path.joinpath(name).unlink()

    def remove_tree(self, name: str = "") -> None:
        if self.is_url:
            if self.fs.exists(self._key(name)):
                self.fs.rm(self._key(name), recursive=True)
        else:
            shutil.rmtree(self.path.joinpath(name) if name else self.path)

    def open_group(self, mode: str) -> zarr.Group:
        if self.is_url:
            return zarr.open_group(self.text, mode=mode, storage_options=self.storage_options)
        return zarr.open_group(str(self.path), mode=mode)

    def open_group_for_reading(self) -> zarr.Group:
        """The group read-only, with every absent chunk an error instead of the fill value (for stores that
        record ``every_chunk_written``: there a missing chunk file is damage, never an all-zero chunk)."""
        if self.is_url:
            files = FsspecStore.from_url(self.text, storage_options=self.storage_options, read_only=True)
        else:
            files = LocalStore(self.path, read_only=True)
        return zarr.open_group(ChunksMustExist(files, self.text), mode="r")


class DamagedStoreError(FeatstoreError, ValueError):
    """A chunk a reader needs is absent or fails its checksum. A ValueError too, as zarr's own read errors
    are, so ``verify`` reports it among the other damage."""


def _is_chunk_key(key: str) -> bool:
    # zarr v3 default chunk keys: "<array path>/c/<i>/<j>" ("c" alone for a 0-d array); metadata is zarr.json
    return not key.endswith("zarr.json") and ("/c/" in f"/{key}" or key.endswith("/c") or key == "c")


class ChunksMustExist(WrapperStore):
    """Reads through to the store's files and refuses a chunk that is not there."""

    def __init__(self, store, label: str):
        super().__init__(store)
        self.label = label

    def _with_store(self, store) -> ChunksMustExist:
        return type(self)(store, self.label)

    async def get(self, key, prototype, byte_range=None):
        value = await self._store.get(key, prototype, byte_range)
        if value is None and _is_chunk_key(key):
            raise DamagedStoreError(
                f"{self.label}: chunk {key} is missing (the store is damaged; `featstore verify` lists all damage)")
        return value


class CheckedCrc32c(Crc32cCodec):
    """zarr's crc32c codec, failing a damaged chunk with featstore's one-line error instead of a traceback."""

    def _decode_sync(self, chunk_bytes, chunk_spec):
        try:
            return super()._decode_sync(chunk_bytes, chunk_spec)
        except ValueError as exc:
            raise DamagedStoreError(
                "a store chunk fails its crc32c checksum (the file is damaged; `featstore verify` on the "
                "stores this command read names it)") from exc


# Every crc32c chunk this process reads goes through the checked codec (stores name it "crc32c" either way).
register_codec("crc32c", CheckedCrc32c)
zarr.config.set({"codecs.crc32c": f"{CheckedCrc32c.__module__}.{CheckedCrc32c.__qualname__}"})


def _storage_options(url: str) -> dict:
    # fsspec's local filesystem does not create parent folders unless asked; object stores have none.
    protocol = url.split("://", 1)[0]
    return {"auto_mkdir": True} if protocol in ("file", "local") else {}


class StoreLockedError(FeatstoreError):
    """Another process is writing the store."""


@dataclass(frozen=True)
class LockOwner:
    pid: int
    host: str
    since: str

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host}, since {self.since}"

    def is_gone(self) -> bool:
        """The owner ran on this host and no longer runs (a lock from another host cannot be checked)."""
        if self.host != socket.gethostname() or self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by another user
            return False
        return False


class StoreLock:
    """The single-writer lock of a store: a file ``<store>.lock`` beside it naming its owner (pid, host, since).

    Created whole or not at all and only if absent (O_CREAT|O_EXCL locally; fsspec's ``xb`` mode for a
    URL, as atomic as the backend's create-if-absent); released on exit and on errors. A kill -9 leaves
    the file behind: the next writer on the same host sees its pid gone and takes it over, saying so on
    stderr. A lock left by another host cannot be checked: its message says to delete it once that
    process is known to be gone. It lives beside the store rather than in it, so that ``--overwrite``
    can delete the whole store without dropping the lock, and a folder that is not a store is never
    written into. Re-entrant within a process: extract holds it and calls finalize_store, which takes it too.
    """

    _depth: dict[str, int] = {}  # lock files this process holds -> how many holders deep

    def __init__(self, store: str | Path):
        location = Location(store)
        self.store = location.text
        self.path = location.text + LOCK_SUFFIX
        self._fs = location.fs if location.is_url else None
        self._key = location._key("") + LOCK_SUFFIX if location.is_url else self.path
        self.owner: LockOwner | None = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        if self._depth.get(self.path):
            self._depth[self.path] += 1
            return
        owner = LockOwner(os.getpid(), socket.gethostname(), utc_now())
        while not self._create(owner):
            current = self._read()
            if current is None:  # released meanwhile: try again
                continue
            if not current.is_gone():
                raise StoreLockedError(
                    f"{self.store} is being written by another process ({current}); wait for it to finish, "
                    f"or delete {self.path} if that process is gone"
                )
            if self._take_over(current):
                print(f"note: taking over the lock {self.path} of {current}: that process is gone", file=sys.stderr)
        self.owner = owner
        self._depth[self.path] = 1

    def release(self) -> None:
        depth = self._depth.get(self.path, 0) - 1
        if depth > 0:
            self._depth[self.path] = depth
            return
        self._depth.pop(self.path, None)
        if self.owner is not None and self._read() == self.owner:  # never another writer's lock
            self._remove(self._key)
        self.owner = None

    def _create(self, owner: LockOwner) -> bool:
        data = json.dumps({"pid": owner.pid, "host": owner.host, "since": owner.since}).encode()
        try:
            if self._fs is not None:
                with self._fs.open(self._key, "xb") as handle:
                    handle.write(data)
                return True
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(handle, data)
            os.fsync(handle)
        finally:
            os.close(handle)
        return True

    def _read(self, key: str | None = None) -> LockOwner | None:
        """The owner a lock file names; None when there is none. Re-read briefly while a new lock is being
        written (it is empty between its creation and its one write)."""
        key = key or self._key
        for attempt in range(20):
            try:
                data = self._fs.cat_file(key) if self._fs is not None else Path(key).read_bytes()
            except FileNotFoundError:
                return None
            try:
                record = json.loads(data)
                return LockOwner(int(record["pid"]), str(record["host"]), str(record["since"]))
            except (ValueError, KeyError, TypeError):
                time.sleep(0.05)
        raise StoreLockedError(f"{self.store} has an unreadable lock file {self.path}; delete it if no process writes the store")

    def _take_over(self, stale: LockOwner) -> bool:
        """Remove a dead owner's lock, unless another writer replaced it meanwhile (then the loop sees theirs)."""
        if self._fs is not None:  # no atomic rename on object stores: two writers taking over at once may race
            self._remove(self._key)
            return True
        aside = f"{self.path}.{os.getpid()}.stale"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:  # another writer moved it first
            return False
        if self._read(aside) != stale:  # a live lock made after we read the stale one: put it back
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
            os.unlink(aside)
            return False
        os.unlink(aside)
        return True

    def _remove(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self._fs is not None:
                self._fs.rm_file(key)
            else:
                os.unlink(key)


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
        return self.location.is_file(self._name(self.RUN_FILE))

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


def remove_partial_writes(store_path: str | Path) -> None:
    """Delete the temporary files a killed Zarr write leaves (zarr writes ``*.partial`` then renames).

    Only local stores have them: through fsspec, zarr writes each object with one PUT.
    """
    if is_url(store_path):
        return
    for leftover in Path(store_path).rglob("*.partial"):
        leftover.unlink()


def first_nonfinite_row(values: np.ndarray) -> int | None:
    """The first row of ``values`` holding NaN or Inf, or None."""
    if len(values) == 0:
        return None
    bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=np.float32)).reshape(len(values), -1).all(axis=1))
    return int(bad[0]) if len(bad) else None


def _concat(blocks: list, empty_shape: tuple, dtype) -> np.ndarray:
    blocks = [b for b in blocks if b is not None and len(b)]
    if not blocks:
        return np.zeros(empty_shape, dtype=dtype)
    return np.concatenate(blocks).astype(dtype, copy=False)


@dataclass
class VideoTable:
    """The ``videos/`` columns, read into memory (one row per manifest video)."""

    video_id: np.ndarray
    path: np.ndarray
    split: np.ndarray
    subject: np.ndarray
    decoder: np.ndarray
    label: np.ndarray
    attributes: np.ndarray
    fps: np.ndarray
    duration: np.ndarray
    n_frames: np.ndarray
    segments: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.video_id)


class Store:
    """A feature store on disk. ``Store.open`` reads; ``write_store`` (finalize) writes it whole."""

    def __init__(self, path: str | Path, group: zarr.Group):
        self.path = path if is_url(path) else Path(path)  # a Path, or the URL of a remote store
        self.group = group
        self.attrs = group.attrs.asdict()

    # ------------------------------------------------------------------ opening
    @staticmethod
    def is_store(path: str | Path) -> bool:
        location = Location(path)
        return location.is_file(f"{STAGING_DIR}/run.json") or _read_format(location) is not None

    @classmethod
    def open(cls, path: str | Path, require_complete: bool = True) -> Store:
        location = Location(path)
        if not location.exists():
            raise FeatstoreError(f"no store at {location}")
        fmt = _read_format(location)
        if fmt is None:
            if location.is_file(f"{STAGING_DIR}/run.json"):
                raise FeatstoreError(f"{location} is an unfinished extraction: re-run the same extract command to finish it")
            raise FeatstoreError(f"{location} is not a featstore store")
        if fmt.get("format_version") != FORMAT_VERSION:
            raise FeatstoreError(
                f"{location} has store format version {fmt.get('format_version')}; this build reads version {FORMAT_VERSION}"
            )
        if require_complete and fmt.get("state") != "complete":
            raise FeatstoreError(f"{location} is an unfinished extraction: re-run the same extract command to finish it")
        group = location.open_group_for_reading() if fmt.get("every_chunk_written") else location.open_group("r")
        return cls(location.path, group)

    # ------------------------------------------------------------------ metadata
    @property
    def provenance(self) -> dict:
        return self.attrs.get("provenance", {})

    @property
    def config(self) -> dict:
        return self.attrs.get("config", {})

    @property
    def identity(self) -> dict:
        return self.attrs.get("identity", {})

    @property
    def dataset(self) -> dict:
        return self.attrs.get("dataset", {})

    @property
    def failures(self) -> list[dict]:
        return self.attrs.get("failures", [])

    @property
    def private_labels_dropped(self) -> bool:
        """An export written without its private columns (``PRIVATE_COLUMNS`` hold -1 and "")."""
        return self.provenance.get("anonymizer", {}).get("private_labels") == PRIVATE_LABELS_DROPPED

    @property
    def dim(self) -> int:
        return int(self.clip_embeddings.shape[1])

    @property
    def n_videos(self) -> int:
        return int(self.group["videos/video_id"].shape[0])

    @property
    def clip_embeddings(self) -> zarr.Array:
        return self.group["clips/embeddings"]

    @property
    def static_embeddings(self) -> zarr.Array:
        return self.group["static/embeddings"]

    def array(self, name: str) -> np.ndarray:
        return self.group[name][...]

    def clip_offsets(self) -> np.ndarray:
        return self.array("clips/offsets")

    def static_offsets(self) -> np.ndarray:
        return self.array("static/offsets")

    def videos(self) -> VideoTable:
        seg = self.array("videos/segments")
        seg_off = self.array("videos/segment_offsets")
        columns = {name: self.array(f"videos/{name}") for name in TABLE_COLUMNS}
        segments = [seg[seg_off[v] : seg_off[v + 1]] for v in range(len(seg_off) - 1)]
        return VideoTable(segments=segments, **columns)

    # ------------------------------------------------------------------ row access
    def video_clips(self, video_index: int) -> np.ndarray:
        offsets = self.group["clips/offsets"]
        start, end = (int(x) for x in offsets[video_index : video_index + 2])
        return self.clip_embeddings[start:end]

    def split_indices(self, split: str) -> np.ndarray:
        """Indices of the videos of a split that have rows (failed videos are left out)."""
        table_split = self.array("videos/split")
        has_rows = (np.diff(self.clip_offsets()) > 0) | (np.diff(self.static_offsets()) > 0)
        return np.flatnonzero((table_split == split) & has_rows)

    def evenly_spaced_clip_rows(self, k: int = 5, positions: str = "centres") -> np.ndarray:
        """(V, k) clip rows per video at k evenly spaced positions (``featstore.sampling.POSITION_RULES``;
        repeats when a video has fewer than k clips; -1 for a video without clips): the 5-clip evaluation
        convention."""
        offsets = self.clip_offsets()
        counts = np.diff(offsets)
        rows = offsets[:-1, None] + evenly_spaced_positions(counts, k, positions)
        rows[counts == 0] = -1
        return rows

    def load_embeddings(self, kind: str = "clips") -> np.ndarray:
        """All rows of ``clips`` or ``static`` embeddings in memory as float32."""
        if kind not in ("clips", "static"):
            raise ValueError(f"kind must be 'clips' or 'static', got {kind!r}")
        values = self.group[f"{kind}/embeddings"][...].astype(np.float32)
        self.refuse_nonfinite(kind, values)
        return values

    def refuse_nonfinite(self, kind: str, values: np.ndarray) -> None:
        """NaN or Inf rows would train or score as numbers: a one-line error naming the first."""
        bad_row = first_nonfinite_row(values)
        if bad_row is not None:
            raise FeatstoreError(f"{self.path}: {kind}/embeddings row {bad_row} holds NaN or Inf (a damaged store; "
                                 "`featstore verify` lists every problem)")

    def video_static(self, video_index: int) -> np.ndarray:
        offsets = self.group["static/offsets"]
        start, end = (int(x) for x in offsets[video_index : video_index + 2])
        return self.static_embeddings[start:end]

    def read_rows(self, array: zarr.Array, rows: np.ndarray) -> np.ndarray:
        """Rows in the order asked, reading each touched chunk once."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        unique_rows, inverse = np.unique(sorted_rows, return_inverse=True)
        picked = array.get_orthogonal_selection((unique_rows, slice(None)))
        out = np.empty((len(rows), array.shape[1]), dtype=array.dtype)
        out[order] = picked[inverse]
        return out

    @staticmethod
    def iter_blocks(array: zarr.Array) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, block) in whole-shard sequential blocks, for scans and exports."""
        step = array.shards[0] if array.shards else array.chunks[0]
        for start in range(0, array.shape[0], step):
            yield start, array[start : start + step]


def _read_format(location: Location) -> dict | None:
    if not location.is_file("zarr.json"):
        return None
    try:
        attrs = json.loads(location.read_bytes("zarr.json")).get("attributes", {})
    except (json.JSONDecodeError, OSError):
        return None
    fmt = attrs.get("featstore")
    return fmt if isinstance(fmt, dict) and fmt.get("format") == FORMAT_NAME else None


class _RowWriter:
    """Appends rows to a pre-sized array, writing one whole shard at a time."""

    def __init__(self, array: zarr.Array):
        self.array = array
        self.block = array.shards[0] if array.shards else array.chunks[0]
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.position = 0

    def append(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        self.buffer.append(rows)
        self.buffered += len(rows)
        while self.buffered >= self.block:
            self._write(self.block)

    def close(self) -> None:
        if self.buffered:
            self._write(self.buffered)
        if self.position != self.array.shape[0]:
            raise RuntimeError(f"wrote {self.position} rows into an array of {self.array.shape[0]}")

    def _write(self, n: int) -> None:
        data = np.concatenate(self.buffer) if len(self.buffer) > 1 else self.buffer[0]
        self.array[self.position : self.position + n] = data[:n]
        self.position += n
        rest = data[n:]
        self.buffer = [rest] if len(rest) else []
        self.buffered = len(rest)


# Zarr skips chunks whose values all equal the fill value; writing them all lets `verify` tell a deleted
# chunk from one of zeros (stores record it as featstore.every_chunk_written).
EVERY_CHUNK = {"write_empty_chunks": True}


def _checked_codecs(compress: bool) -> list:
    """Every chunk ends with a crc32c of its bytes, so a flipped byte fails the read instead of feeding
    wrong numbers (zstd as zarr's default; the sharded embeddings stay uncompressed)."""
    return [ZstdCodec(level=0, checksum=False), Crc32cCodec()] if compress else [Crc32cCodec()]


def _create(group: zarr.Group, name: str, shape: tuple, dtype, rows_per_chunk: int | None = None, sharded=False):
    if dtype is str:
        chunks = (max(1, shape[0]),)
        return group.create_array(name, shape=shape, dtype=str, chunks=chunks, compressors=_checked_codecs(True),
                                  overwrite=True, config=EVERY_CHUNK)
    itemsize = np.dtype(dtype).itemsize
    width = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    rows = rows_per_chunk or chunk_rows(width, itemsize)
    chunks = (rows, *(max(1, s) for s in shape[1:]))
    shards = (rows * CHUNKS_PER_SHARD, *chunks[1:]) if sharded else None
    return group.create_array(
        name, shape=shape, dtype=dtype, chunks=chunks, shards=shards, compressors=_checked_codecs(not sharded),
        overwrite=True, config=EVERY_CHUNK,
    )


@dataclass
class StoreContents:
    """What finalize writes besides the rows: the video table source and the attributes."""

    manifest_records: list  # data_manifests.VideoRecord, in manifest order
    attribute_names: list[str]
    attrs: dict  # identity, config, provenance, dataset (failures are derived here)


def write_store(path: str | Path, contents: StoreContents, staging: StagingArea, n_parts: int) -> None:
    """Consolidate the staged parts into the final arrays (the store's single writer), then mark it complete.

    Streams one part at a time, so memory is bounded by a part plus one shard. Safe to repeat after a
    kill: every array is rewritten whole and the attributes (``state``: complete) are written last.
    """
    summaries = [staging.load_summary(index) for index in range(n_parts)]
    video_ids = [v for s in summaries for v in s["video_ids"].tolist()]
    records = contents.manifest_records
    if video_ids != [r.video_id for r in records]:
        raise RuntimeError("staged parts do not match the manifest order")
    clip_counts = np.concatenate([s["clip_counts"] for s in summaries]) if summaries else np.zeros(0, np.int64)
    static_counts = np.concatenate([s["static_counts"] for s in summaries]) if summaries else np.zeros(0, np.int64)
    n_clips, n_static, dim, dtype = int(clip_counts.sum()), int(static_counts.sum()), staging.dim, staging.dtype

    group = Location(path).open_group("a")
    # A finished store being extended must not read as complete while its arrays are rewritten.
    group.attrs.put({"featstore": {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "state": "extracting"}})
    writers = {
        "clips/embeddings": _RowWriter(_create(group, "clips/embeddings", (n_clips, dim), dtype, sharded=True)),
        "clips/frames": _RowWriter(_create(group, "clips/frames", (n_clips, 2), np.int64)),
        "clips/times": _RowWriter(_create(group, "clips/times", (n_clips, 2), np.float64)),
        "static/embeddings": _RowWriter(_create(group, "static/embeddings", (n_static, dim), dtype, sharded=True)),
        "static/frames": _RowWriter(_create(group, "static/frames", (n_static,), np.int64)),
    }
    for index in range(n_parts):
        for result in staging.load_part(index).results:
            if result.failed:
                continue
            writers["clips/embeddings"].append(result.clip_embeddings)
            writers["clips/frames"].append(result.clip_frames)
            writers["clips/times"].append(result.clip_times)
            writers["static/embeddings"].append(result.static_embeddings)
            writers["static/frames"].append(result.static_frames)
    for writer in writers.values():
        writer.close()
    _write_full(group, "clips/offsets", np.concatenate([[0], np.cumsum(clip_counts)]).astype(np.int64))
    _write_full(group, "static/offsets", np.concatenate([[0], np.cumsum(static_counts)]).astype(np.int64))

    def column(key):
        return np.concatenate([s[key] for s in summaries]) if summaries else np.zeros(0)

    reasons = column("failed_reasons").astype(str).tolist()
    _write_video_table(
        group, records, column("decoders").astype(str), column("fps"), column("duration"), column("n_frames"),
        len(contents.attribute_names),
    )
    failures = [
        {"video_id": rec.video_id, "path": rec.path, "reason": reason}
        for rec, reason in zip(records, reasons)
        if reason
    ]
    attrs = dict(contents.attrs)
    attrs["failures"] = failures
    attrs["featstore"] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "state": "complete",
        "finalized": utc_now(),
        "every_chunk_written": True,
    }
    # Attributes go last: the store reads as complete only once every array is in place.
    group.attrs.put(attrs)


def _write_full(group: zarr.Group, name: str, values: np.ndarray) -> None:
    if values.dtype.kind in "UO":
        array = _create(group, name, values.shape, str)
    else:
        array = _create(group, name, values.shape, values.dtype, rows_per_chunk=max(1, min(len(values), 1 << 16)))
    if values.size:
        array[...] = values


def _write_video_table(group, records, decoders, fps, duration, n_frames, n_attrs: int) -> None:
    def text(values):
        return np.array(values, dtype=object).astype(str)

    attributes = np.full((len(records), n_attrs), -1, dtype=np.int8)
    segments, segment_counts = [], []
    for i, record in enumerate(records):
        if record.attributes is not None:
            attributes[i] = record.attributes
        segments.extend(s.to_json() for s in record.segments)
        segment_counts.append(len(record.segments))
    columns = {
        "video_id": text([r.video_id for r in records]),
        "path": text([r.path for r in records]),
        "split": text([r.split for r in records]),
        "subject": text([r.subject or "" for r in records]),
        "decoder": text(decoders),
        "label": np.array([-1 if r.label is None else r.label for r in records], dtype=np.int64),
        "fps": np.asarray(fps, dtype=np.float64),
        "duration": np.asarray(duration, dtype=np.float64),
        "n_frames": np.asarray(n_frames, dtype=np.int64),
        "segments": np.array(segments, dtype=np.float64).reshape(-1, 3),
        "segment_offsets": np.concatenate([[0], np.cumsum(segment_counts)]).astype(np.int64),
    }
    for name, values in columns.items():
        _write_full(group, f"videos/{name}", values)
    array = _create(group, "videos/attributes", attributes.shape, np.int8, rows_per_chunk=max(1, len(records)))
    if attributes.size:
        array[...] = attributes


def write_transformed_store(source: Store, out: Path, transform, attrs_update: dict, block_rows: int | None = None,
                            drop_private_labels: bool = False) -> None:
    """Write a copy of ``source`` whose clip and static embeddings are ``transform(rows)``.

    Streams whole shards: memory is bounded by one block whatever the store's size. Every other
    array is copied unchanged; ``attrs_update`` is merged into the attributes (state goes last).
    The source embeddings are not copied: only transformed rows reach ``out``. With
    ``drop_private_labels`` the ``PRIVATE_COLUMNS`` are written as unknown (attributes -1, subject and
    path "") and the failures' source paths as "": ``out`` holds no private label and no source path.
    """
    out = Path(out)
    group = zarr.open_group(str(out), mode="w")
    group.attrs.put({"featstore": {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "state": "extracting"}})
    for kind in ("clips", "static"):
        rows = source.group[f"{kind}/embeddings"]
        writer = None
        for start, block in source.iter_blocks(rows):
            transformed = np.asarray(transform(block))
            if transformed.shape[0] != block.shape[0]:
                raise ValueError("the transform must keep one output row per input row")
            if writer is None:
                array = _create(group, f"{kind}/embeddings", (rows.shape[0], transformed.shape[1]), rows.dtype, sharded=True)
                writer = _RowWriter(array)
            writer.append(transformed.astype(rows.dtype))
        if writer is None:  # an empty array: keep its shape
            writer = _RowWriter(_create(group, f"{kind}/embeddings", rows.shape, rows.dtype, sharded=True))
        writer.close()
    copied = ["clips/frames", "clips/times", "clips/offsets", "static/frames", "static/offsets",
              "videos/segments", "videos/segment_offsets", *(f"videos/{c}" for c in TABLE_COLUMNS)]
    private = {f"videos/{column}" for column in PRIVATE_COLUMNS} if drop_private_labels else set()
    for name in copied:
        values = source.array(name)
        if name in private:
            values = np.full_like(values, -1) if name == "videos/attributes" else np.full(values.shape, "", dtype=str)
        if name == "videos/attributes":
            array = _create(group, name, values.shape, np.int8, rows_per_chunk=max(1, len(values)))
            if values.size:
                array[...] = values
        else:
            _write_full(group, name, values)
    attrs = {key: value for key, value in source.attrs.items() if key != "featstore"}
    if drop_private_labels:
        attrs["failures"] = [dict(failure, path="") for failure in source.failures]
    attrs.update(attrs_update)
    attrs["featstore"] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "state": "complete",
                          "finalized": utc_now(), "every_chunk_written": True}
    group.attrs.put(attrs)
