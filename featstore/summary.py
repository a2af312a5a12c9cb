"""Reading a store for people: a summary (``info``) and an integrity check (``verify``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from featstore.store import FORMAT_VERSION, TABLE_COLUMNS, Store


def summarize(store: Store) -> dict:
    """The facts ``featstore info`` shows, as plain data."""
    table = store.videos()
    clip_off, static_off = store.clip_offsets(), store.static_offsets()
    prov = store.provenance
    header = store.dataset.get("header", {})
    failed_ids = {f["video_id"] for f in store.failures}
    splits = Counter(table.split.tolist())
    return {
        "path": str(store.path),
        "format_version": store.attrs["featstore"]["format_version"],
        "model": prov.get("encoder"),
        "weights": prov.get("weights"),
        "weights_sha256": prov.get("weights_sha256"),
        "dim": store.dim,
        "dtype": str(store.clip_embeddings.dtype),
        "dataset": header.get("name"),
        "task": header.get("task"),
        "n_classes": len(header.get("class_names", [])),
        "attributes": header.get("attribute_names", []),
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
        "finished": store.attrs["featstore"].get("finalized"),
        "failures": store.failures,
    }


def _spread(counts: np.ndarray) -> str:
    if len(counts) == 0:
        return "-"
    return f"min {counts.min()}, mean {counts.mean():.1f}, max {counts.max()}"


def verify_store(path: str | Path) -> list[str]:
    """Every integrity problem found, as one line each (empty list = the store is sound).

    Checks: format and state; array presence and shapes; offsets monotonic and matching row counts;
    one table row per manifest video, each done or recorded as failed; clip spans inside the video;
    no NaN/Inf embeddings.
    """
    store = Store.open(path, require_complete=False)
    problems: list[str] = []
    fmt = store.attrs.get("featstore", {})
    if fmt.get("state") != "complete":
        problems.append(f"store state is {fmt.get('state')!r}, not 'complete'")
    if fmt.get("format_version") != FORMAT_VERSION:
        problems.append(f"format version {fmt.get('format_version')} != {FORMAT_VERSION}")
    required = ["clips/embeddings", "clips/frames", "clips/times", "clips/offsets", "static/embeddings",
                "static/frames", "static/offsets", "videos/segments", "videos/segment_offsets"]
    required += [f"videos/{c}" for c in TABLE_COLUMNS]
    missing = [name for name in required if name not in store.group]
    if missing:
        return problems + [f"missing arrays: {', '.join(missing)}"]

    n_videos = store.n_videos
    for name in [f"videos/{c}" for c in TABLE_COLUMNS]:
        if store.group[name].shape[0] != n_videos:
            problems.append(f"{name} has {store.group[name].shape[0]} rows, expected {n_videos}")
    for kind in ("clips", "static"):
        emb = store.group[f"{kind}/embeddings"]
        offsets = store.array(f"{kind}/offsets")
        if len(offsets) != n_videos + 1:
            problems.append(f"{kind}/offsets has {len(offsets)} entries, expected {n_videos + 1}")
            continue
        if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            problems.append(f"{kind}/offsets are not non-decreasing from 0")
        if offsets[-1] != emb.shape[0]:
            problems.append(f"{kind}/offsets end at {offsets[-1]} but {kind}/embeddings has {emb.shape[0]} rows")
        frames = store.group[f"{kind}/frames"]
        if frames.shape[0] != emb.shape[0]:
            problems.append(f"{kind}/frames has {frames.shape[0]} rows, expected {emb.shape[0]}")
        if emb.shape[0] and emb.shape[1] != store.provenance.get("spec", {}).get("embed_dim", emb.shape[1]):
            problems.append(f"{kind}/embeddings width {emb.shape[1]} != encoder embed_dim")
        bad = 0
        for _, block in store.iter_blocks(emb):
            bad += int((~np.isfinite(block.astype(np.float32))).any(axis=1).sum())
        if bad:
            problems.append(f"{kind}/embeddings has {bad} rows with NaN or Inf")
    if store.group["clips/times"].shape[0] != store.group["clips/embeddings"].shape[0]:
        problems.append("clips/times and clips/embeddings differ in length")

    table = store.videos()
    failed = {f["video_id"] for f in store.failures}
    ids = table.video_id.tolist()
    if len(set(ids)) != len(ids):
        problems.append("videos/video_id has duplicates")
    if failed - set(ids):
        problems.append(f"failures name videos not in the table: {sorted(failed - set(ids))[:3]}")
    clip_off, static_off = store.clip_offsets(), store.static_offsets()
    if len(clip_off) == n_videos + 1 and len(static_off) == n_videos + 1:
        clip_frames = store.array("clips/frames")
        for v, video_id in enumerate(ids):
            has_rows = static_off[v + 1] > static_off[v] or clip_off[v + 1] > clip_off[v]
            if video_id in failed and has_rows:
                problems.append(f"video {video_id} is recorded as failed but has rows")
            elif video_id not in failed and not has_rows:
                problems.append(f"video {video_id} is neither done (no rows) nor recorded as failed")
            spans = clip_frames[clip_off[v] : clip_off[v + 1]]
            if len(spans) and (spans.min() < 0 or spans[:, 1].max() > table.n_frames[v] or np.any(spans[:, 1] <= spans[:, 0])):
                problems.append(f"video {video_id} has clip spans outside its {table.n_frames[v]} frames")
    manifest_n = store.dataset.get("n_videos")
    if manifest_n is not None and manifest_n != n_videos:
        problems.append(f"the manifest had {manifest_n} videos, the table has {n_videos}")
    return problems
