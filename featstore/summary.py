"""Reading a store for people: a summary (``info``) and an integrity check (``verify``)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import google_crc32c
import numpy as np
import zarr

from data_manifests.errors import FeatstoreError
from featstore.exporters import interrupted_writer, staging_target
from featstore.store import (
    CLIP_EMBEDDINGS,
    CLIP_FRAMES,
    CLIP_OFFSETS,
    CLIP_TIMES,
    EMBEDDINGS,
    FORMAT_VERSION,
    FRAMES,
    OFFSETS,
    REQUIRED_ARRAYS,
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
    VIDEO_SEGMENT_OFFSETS,
    VIDEO_SEGMENTS,
    VIDEO_SUBJECTS,
    Location,
    Store,
    dataset_header,
)


def open_for_info(path: str | Path) -> Store:
    """``Store.open``, naming what an interrupted export or import left for what it is (``Store.open``
    calls every unfinished store an unfinished extraction)."""
    try:
        return Store.open(path)
    except FeatstoreError:
        writer = interrupted_writer(path)
        if writer is None:
            raise
    staged = staging_target(Path(path))
    into = f" into {staged[0]}" if staged else ""
    raise FeatstoreError(f"{path} is the partial output of an interrupted `{writer}`{into}, not a store: "
                         "rerun that command")


def summarize(store: Store) -> dict:
    """The facts ``featstore info`` shows, as plain data."""
    table = store.videos()
    clip_off, static_off = store.clip_offsets(), store.static_offsets()
    prov = store.provenance
    failed_ids = {f["video_id"] for f in store.failures}
    splits = Counter(table.split.tolist())
    return {
        "path": str(store.path),
        "format_version": store.format_record["format_version"],
        "model": prov.get("encoder"),
        "weights": prov.get("weights"),
        "weights_sha256": prov.get("weights_sha256"),
        "weights_hub_model": prov.get("weights_hub_model"),  # {repo_id, revision, commit} when --weights named one
        "pixel_transform": store.identity.get("pixel_transform"),  # absent: none
        "dim": store.dim,
        "dtype": str(store.clip_embeddings.dtype),
        "dataset": store.dataset_name,
        "task": store.task,
        "n_classes": len(store.class_names),
        "attributes": store.attribute_names,
        "n_videos": len(table),
        "n_failed": len(failed_ids),
        "n_clips": int(clip_off[-1]),
        "n_static": int(static_off[-1]),
        "clips_per_video": _spread(np.diff(clip_off)),
        "splits": dict(sorted(splits.items())),
        "sampling": prov.get("sampling"),
        "preprocess": prov.get("preprocess"),
        "device": prov.get("device"),
        "precision": prov.get("precision"),
        "decoders": dict(Counter(d for d in table.decoder.tolist() if d)),
        "versions": prov.get("versions"),
        "finished": store.finalized,
        "failures": store.failures,
        "private_labels": store.anonymizer.get("private_labels"),  # an export's: "dropped" or "kept"
        "anonymizer": store.anonymizer_record(),  # None for a raw store
    }


def _spread(counts: np.ndarray) -> str:
    if len(counts) == 0:
        return "-"
    return f"min {counts.min()}, mean {counts.mean():.1f}, max {counts.max()}"


# Zarr leaves a chunk whose values all equal the fill value (0, "") unwritten, so an absent chunk of these
# arrays can be genuine content: offsets of a store without rows or segments, the frame of every image,
# attributes, subjects and decoders all unknown/empty, the columns of videos that all failed. Their
# values are checked instead (offsets against row counts, spans against n_frames). Every other array
# (the embeddings above all) never holds an all-zero chunk, so an absent chunk there is damage.
MAY_BE_ALL_FILL = (CLIP_OFFSETS, STATIC_OFFSETS, VIDEO_SEGMENT_OFFSETS, STATIC_FRAMES, VIDEO_ATTRIBUTES, VIDEO_SUBJECTS,
                   VIDEO_DECODERS, VIDEO_FPS, VIDEO_DURATIONS, VIDEO_N_FRAMES, VIDEO_LABELS)
SHARD_INDEX_ENTRY_BYTES = 16  # (offset, nbytes) as two little-endian uint64
CRC32C_BYTES = 4
EMPTY_INDEX_ENTRY = 2**64 - 1


def verify_store(path: str | Path, quick: bool = False) -> list[str]:
    """Every integrity problem found, as one line each (empty list = the store is sound).

    Checks: format and state; array presence, every chunk present (and every chunk inside each shard),
    shapes; offsets starting at 0, non-decreasing and ending at the row count; one table row per
    manifest video, each done or recorded as failed; clip and static rows of each video in time order
    and inside the video; labels and attributes in range of the class and attribute names; the recorded
    identity (embedding size, dtype, model, dataset) matching the arrays and the provenance; no NaN/Inf
    embeddings. ``quick`` skips the one check that reads every embedding (finiteness).
    """
    store = Store.open(path, require_complete=False)
    problems: list[str] = []
    fmt = store.format_record
    if fmt.get("state") != "complete":
        problems.append(f"store state is {fmt.get('state')!r}, not 'complete'")
    if fmt.get("format_version") != FORMAT_VERSION:
        problems.append(f"format version {fmt.get('format_version')} != {FORMAT_VERSION}")
    missing = [name for name in REQUIRED_ARRAYS if name not in store.group]
    if missing:
        return problems + [f"missing arrays: {', '.join(missing)}"]
    location = Location(store.path)
    every_chunk_written = bool(fmt.get("every_chunk_written"))
    for name in REQUIRED_ARRAYS:
        problems += chunk_problems(location, name, store.group[name], every_chunk_written)
    if problems:  # an absent or damaged chunk reads as zeros or fails: the value checks would only echo it
        return problems
    arrays = {}
    for name in REQUIRED_ARRAYS:
        if name not in EMBEDDINGS.values():
            try:
                arrays[name] = store.array(name)
            except (ValueError, RuntimeError) as exc:  # a chunk that fails its checksum or does not decompress
                return [f"cannot read {name}: {exc}"]
    shapes = {kind: store.embeddings(kind).shape for kind in ROW_KINDS}
    problems += table_problems(arrays, shapes, store.header, store.failures)
    problems += identity_problems(store.attrs, shapes["clips"][1], str(store.clip_embeddings.dtype))
    manifest_n = store.dataset.get("n_videos")
    if manifest_n is not None and manifest_n != len(arrays[VIDEO_IDS]):
        problems.append(f"the manifest had {manifest_n} videos, the table has {len(arrays[VIDEO_IDS])}")
    if not quick:
        for kind in ROW_KINDS:
            problem = nonfinite_problem(EMBEDDINGS[kind], store.embeddings(kind))
            if problem:
                problems.append(problem)
    return problems


def chunk_problems(location: Location, name: str, array: zarr.Array, every_chunk_written: bool = True) -> list[str]:
    """Absent chunks (the chunk keys the shape and chunk grid imply, looked up in the store's files) and,
    for a sharded array, absent inner chunks or a damaged shard index. A store that does not record
    ``every_chunk_written`` (written before it was) may lack the all-fill chunks of ``MAY_BE_ALL_FILL``."""
    outer = array.shards or array.chunks
    grid = [range(math.ceil(size / step)) for size, step in zip(array.shape, outer)]
    absent = []
    for coords in itertools.product(*grid):
        key = f"{name}/{array.metadata.encode_chunk_key(coords)}"
        if not location.is_file(key):
            absent.append(key)
        elif array.shards:
            problem = shard_index_problem(location, key, array, coords[0])
            if problem:
                return [problem]
    if not absent or (not every_chunk_written and name in MAY_BE_ALL_FILL):
        return []
    return [f"{name}: {len(absent)} of {math.prod(len(r) for r in grid)} chunks are missing (first {absent[0]})"]


def shard_index_problem(location: Location, key: str, array: zarr.Array, shard_row: int) -> str | None:
    """A shard whose index fails its checksum, points outside the file, or lacks an inner chunk that holds
    rows. The index is the shard file's tail: one (offset, nbytes) per inner chunk, then its crc32c."""
    inner_rows, shard_rows = array.chunks[0], array.shards[0]
    per_shard = math.prod(s // c for s, c in zip(array.shards, array.chunks))
    index_bytes = per_shard * SHARD_INDEX_ENTRY_BYTES
    with location.open_read(key) as handle:
        size = handle.seek(0, 2)
        if size < index_bytes + CRC32C_BYTES:
            return f"{key}: the shard is {size} bytes, too short for its index"
        handle.seek(size - index_bytes - CRC32C_BYTES)
        tail = handle.read()
    index, stored = tail[:index_bytes], tail[index_bytes:]
    if google_crc32c.value(index).to_bytes(CRC32C_BYTES, "little") != stored:
        return f"{key}: the shard index is damaged (checksum mismatch)"
    entries = np.frombuffer(index, dtype="<u8").reshape(per_shard, 2)
    rows_here = min(shard_rows, array.shape[0] - shard_row * shard_rows)
    needed = math.ceil(rows_here / inner_rows)
    for inner, (offset, nbytes) in enumerate(entries[:needed]):
        if offset == EMPTY_INDEX_ENTRY:
            return f"{key}: inner chunk {inner} is missing from the shard"
        if offset + nbytes > size - index_bytes - CRC32C_BYTES:
            return f"{key}: the shard index points past the end of the file"
    return None


def offsets_problems(name: str, offsets: np.ndarray, n_videos: int, n_rows: int) -> list[str]:
    """``name`` (V + 1 entries) must start at 0, never decrease, and end at the row count."""
    if len(offsets) != n_videos + 1:
        return [f"{name} has {len(offsets)} entries, expected {n_videos + 1}"]
    if n_videos + 1 and offsets[0] != 0:
        return [f"{name} starts at {offsets[0]}, not 0"]
    if np.any(np.diff(offsets) < 0):
        return [f"{name} decreases at video {int(np.flatnonzero(np.diff(offsets) < 0)[0])}"]
    if offsets[-1] != n_rows:
        return [f"{name} ends at {offsets[-1]} but there are {n_rows} rows"]
    return []


def table_problems(arrays: dict[str, np.ndarray], shapes: dict[str, tuple], header: dict,
                   failures: list[dict]) -> list[str]:
    """The value checks on the in-memory arrays (every required array but the embeddings, by name), shared
    by ``verify`` and ``import``: shapes, offsets, failures, per-video rows, labels, attributes."""
    ids = [str(video_id) for video_id in arrays[VIDEO_IDS].tolist()]
    n_videos = len(ids)
    problems = [f"{name} has {arrays[name].shape[0]} rows, expected {n_videos}"
                for name in TABLE_ARRAYS if arrays[name].shape[0] != n_videos]
    for kind in ROW_KINDS:
        n_rows = shapes[kind][0]
        problems += offsets_problems(OFFSETS[kind], arrays[OFFSETS[kind]], n_videos, n_rows)
        if arrays[FRAMES[kind]].shape[0] != n_rows:
            problems.append(f"{FRAMES[kind]} has {arrays[FRAMES[kind]].shape[0]} rows, expected {n_rows}")
    if arrays[CLIP_TIMES].shape[0] != shapes["clips"][0]:
        problems.append(f"{CLIP_TIMES} and {CLIP_EMBEDDINGS} differ in length")
    if shapes["clips"][1] != shapes["static"][1]:
        problems.append(f"{CLIP_EMBEDDINGS} are {shapes['clips'][1]} wide, {STATIC_EMBEDDINGS} {shapes['static'][1]}")
    problems += offsets_problems(VIDEO_SEGMENT_OFFSETS, arrays[VIDEO_SEGMENT_OFFSETS], n_videos,
                                 len(arrays[VIDEO_SEGMENTS]))
    if problems:  # the per-video checks below index by these offsets
        return problems
    if len(set(ids)) != len(ids):
        problems.append(f"{VIDEO_IDS} has duplicates")
    failed = {f["video_id"] for f in failures}
    if failed - set(ids):
        problems.append(f"failures name videos not in the table: {sorted(failed - set(ids))[:3]}")
    problems += _video_row_problems(arrays, ids, failed)
    problems += label_problems(arrays[VIDEO_LABELS], ids, header.get("class_names", []))
    problems += attribute_problems(arrays[VIDEO_ATTRIBUTES], ids, header.get("attribute_names", []))
    problems += segment_problems(arrays[VIDEO_SEGMENTS], arrays[VIDEO_SEGMENT_OFFSETS], ids,
                                 header.get("class_names", []))
    return problems


def _video_row_problems(arrays: dict[str, np.ndarray], ids: list[str], failed: set[str]) -> list[str]:
    """Each video done or failed, its clips inside it, and its clip and static rows in time order: rows
    out of order mean the offsets hand one video's rows to another."""
    problems = []
    clip_off, static_off = arrays[CLIP_OFFSETS], arrays[STATIC_OFFSETS]
    clip_frames, static_frames, n_frames = arrays[CLIP_FRAMES], arrays[STATIC_FRAMES], arrays[VIDEO_N_FRAMES]
    for v, video_id in enumerate(ids):
        has_rows = static_off[v + 1] > static_off[v] or clip_off[v + 1] > clip_off[v]
        if video_id in failed and has_rows:
            problems.append(f"video {video_id} is recorded as failed but has rows")
        elif video_id not in failed and not has_rows:
            problems.append(f"video {video_id} is neither done (no rows) nor recorded as failed")
        spans = clip_frames[clip_off[v] : clip_off[v + 1]]
        statics = static_frames[static_off[v] : static_off[v + 1]]
        if len(spans) and (spans.min() < 0 or spans[:, 1].max() > n_frames[v] or np.any(spans[:, 1] <= spans[:, 0])):
            problems.append(f"video {video_id} has clip spans outside its {n_frames[v]} frames")
        elif np.any(np.diff(spans[:, 0]) < 0) or np.any(np.diff(statics) < 0):
            problems.append(f"video {video_id}'s rows are not in time order (offsets giving it another video's rows?)")
        elif len(statics) and (statics.min() < 0 or statics.max() >= max(1, n_frames[v])):
            problems.append(f"video {video_id} has static frames outside its {n_frames[v]} frames")
    return problems


def label_problems(labels: np.ndarray, ids: list[str], class_names: list[str]) -> list[str]:
    """Labels are -1 (none) or a class index; checked when the dataset names its classes."""
    if not class_names:
        return []
    bad = np.flatnonzero((labels < -1) | (labels >= len(class_names)))
    if not len(bad):
        return []
    return [f"{VIDEO_LABELS}: {len(bad)} labels outside -1..{len(class_names) - 1} (the {len(class_names)} class names), "
            f"first {int(labels[bad[0]])} of video {ids[bad[0]]}"]


def segment_problems(segments: np.ndarray, offsets: np.ndarray, ids: list[str], class_names: list[str]) -> list[str]:
    """Each segment is [start_s, end_s, label]: finite, 0 <= start < end, label a class index (when the
    dataset names its classes). A segment label outside the classes would crash TAD training."""
    if len(segments) == 0:
        return []
    if segments.ndim != 2 or segments.shape[1] != 3:
        return [f"{VIDEO_SEGMENTS} has shape {segments.shape}, expected (S, 3) rows of [start_s, end_s, label]"]
    owner = np.searchsorted(offsets, np.arange(len(segments)), side="right") - 1
    start, end, label = segments[:, 0], segments[:, 1], segments[:, 2]
    problems = []
    bad_time = np.flatnonzero(~np.isfinite(segments).all(axis=1) | (start < 0) | (end <= start))
    if len(bad_time):
        s0 = segments[bad_time[0]]
        problems.append(f"{VIDEO_SEGMENTS}: {len(bad_time)} segments are not 0 <= start < end, first "
                        f"[{s0[0]:g}, {s0[1]:g}] of video {ids[owner[bad_time[0]]]}")
    if class_names:
        bad_label = np.flatnonzero((label != np.round(label)) | (label < 0) | (label >= len(class_names)))
        if len(bad_label):
            problems.append(f"{VIDEO_SEGMENTS}: {len(bad_label)} labels outside 0..{len(class_names) - 1} (the "
                            f"{len(class_names)} class names), first {label[bad_label[0]]:g} of video "
                            f"{ids[owner[bad_label[0]]]}")
    return problems


def attribute_problems(attributes: np.ndarray, ids: list[str], attribute_names: list[str]) -> list[str]:
    """One column per attribute name, each value 0, 1 or -1 (unknown)."""
    if attributes.ndim != 2 or attributes.shape[1] != len(attribute_names):
        return [f"{VIDEO_ATTRIBUTES} has shape {attributes.shape}, expected ({len(ids)}, {len(attribute_names)}) "
                "(one column per attribute name)"]
    bad = np.argwhere((attributes < -1) | (attributes > 1))
    if not len(bad):
        return []
    video, column = bad[0]
    return [f"{VIDEO_ATTRIBUTES}: {len(bad)} values outside -1, 0, 1, first {int(attributes[video, column])} "
            f"({attribute_names[column]}) of video {ids[video]}"]


def identity_problems(attrs: dict, dim: int, dtype: str) -> list[str]:
    """The recorded identity against the arrays (embedding size, dtype) and the provenance (model, weights,
    spec) and the dataset header (name); fields a store does not record are not checked."""
    identity, provenance = attrs.get("identity", {}), attrs.get("provenance", {})
    header = dataset_header(attrs)
    problems = []
    for where, spec in (("identity", identity.get("spec")), ("provenance", provenance.get("spec"))):
        if isinstance(spec, dict) and "embed_dim" in spec and spec["embed_dim"] != dim:
            problems.append(f"{where}.spec.embed_dim is {spec['embed_dim']} but the embeddings are {dim} wide")
    if "dtype" in identity and identity["dtype"] != dtype:
        problems.append(f"identity.dtype is {identity['dtype']!r} but the embeddings are {dtype}")
    pairs = (("model", identity.get("model"), "provenance.encoder", provenance.get("encoder")),
             ("weights_sha256", identity.get("weights_sha256"), "provenance.weights_sha256",
              provenance.get("weights_sha256")),
             ("spec", identity.get("spec"), "provenance.spec", provenance.get("spec")),
             ("dataset", identity.get("dataset"), "the dataset header's name", header.get("name")))
    for field, recorded, other_name, other in pairs:
        if recorded is not None and other is not None and recorded != other:
            problems.append(f"identity.{field} is {recorded!r} but {other_name} is {other!r}")
    return problems


def nonfinite_problem(name: str, array: zarr.Array) -> str | None:
    """Reads every row once: the first row holding NaN or Inf, and how many do, as one line."""
    bad, first = 0, None
    try:
        for start, block in Store.iter_blocks(array):
            rows = np.flatnonzero(~np.isfinite(np.asarray(block, dtype=np.float32)).all(axis=1))
            bad += len(rows)
            if first is None and len(rows):
                first = start + int(rows[0])
    except (ValueError, RuntimeError) as exc:  # a chunk that fails its checksum or does not decompress
        return f"cannot read {name}: {exc}"
    return f"{name} has {bad} rows with NaN or Inf (first row {first})" if bad else None

