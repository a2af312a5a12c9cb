"""Writing a store: ``write_store`` consolidates an extraction's staged parts into the arrays (finalize);
``write_transformed_store`` writes a copy whose embeddings are transformed (an anonymized export). Both
write every chunk with a crc32c and mark the store complete last."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from featstore.store.layout import (
    CHUNKS_PER_SHARD,
    CLIP_EMBEDDINGS,
    CLIP_FRAMES,
    CLIP_OFFSETS,
    CLIP_TIMES,
    EMBEDDINGS,
    FORMAT_ATTR,
    FORMAT_NAME,
    FORMAT_VERSION,
    PRIVATE_COLUMNS,
    ROW_KINDS,
    STATIC_EMBEDDINGS,
    STATIC_FRAMES,
    STATIC_OFFSETS,
    TABLE_ARRAYS,
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
    table_array,
    utc_now,
)
from featstore.store.location import Location
from featstore.store.reader import Store
from featstore.store.staging import StagingArea


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


def _format_being_written() -> dict:
    """The format attribute while arrays are written: the store does not read as complete meanwhile."""
    return {FORMAT_ATTR: {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "state": "extracting"}}


def _format_complete() -> dict:
    """The format attribute written last, once every array is in place."""
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "state": "complete", "finalized": utc_now(),
            "every_chunk_written": True}


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
    group.attrs.put(_format_being_written())
    writers = {
        CLIP_EMBEDDINGS: _RowWriter(_create(group, CLIP_EMBEDDINGS, (n_clips, dim), dtype, sharded=True)),
        CLIP_FRAMES: _RowWriter(_create(group, CLIP_FRAMES, (n_clips, 2), np.int64)),
        CLIP_TIMES: _RowWriter(_create(group, CLIP_TIMES, (n_clips, 2), np.float64)),
        STATIC_EMBEDDINGS: _RowWriter(_create(group, STATIC_EMBEDDINGS, (n_static, dim), dtype, sharded=True)),
        STATIC_FRAMES: _RowWriter(_create(group, STATIC_FRAMES, (n_static,), np.int64)),
    }
    for index in range(n_parts):
        for result in staging.load_part(index).results:
            if result.failed:
                continue
            writers[CLIP_EMBEDDINGS].append(result.clip_embeddings)
            writers[CLIP_FRAMES].append(result.clip_frames)
            writers[CLIP_TIMES].append(result.clip_times)
            writers[STATIC_EMBEDDINGS].append(result.static_embeddings)
            writers[STATIC_FRAMES].append(result.static_frames)
    for writer in writers.values():
        writer.close()
    _write_full(group, CLIP_OFFSETS, np.concatenate([[0], np.cumsum(clip_counts)]).astype(np.int64))
    _write_full(group, STATIC_OFFSETS, np.concatenate([[0], np.cumsum(static_counts)]).astype(np.int64))

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
    attrs[FORMAT_ATTR] = _format_complete()
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
        VIDEO_IDS: text([r.video_id for r in records]),
        VIDEO_PATHS: text([r.path for r in records]),
        VIDEO_SPLITS: text([r.split for r in records]),
        VIDEO_SUBJECTS: text([r.subject or "" for r in records]),
        VIDEO_DECODERS: text(decoders),
        VIDEO_LABELS: np.array([-1 if r.label is None else r.label for r in records], dtype=np.int64),
        VIDEO_FPS: np.asarray(fps, dtype=np.float64),
        VIDEO_DURATIONS: np.asarray(duration, dtype=np.float64),
        VIDEO_N_FRAMES: np.asarray(n_frames, dtype=np.int64),
        VIDEO_SEGMENTS: np.array(segments, dtype=np.float64).reshape(-1, 3),
        VIDEO_SEGMENT_OFFSETS: np.concatenate([[0], np.cumsum(segment_counts)]).astype(np.int64),
    }
    for name, values in columns.items():
        _write_full(group, name, values)
    array = _create(group, VIDEO_ATTRIBUTES, attributes.shape, np.int8, rows_per_chunk=max(1, len(records)))
    if attributes.size:
        array[...] = attributes


def write_transformed_store(source: Store, out: Path, transform, attrs_update: dict,
                            drop_private_labels: bool = False,
                            on_rows: Callable[[int], None] | None = None) -> None:
    """Write a copy of ``source`` whose clip and static embeddings are ``transform(rows)``.

    Streams whole shards: memory is bounded by one block whatever the store's size. Every other
    array is copied unchanged; ``attrs_update`` is merged into the attributes (state goes last).
    The source embeddings are not copied: only transformed rows reach ``out``. With
    ``drop_private_labels`` the ``PRIVATE_COLUMNS`` are written as unknown (attributes -1, subject and
    path "") and the failures' source paths as "": ``out`` holds no private label and no source path.
    ``on_rows(n)`` is called after each block's ``n`` rows are written (a progress bar).
    """
    out = Path(out)
    group = zarr.open_group(str(out), mode="w")
    group.attrs.put(_format_being_written())
    for kind in ROW_KINDS:
        rows = source.embeddings(kind)
        writer = None
        for start, block in source.iter_blocks(rows):
            transformed = np.asarray(transform(block))
            if transformed.shape[0] != block.shape[0]:
                raise ValueError("the transform must keep one output row per input row")
            if writer is None:
                array = _create(group, EMBEDDINGS[kind], (rows.shape[0], transformed.shape[1]), rows.dtype, sharded=True)
                writer = _RowWriter(array)
            writer.append(transformed.astype(rows.dtype))
            if on_rows is not None:
                on_rows(block.shape[0])
        if writer is None:  # an empty array: keep its shape
            writer = _RowWriter(_create(group, EMBEDDINGS[kind], rows.shape, rows.dtype, sharded=True))
        writer.close()
    copied = [CLIP_FRAMES, CLIP_TIMES, CLIP_OFFSETS, STATIC_FRAMES, STATIC_OFFSETS,
              VIDEO_SEGMENTS, VIDEO_SEGMENT_OFFSETS, *TABLE_ARRAYS]
    private = {table_array(column) for column in PRIVATE_COLUMNS} if drop_private_labels else set()
    for name in copied:
        values = source.array(name)
        if name in private:
            values = np.full_like(values, -1) if name == VIDEO_ATTRIBUTES else np.full(values.shape, "", dtype=str)
        if name == VIDEO_ATTRIBUTES:
            array = _create(group, name, values.shape, np.int8, rows_per_chunk=max(1, len(values)))
            if values.size:
                array[...] = values
        else:
            _write_full(group, name, values)
    attrs = {key: value for key, value in source.attrs.items() if key != FORMAT_ATTR}
    if drop_private_labels:
        attrs["failures"] = [dict(failure, path="") for failure in source.failures]
    attrs.update(attrs_update)
    attrs[FORMAT_ATTR] = _format_complete()
    group.attrs.put(attrs)
