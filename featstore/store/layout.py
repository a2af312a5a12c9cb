"""The on-disk layout of a feature store: its format version and the name of every array, defined once.

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

Code outside this package names an array by its constant here (``CLIP_TIMES``, not "clips/times").
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

FORMAT_NAME = "featstore"
FORMAT_VERSION = 1
FORMAT_ATTR = "featstore"  # the attribute holding {format, format_version, state, created, finalized}
ROOT_METADATA = "zarr.json"  # the store group's metadata and attributes: written last, it marks a copied store whole
STAGING_DIR = "_staging"
CHUNK_BYTES = 1 << 20
CHUNKS_PER_SHARD = 16
STORE_DTYPES = ("float16", "float32")

# ---------------------------------------------------------------------- row arrays (one row per clip)
CLIP_EMBEDDINGS = "clips/embeddings"
CLIP_FRAMES = "clips/frames"
CLIP_TIMES = "clips/times"
CLIP_OFFSETS = "clips/offsets"
STATIC_EMBEDDINGS = "static/embeddings"
STATIC_FRAMES = "static/frames"
STATIC_OFFSETS = "static/offsets"
ROW_KINDS = ("clips", "static")
# The arrays of each row kind, by kind
EMBEDDINGS = {"clips": CLIP_EMBEDDINGS, "static": STATIC_EMBEDDINGS}
FRAMES = {"clips": CLIP_FRAMES, "static": STATIC_FRAMES}
OFFSETS = {"clips": CLIP_OFFSETS, "static": STATIC_OFFSETS}
ROW_ARRAYS = (CLIP_EMBEDDINGS, CLIP_FRAMES, CLIP_TIMES, STATIC_EMBEDDINGS, STATIC_FRAMES)

# ---------------------------------------------------------------------- the video table (one row per video)
VIDEO_IDS = "videos/video_id"
VIDEO_PATHS = "videos/path"
VIDEO_SPLITS = "videos/split"
VIDEO_SUBJECTS = "videos/subject"
VIDEO_DECODERS = "videos/decoder"
VIDEO_LABELS = "videos/label"
VIDEO_ATTRIBUTES = "videos/attributes"
VIDEO_FPS = "videos/fps"
VIDEO_DURATIONS = "videos/duration"
VIDEO_N_FRAMES = "videos/n_frames"
TABLE_ARRAYS = (VIDEO_IDS, VIDEO_PATHS, VIDEO_SPLITS, VIDEO_SUBJECTS, VIDEO_DECODERS, VIDEO_LABELS, VIDEO_ATTRIBUTES,
                VIDEO_FPS, VIDEO_DURATIONS, VIDEO_N_FRAMES)
TABLE_COLUMNS = tuple(name.removeprefix("videos/") for name in TABLE_ARRAYS)  # the fields of ``VideoTable``
TEXT_ARRAYS = (VIDEO_IDS, VIDEO_PATHS, VIDEO_SPLITS, VIDEO_SUBJECTS, VIDEO_DECODERS)  # the str columns
VIDEO_SEGMENTS = "videos/segments"
VIDEO_SEGMENT_OFFSETS = "videos/segment_offsets"

# Every array of a store (the order ``verify`` checks them in)
REQUIRED_ARRAYS = (CLIP_EMBEDDINGS, CLIP_FRAMES, CLIP_TIMES, CLIP_OFFSETS, STATIC_EMBEDDINGS, STATIC_FRAMES,
                   STATIC_OFFSETS, VIDEO_SEGMENTS, VIDEO_SEGMENT_OFFSETS, *TABLE_ARRAYS)

# The private columns an anonymized export drops by default (``write_transformed_store``): they keep their
# shape and hold "unknown" values, so readers and ``verify`` work unchanged; protocols join them from the
# raw store by video id. The export records "dropped" or "kept" as provenance.anonymizer.private_labels.
PRIVATE_COLUMNS = ("attributes", "subject", "path")
PRIVATE_LABELS_DROPPED, PRIVATE_LABELS_KEPT = "dropped", "kept"
# what info, exports and results show of an anonymized store's ``provenance.anonymizer``
ANONYMIZER_SHOWN = ("run", "aam_sha256", "epoch", "label", "source_store", "private_labels")


def table_array(column: str) -> str:
    """The array of a ``videos/`` table column."""
    return f"videos/{column}"


def dataset_header(attrs: dict) -> dict:
    """The manifest header recorded in a store's attributes (name, task, class_names, attribute_names)."""
    return attrs.get("dataset", {}).get("header", {})


def utc_now() -> str:
    """The form of every timestamp a store records."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def chunk_rows(dim: int, itemsize: int) -> int:
    """Rows per chunk: the power of two giving at least ~1 MB per chunk."""
    rows = max(1, CHUNK_BYTES // max(1, dim * itemsize))
    return 1 << math.ceil(math.log2(rows)) if rows > 1 else 1
