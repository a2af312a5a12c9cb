"""HDF5 exchange: ``export_h5`` writes a store's arrays and attributes to one .h5 file with the same
names (docs/store-format.md); ``import_h5`` reads such a file back into a store, bit for bit.

Other tools bring features in by writing that layout: the arrays under clips/, static/ and videos/
and a root attribute ``featstore_attrs`` holding the store attributes as JSON (or as per-video arrays plus
a manifest: featstore/per_video.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np

from data_manifests.schema import Segment, VideoRecord
from data_manifests.errors import FeatstoreError
from featstore.exporters import (interrupted_writer, local_output, require_local_output, staged_output,
                                 store_to_url)
from featstore.store import (
    CLIP_EMBEDDINGS,
    CLIP_FRAMES,
    CLIP_OFFSETS,
    CLIP_TIMES,
    EMBEDDINGS,
    REQUIRED_ARRAYS,
    ROW_ARRAYS,
    ROW_KINDS,
    STATIC_EMBEDDINGS,
    STATIC_FRAMES,
    STATIC_OFFSETS,
    TABLE_ARRAYS,
    TABLE_COLUMNS,
    TEXT_ARRAYS,
    VIDEO_SEGMENT_OFFSETS,
    VIDEO_SEGMENTS,
    Part,
    StagingArea,
    Store,
    StoreContents,
    VideoResult,
    dataset_header,
    write_store,
)
from featstore.summary import identity_problems, table_problems, verify_store

ATTRS_KEY = "featstore_attrs"
SMALL_ARRAYS = (CLIP_OFFSETS, STATIC_OFFSETS, VIDEO_SEGMENTS, VIDEO_SEGMENT_OFFSETS)
IMPORT_VIDEOS_PER_PART = 256


def export_h5(store_path: str | Path, out: str | Path) -> Path:
    """Write the store (a path or an fsspec URL) to the local file ``out`` (``exporters.export`` also
    copies it to a URL)."""
    out = require_local_output(out, "export_h5's file is written on this machine")
    if out.is_dir():
        raise FeatstoreError(f"{out} is a folder; the h5 export writes one file")
    with staged_output(out, single_file=True) as staging:
        _write_h5(Store.open(store_path), staging)
    return out


def _write_h5(store: Store, path: Path) -> None:
    with h5py.File(path, "w") as handle:
        handle.attrs[ATTRS_KEY] = json.dumps(store.attrs)
        for name in ROW_ARRAYS:
            source = store.group[name]
            target = handle.create_dataset(name, shape=source.shape, dtype=source.dtype,
                                           chunks=_h5_chunks(source.shape) if source.shape[0] else None)
            for start, block in store.iter_blocks(source):
                target[start : start + len(block)] = block
        for name in SMALL_ARRAYS:
            handle.create_dataset(name, data=store.array(name))
        for name in TABLE_ARRAYS:
            values = store.array(name)
            if values.dtype.kind in "UO":
                handle.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype())
            else:
                handle.create_dataset(name, data=values)


def import_h5(h5_path: str | Path, out: str | Path, overwrite: bool = False) -> Path | str:
    """Build a store from an exported .h5 through the store's own writer (staged parts + finalize).

    The store is built in ``<out>.partial-<pid>`` and renamed to ``out`` when complete (``staged_output``);
    with ``overwrite`` an existing store is replaced only then. What an interrupted import of an earlier
    version left at ``out`` is replaced without ``overwrite``. An ``out`` at a remote fsspec URL is built in a
    temporary folder and copied there whole (``store_to_url``).
    """
    h5_path = Path(h5_path)
    if not h5_path.is_file():
        raise FeatstoreError(f"no such file: {h5_path}")
    if local_output(out) is None:
        store_to_url(str(out), overwrite, lambda local: import_h5(h5_path, local))
        return str(out)
    out = local_output(out)
    check_import_target(out, overwrite)
    try:
        handle = h5py.File(h5_path, "r")
    except OSError as exc:
        raise FeatstoreError(f"{h5_path} is not a readable HDF5 file") from exc
    with handle, staged_output(out) as building:
        missing = [n for n in (*ROW_ARRAYS, *SMALL_ARRAYS, *TABLE_ARRAYS) if n not in handle]
        if ATTRS_KEY not in handle.attrs or missing:
            what = ", ".join(missing[:4]) if missing else f"the root attribute {ATTRS_KEY!r}"
            raise FeatstoreError(f"{h5_path} is not in the featstore HDF5 layout (missing {what}; see docs/store-format.md)")
        attrs = _read_attrs(handle, h5_path)
        _refuse_problems(h5_path, _h5_problems(handle, attrs))
        header = dataset_header(attrs)
        failures = {f["video_id"]: f["reason"] for f in attrs.get("failures", [])}
        records, video_columns = _read_table(handle)
        dim = handle[CLIP_EMBEDDINGS].shape[1]
        dtype = str(handle[CLIP_EMBEDDINGS].dtype)
        staging = StagingArea(building, dim, dtype)
        staging.root.mkdir()
        clip_off, static_off = handle[CLIP_OFFSETS][...], handle[STATIC_OFFSETS][...]
        n_parts = math.ceil(len(records) / IMPORT_VIDEOS_PER_PART)
        for index in range(n_parts):
            lo, hi = index * IMPORT_VIDEOS_PER_PART, min(len(records), (index + 1) * IMPORT_VIDEOS_PER_PART)
            c0, c1, s0, s1 = int(clip_off[lo]), int(clip_off[hi]), int(static_off[lo]), int(static_off[hi])
            rows = {**{name: handle[name][c0:c1] for name in (CLIP_EMBEDDINGS, CLIP_FRAMES, CLIP_TIMES)},
                    **{name: handle[name][s0:s1] for name in (STATIC_EMBEDDINGS, STATIC_FRAMES)}}
            results = []
            for v in range(lo, hi):
                record = records[v]
                result = VideoResult(
                    video_id=record.video_id,
                    failed_reason=failures.get(record.video_id, ""),
                    decoder=str(video_columns["decoder"][v]),
                    n_frames=int(video_columns["n_frames"][v]),
                    fps=float(video_columns["fps"][v]),
                    duration=float(video_columns["duration"][v]),
                )
                if not result.failed:
                    a, b = int(clip_off[v]) - c0, int(clip_off[v + 1]) - c0
                    c, d = int(static_off[v]) - s0, int(static_off[v + 1]) - s0
                    result.clip_embeddings = rows[CLIP_EMBEDDINGS][a:b]
                    result.clip_frames, result.clip_times = rows[CLIP_FRAMES][a:b], rows[CLIP_TIMES][a:b]
                    result.static_embeddings = rows[STATIC_EMBEDDINGS][c:d]
                    result.static_frames = rows[STATIC_FRAMES][c:d]
                results.append(result)
            staging.save_part(Part(index, results, {"imported_from": str(h5_path)}))
        attrs.pop("featstore", None)
        attrs.pop("failures", None)
        contents = StoreContents(records, list(header.get("attribute_names", [])), attrs)
        write_store(building, contents, staging, n_parts)
        staging.remove()
        _refuse_problems(h5_path, verify_store(building))  # what was written, by verify's rules
    return out


def check_import_target(out: Path, overwrite: bool) -> None:
    """An import replaces an existing store only with ``overwrite`` (what an interrupted import left: always)."""
    if out.exists() and interrupted_writer(out) != "featstore import":
        if not overwrite:
            raise FeatstoreError(f"{out} already exists; use --overwrite to replace it")
        if not Store.is_store(out):
            raise FeatstoreError(f"{out} exists and is not a featstore store; refusing to touch it")


def _h5_problems(handle: h5py.File, attrs: dict) -> list[str]:
    """``verify``'s checks on the file's arrays, before anything is staged from them (offsets decide which
    rows go to which video)."""
    arrays = {name: handle[name][...] for name in REQUIRED_ARRAYS if name not in EMBEDDINGS.values()}
    for name in TEXT_ARRAYS:
        arrays[name] = arrays[name].astype(str)
    shapes = {kind: handle[EMBEDDINGS[kind]].shape for kind in ROW_KINDS}
    if any(len(shape) != 2 for shape in shapes.values()):
        return [f"the embeddings must be 2-d (rows, size), not {shapes['clips']} and {shapes['static']}"]
    problems = table_problems(arrays, shapes, dataset_header(attrs), attrs.get("failures", []))
    return problems + identity_problems(attrs, shapes["clips"][1], str(handle[CLIP_EMBEDDINGS].dtype))


def _refuse_problems(h5_path: Path, problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise FeatstoreError(f"{h5_path} is not a sound featstore export: {problems[0]}{more}; nothing was written")


def _read_attrs(handle: h5py.File, h5_path: Path) -> dict:
    """The store attributes held as JSON in ``featstore_attrs``, checked where the import reads them."""
    try:
        attrs = json.loads(handle.attrs[ATTRS_KEY])
    except (TypeError, ValueError) as exc:  # not text, or not JSON (JSONDecodeError is a ValueError)
        raise FeatstoreError(f"{h5_path}: the root attribute {ATTRS_KEY!r} is not valid JSON ({exc})") from exc
    if not isinstance(attrs, dict):
        raise FeatstoreError(f"{h5_path}: the root attribute {ATTRS_KEY!r} must hold a JSON object "
                             "(the store attributes)")
    dataset = attrs.get("dataset", {})
    header = dataset.get("header", {}) if isinstance(dataset, dict) else None
    if not isinstance(header, dict) or not isinstance(header.get("attribute_names", []), list):
        raise FeatstoreError(f"{h5_path}: in {ATTRS_KEY!r}, \"dataset\" must be an object whose \"header\" is an "
                             "object with a list \"attribute_names\"")
    failures = attrs.get("failures", [])
    if not isinstance(failures, list) or not all(
            isinstance(f, dict) and isinstance(f.get("video_id"), str) and isinstance(f.get("reason"), str)
            for f in failures):
        raise FeatstoreError(f"{h5_path}: in {ATTRS_KEY!r}, \"failures\" must be a list of "
                             "{\"video_id\": text, \"reason\": text}")
    return attrs


def _read_table(handle: h5py.File) -> tuple[list[VideoRecord], dict[str, np.ndarray]]:
    columns = {}
    for column, name in zip(TABLE_COLUMNS, TABLE_ARRAYS):
        values = handle[name][...]
        columns[column] = values.astype(str) if values.dtype.kind in "OS" else values
    segments = handle[VIDEO_SEGMENTS][...]
    seg_off = handle[VIDEO_SEGMENT_OFFSETS][...]
    records = []
    for v, video_id in enumerate(columns["video_id"].tolist()):
        attributes = columns["attributes"][v]
        records.append(
            VideoRecord(
                video_id=video_id,
                path=str(columns["path"][v]),
                split=str(columns["split"][v]),
                label=None if columns["label"][v] < 0 else int(columns["label"][v]),
                attributes=None if len(attributes) == 0 or attributes.min() < 0 else [int(a) for a in attributes],
                subject=str(columns["subject"][v]) or None,
                segments=[Segment(float(s[0]), float(s[1]), int(s[2])) for s in segments[seg_off[v] : seg_off[v + 1]]],
            )
        )
    return records, columns


def _h5_chunks(shape: tuple) -> tuple:
    return (min(shape[0], 1024), *shape[1:])
