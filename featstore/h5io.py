"""HDF5 exchange: ``export_h5`` writes a store's arrays and attributes to one .h5 file with the same
names (docs/store-format.md); ``import_h5`` reads such a file back into a store, bit for bit.

Other tools bring features in by writing that layout: the arrays under clips/, static/ and videos/
and a root attribute ``featstore_attrs`` holding the store attributes as JSON.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np

from data_manifests.schema import Segment, VideoRecord
from featstore.errors import FeatstoreError
from featstore.store import (
    STAGING_DIR,
    TABLE_COLUMNS,
    Part,
    StagingArea,
    Store,
    StoreContents,
    VideoResult,
    write_store,
)

ATTRS_KEY = "featstore_attrs"
ROW_ARRAYS = ("clips/embeddings", "clips/frames", "clips/times", "static/embeddings", "static/frames")
SMALL_ARRAYS = ("clips/offsets", "static/offsets", "videos/segments", "videos/segment_offsets")
IMPORT_VIDEOS_PER_PART = 256


def export_h5(store_path: str | Path, out: str | Path) -> Path:
    store = Store.open(store_path)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with h5py.File(tmp, "w") as handle:
        handle.attrs[ATTRS_KEY] = json.dumps(store.attrs)
        for name in ROW_ARRAYS:
            source = store.group[name]
            target = handle.create_dataset(name, shape=source.shape, dtype=source.dtype,
                                           chunks=_h5_chunks(source.shape) if source.shape[0] else None)
            for start, block in store.iter_blocks(source):
                target[start : start + len(block)] = block
        for name in SMALL_ARRAYS:
            handle.create_dataset(name, data=store.array(name))
        for column in TABLE_COLUMNS:
            values = store.array(f"videos/{column}")
            if values.dtype.kind in "UO":
                handle.create_dataset(f"videos/{column}", data=values.astype(object), dtype=h5py.string_dtype())
            else:
                handle.create_dataset(f"videos/{column}", data=values)
    tmp.replace(out)
    return out


def import_h5(h5_path: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Build a store from an exported .h5 through the store's own writer (staged parts + finalize)."""
    h5_path, out = Path(h5_path), Path(out)
    if not h5_path.is_file():
        raise FeatstoreError(f"no such file: {h5_path}")
    if out.exists():
        if not overwrite:
            raise FeatstoreError(f"{out} already exists; use --overwrite to replace it")
        if not Store.is_store(out):
            raise FeatstoreError(f"{out} exists and is not a featstore store; refusing to touch it")
        shutil.rmtree(out)
    try:
        handle = h5py.File(h5_path, "r")
    except OSError as exc:
        raise FeatstoreError(f"{h5_path} is not a readable HDF5 file") from exc
    with handle:
        missing = [n for n in (*ROW_ARRAYS, *SMALL_ARRAYS, *(f"videos/{c}" for c in TABLE_COLUMNS)) if n not in handle]
        if ATTRS_KEY not in handle.attrs or missing:
            what = ", ".join(missing[:4]) if missing else f"the root attribute {ATTRS_KEY!r}"
            raise FeatstoreError(f"{h5_path} is not in the featstore HDF5 layout (missing {what}; see docs/store-format.md)")
        attrs = json.loads(handle.attrs[ATTRS_KEY])
        header = attrs.get("dataset", {}).get("header", {})
        failures = {f["video_id"]: f["reason"] for f in attrs.get("failures", [])}
        records, video_columns = _read_table(handle)
        dim = handle["clips/embeddings"].shape[1]
        dtype = str(handle["clips/embeddings"].dtype)
        staging = StagingArea(out, dim, dtype)
        staging.root.mkdir(parents=True)
        clip_off, static_off = handle["clips/offsets"][...], handle["static/offsets"][...]
        n_parts = math.ceil(len(records) / IMPORT_VIDEOS_PER_PART)
        for index in range(n_parts):
            lo, hi = index * IMPORT_VIDEOS_PER_PART, min(len(records), (index + 1) * IMPORT_VIDEOS_PER_PART)
            c0, c1, s0, s1 = int(clip_off[lo]), int(clip_off[hi]), int(static_off[lo]), int(static_off[hi])
            rows = {name: handle[name][c0:c1] if name.startswith("clips") else handle[name][s0:s1] for name in ROW_ARRAYS}
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
                    result.clip_embeddings = rows["clips/embeddings"][a:b]
                    result.clip_frames, result.clip_times = rows["clips/frames"][a:b], rows["clips/times"][a:b]
                    result.static_embeddings = rows["static/embeddings"][c:d]
                    result.static_frames = rows["static/frames"][c:d]
                results.append(result)
            staging.save_part(Part(index, results, {"imported_from": str(h5_path)}))
    attrs.pop("featstore", None)
    attrs.pop("failures", None)
    contents = StoreContents(records, list(header.get("attribute_names", [])), attrs)
    write_store(out, contents, staging, n_parts)
    shutil.rmtree(out / STAGING_DIR)
    return out


def _read_table(handle: h5py.File) -> tuple[list[VideoRecord], dict[str, np.ndarray]]:
    columns = {}
    for column in TABLE_COLUMNS:
        values = handle[f"videos/{column}"][...]
        columns[column] = values.astype(str) if values.dtype.kind in "OS" else values
    segments = handle["videos/segments"][...]
    seg_off = handle["videos/segment_offsets"][...]
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
