"""The feature store: one package owns its on-disk Zarr v3 layout and every read and write of it.

- ``layout``: the format version and the name of every array (``CLIP_TIMES``, ``VIDEO_LABELS``, ...), the
  table columns, the private columns; the layout itself is described there.
- ``location``: where a store lives (a local folder or an fsspec URL) and reading it with every chunk checked.
- ``lock``: the single-writer lock beside a store.
- ``staging``: the staged parts of an extraction in progress.
- ``reader``: ``Store``, reading arrays, rows and the recorded metadata as typed properties.
- ``writers``: ``write_store`` (finalize) and ``write_transformed_store`` (an anonymized export).
"""

from featstore.store.layout import (
    CLIP_EMBEDDINGS,
    CLIP_FRAMES,
    CLIP_OFFSETS,
    CLIP_TIMES,
    EMBEDDINGS,
    FORMAT_VERSION,
    FRAMES,
    OFFSETS,
    PRIVATE_COLUMNS,
    PRIVATE_LABELS_DROPPED,
    PRIVATE_LABELS_KEPT,
    REQUIRED_ARRAYS,
    ROOT_METADATA,
    ROW_ARRAYS,
    ROW_KINDS,
    STAGING_DIR,
    STATIC_EMBEDDINGS,
    STATIC_FRAMES,
    STATIC_OFFSETS,
    STORE_DTYPES,
    TABLE_ARRAYS,
    TABLE_COLUMNS,
    TEXT_ARRAYS,
    VIDEO_ATTRIBUTES,
    VIDEO_DECODERS,
    VIDEO_DURATIONS,
    VIDEO_FPS,
    VIDEO_IDS,
    VIDEO_LABELS,
    VIDEO_N_FRAMES,
    VIDEO_PATHS,
    VIDEO_SEGMENT_OFFSETS,
    VIDEO_SEGMENTS,
    VIDEO_SPLITS,
    VIDEO_SUBJECTS,
    chunk_rows,
    dataset_header,
    utc_now,
)
from featstore.store.location import DamagedStoreError, Location
from featstore.store.lock import LOCK_SUFFIX, StoreLock, StoreLockedError
from featstore.store.reader import Store, VideoTable, first_nonfinite_row
from featstore.store.staging import (
    DamagedPartError,
    Part,
    StagingArea,
    VideoResult,
    has_staged_run,
    remove_partial_writes,
)
from featstore.store.writers import StoreContents, write_store, write_transformed_store

__all__ = [
    "CLIP_EMBEDDINGS", "CLIP_FRAMES", "CLIP_OFFSETS", "CLIP_TIMES", "EMBEDDINGS", "FORMAT_VERSION", "FRAMES", "OFFSETS",
    "PRIVATE_COLUMNS", "PRIVATE_LABELS_DROPPED", "PRIVATE_LABELS_KEPT", "REQUIRED_ARRAYS", "ROOT_METADATA", "ROW_ARRAYS",
    "ROW_KINDS", "STAGING_DIR", "STATIC_EMBEDDINGS", "STATIC_FRAMES", "STATIC_OFFSETS", "STORE_DTYPES", "TABLE_ARRAYS",
    "TABLE_COLUMNS", "TEXT_ARRAYS", "VIDEO_ATTRIBUTES", "VIDEO_DECODERS", "VIDEO_DURATIONS", "VIDEO_FPS", "VIDEO_IDS",
    "VIDEO_LABELS", "VIDEO_N_FRAMES", "VIDEO_PATHS", "VIDEO_SEGMENT_OFFSETS", "VIDEO_SEGMENTS", "VIDEO_SPLITS",
    "VIDEO_SUBJECTS", "chunk_rows", "dataset_header", "utc_now",
    "DamagedStoreError", "Location",
    "LOCK_SUFFIX", "StoreLock", "StoreLockedError",
    "Store", "VideoTable", "first_nonfinite_row",
    "DamagedPartError", "Part", "StagingArea", "VideoResult", "has_staged_run", "remove_partial_writes",
    "StoreContents", "write_store", "write_transformed_store",
]
