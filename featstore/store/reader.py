"""Reading a store: ``Store.open`` checks its format and state; ``Store`` gives its arrays, rows, video table and
recorded metadata (the dataset header, sampling, provenance) as typed properties."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from data_manifests.errors import FeatstoreError
from featstore.sampling import evenly_spaced_positions
from featstore.store.layout import (
    ANONYMIZER_SHOWN,
    CLIP_EMBEDDINGS,
    CLIP_OFFSETS,
    EMBEDDINGS,
    FORMAT_ATTR,
    FORMAT_NAME,
    FORMAT_VERSION,
    PRIVATE_LABELS_DROPPED,
    ROOT_METADATA,
    ROW_KINDS,
    STATIC_EMBEDDINGS,
    STATIC_OFFSETS,
    TABLE_ARRAYS,
    TABLE_COLUMNS,
    VIDEO_IDS,
    VIDEO_SEGMENT_OFFSETS,
    VIDEO_SEGMENTS,
    VIDEO_SPLITS,
    dataset_header,
)
from featstore.store.location import Location, is_url
from featstore.store.staging import has_staged_run


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
        return has_staged_run(location) or _read_format(location) is not None

    @classmethod
    def open(cls, path: str | Path, require_complete: bool = True) -> Store:
        location = Location(path)
        if not location.exists():
            raise FeatstoreError(f"no store at {location}")
        fmt = _read_format(location)
        if fmt is None:
            if has_staged_run(location):
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
    def format_record(self) -> dict:
        """{format, format_version, state, finalized, every_chunk_written}: what the store is and how far written."""
        return self.attrs.get(FORMAT_ATTR, {})

    @property
    def finalized(self) -> str | None:
        """When the store was completed (None while unfinished)."""
        return self.format_record.get("finalized")

    @property
    def header(self) -> dict:
        """The header of the manifest the store was extracted from ({} when the store records none)."""
        return dataset_header(self.attrs)

    @property
    def dataset_name(self) -> str | None:
        return self.header.get("name")

    @property
    def task(self) -> str | None:
        """The dataset's task (``data_manifests.schema.TASKS``); None when the store records no header."""
        return self.header.get("task")

    @property
    def class_names(self) -> list[str]:
        return list(self.header.get("class_names", []))

    @property
    def attribute_names(self) -> list[str]:
        return list(self.header.get("attribute_names", []))

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the manifest's content the store was extracted from."""
        return self.dataset.get("fingerprint")

    @property
    def sampling(self) -> dict:
        """The extraction's sampling settings (clip_len, stride, fps, ...); {} when the store records none."""
        return self.config.get("sampling", {}) or {}

    @property
    def anonymizer(self) -> dict:
        """What an anonymized export records of its anonymizer (run, aam_sha256, private_labels); {} for a raw store."""
        return self.provenance.get("anonymizer", {})

    def anonymizer_record(self, keys: tuple[str, ...] = ANONYMIZER_SHOWN) -> dict | None:
        """The anonymizer's fields ``keys`` (what info, exports and results show); None for a raw store."""
        return {key: self.anonymizer.get(key) for key in keys} if self.anonymizer else None

    @property
    def private_labels_dropped(self) -> bool:
        """An export written without its private columns (``PRIVATE_COLUMNS`` hold -1 and "")."""
        return self.anonymizer.get("private_labels") == PRIVATE_LABELS_DROPPED

    @property
    def dim(self) -> int:
        return int(self.clip_embeddings.shape[1])

    @property
    def n_videos(self) -> int:
        return int(self.group[VIDEO_IDS].shape[0])

    @property
    def clip_embeddings(self) -> zarr.Array:
        return self.group[CLIP_EMBEDDINGS]

    @property
    def static_embeddings(self) -> zarr.Array:
        return self.group[STATIC_EMBEDDINGS]

    def embeddings(self, kind: str) -> zarr.Array:
        """The ``clips`` or ``static`` embeddings array."""
        return self.group[EMBEDDINGS[kind]]

    def array(self, name: str) -> np.ndarray:
        return self.group[name][...]

    def clip_offsets(self) -> np.ndarray:
        return self.array(CLIP_OFFSETS)

    def static_offsets(self) -> np.ndarray:
        return self.array(STATIC_OFFSETS)

    def videos(self) -> VideoTable:
        seg = self.array(VIDEO_SEGMENTS)
        seg_off = self.array(VIDEO_SEGMENT_OFFSETS)
        columns = {column: self.array(name) for column, name in zip(TABLE_COLUMNS, TABLE_ARRAYS)}
        segments = [seg[seg_off[v] : seg_off[v + 1]] for v in range(len(seg_off) - 1)]
        return VideoTable(segments=segments, **columns)

    # ------------------------------------------------------------------ row access
    def video_clips(self, video_index: int) -> np.ndarray:
        offsets = self.group[CLIP_OFFSETS]
        start, end = (int(x) for x in offsets[video_index : video_index + 2])
        return self.clip_embeddings[start:end]

    def split_indices(self, split: str) -> np.ndarray:
        """Indices of the videos of a split that have rows (failed videos are left out)."""
        table_split = self.array(VIDEO_SPLITS)
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
        if kind not in ROW_KINDS:
            raise ValueError(f"kind must be 'clips' or 'static', got {kind!r}")
        values = self.embeddings(kind)[...].astype(np.float32)
        self.refuse_nonfinite(kind, values)
        return values

    def refuse_nonfinite(self, kind: str, values: np.ndarray) -> None:
        """NaN or Inf rows would train or score as numbers: a one-line error naming the first."""
        bad_row = first_nonfinite_row(values)
        if bad_row is not None:
            raise FeatstoreError(f"{self.path}: {EMBEDDINGS[kind]} row {bad_row} holds NaN or Inf (a damaged store; "
                                 "`featstore verify` lists every problem)")

    def video_static(self, video_index: int) -> np.ndarray:
        offsets = self.group[STATIC_OFFSETS]
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
    if not location.is_file(ROOT_METADATA):
        return None
    try:
        attrs = json.loads(location.read_bytes(ROOT_METADATA)).get("attributes", {})
    except (json.JSONDecodeError, OSError):
        return None
    fmt = attrs.get(FORMAT_ATTR)
    return fmt if isinstance(fmt, dict) and fmt.get("format") == FORMAT_NAME else None


def first_nonfinite_row(values: np.ndarray) -> int | None:
    """The first row of ``values`` holding NaN or Inf, or None."""
    if len(values) == 0:
        return None
    bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=np.float32)).reshape(len(values), -1).all(axis=1))
    return int(bad[0]) if len(bad) else None
