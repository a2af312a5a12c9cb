"""Per-video exports that feed other tools' original code unchanged.

``opentad`` (ActionFormer / TriDet / OpenTAD feature layout)::

    OUT/features/<video_id>.npy    (T, C) float32, one row per clip in time order
    OUT/annotations.json           {"database": {video_id: {"subset", "duration", "fps",
                                     "annotations": [{"segment": [start_s, end_s], "label", "label_id"}]}}}
    OUT/export_info.json           what to put in the tool's config: feat_stride, num_frames, input_dim, ...

  Those tools map seconds to feature index as ``(t * fps - num_frames / 2) / feat_stride``. That holds
  for stores whose clips start at frame 0 and follow each other every ``stride`` frames at the recorded
  fps; ``export_info.json`` says whether this store does (``grid_matches_formula``).

``mgfn`` (MGFN / RTFM UCF-Crime layout)::

    OUT/features/<video_id>.npy    (T, crops, C) float32 (the store has one view: it is repeated ``crops``
                                   times, 10 by default, because MGFN's code assumes 10 crops)
    OUT/train.list                 absolute paths, anomalous training videos first, then normal ones
    OUT/test.list                  absolute paths of the test videos
    OUT/gt.npy                     frame-level 0/1 ground truth of the test list, clip_len frames per snippet
    OUT/export_info.json           n_anomalous_train (MGFN's dataset.py hard-codes 810), feature size, crops

Every file is written under a temporary name and renamed; an existing non-empty OUT is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from featstore.errors import FeatstoreError
from featstore.store import Store

EXPORT_FORMATS = ("h5", "opentad", "mgfn")
MGFN_DEFAULT_CROPS = 10


def _safe_name(video_id: str) -> str:
    if not video_id or video_id in (".", "..") or "/" in video_id or "\\" in video_id or "\0" in video_id:
        raise FeatstoreError(f"video id {video_id!r} cannot be used as a file name")
    return video_id


def _prepare(out: Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FeatstoreError(f"{out} already exists and is not an empty folder; choose another --out")
    (out / "features").mkdir(parents=True, exist_ok=True)
    return out


def _write_npy(path: Path, values: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, values)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _sampling(store: Store) -> dict:
    return store.config.get("sampling", {}) or {}


def _videos_with_clips(store: Store) -> np.ndarray:
    return np.flatnonzero(np.diff(store.clip_offsets()) > 0)


def feature_grid_info(store: Store) -> dict:
    """The stride / clip length / fps a tool needs, and whether clip g really covers frames
    [g * stride, g * stride + clip_len) of every video (the tools' seconds <-> index formula)."""
    sampling = _sampling(store)
    clip_len = int(sampling.get("clip_len", 16))
    stride = int(sampling.get("stride") or clip_len)
    frames = store.array("clips/frames")
    offsets = store.clip_offsets()
    matches = True
    for v in _videos_with_clips(store).tolist():
        rows = frames[offsets[v]:offsets[v + 1]]
        expected = np.arange(len(rows)) * stride
        if not (np.array_equal(rows[:, 0], expected) and np.all(rows[:, 1] - rows[:, 0] == clip_len)):
            matches = False
            break
    return {"feat_stride": stride, "num_frames": clip_len, "resampled_fps": sampling.get("fps"),
            "grid_matches_formula": bool(matches and sampling.get("fps") is None)}


def export_opentad(store_path: str | Path, out: str | Path) -> Path:
    store = Store.open(store_path)
    out = _prepare(Path(out))
    table = store.videos()
    header = store.dataset.get("header", {})
    class_names = list(header.get("class_names", []))
    offsets = store.clip_offsets()
    sampling = _sampling(store)
    database = {}
    for v in _videos_with_clips(store).tolist():
        name = _safe_name(str(table.video_id[v]))
        _write_npy(out / "features" / f"{name}.npy",
                   np.asarray(store.clip_embeddings[offsets[v]:offsets[v + 1]], dtype=np.float32))
        annotations = []
        for start, end, label in table.segments[v].tolist():
            label = int(label)
            annotations.append({"segment": [float(start), float(end)],
                                "label": class_names[label] if 0 <= label < len(class_names) else str(label),
                                "label_id": label})
        database[name] = {"subset": str(table.split[v]), "duration": float(table.duration[v]),
                          "fps": float(sampling.get("fps") or table.fps[v]), "annotations": annotations}
    _write_text(out / "annotations.json", json.dumps({"version": "featstore-opentad-1", "database": database}) + "\n")
    info = {"format": "opentad", "store": str(store.path), "n_videos": len(database), "input_dim": store.dim,
            "num_classes": len(class_names), "class_names": class_names, "feature_dtype": "float32",
            "splits": sorted({d["subset"] for d in database.values()}), **feature_grid_info(store)}
    _write_text(out / "export_info.json", json.dumps(info, indent=2) + "\n")
    return out


def frame_ground_truth(clip_times: np.ndarray, intervals: np.ndarray, frames_per_snippet: int = 16) -> np.ndarray:
    """(n_snippets * frames_per_snippet,) 0/1 frame labels of one video (the UCF-Crime convention).

    Frame slot j of a snippet spanning [start, end) seconds sits at ``start + j * (end - start) /
    frames_per_snippet``; it is anomalous when that time lies in an interval ``[seg_start, seg_end)`` of
    ``intervals`` (m, >= 2; extra columns such as a label are ignored). For clips of consecutive frames at
    the video's fps this is exactly "frame f is anomalous when seg_start * fps <= f < seg_end * fps".
    """
    clip_times = np.asarray(clip_times, dtype=np.float64).reshape(-1, 2)
    intervals = np.asarray(intervals, dtype=np.float64)
    intervals = intervals.reshape(-1, 2) if intervals.ndim == 1 else intervals
    slots = np.arange(frames_per_snippet) / frames_per_snippet
    times = (clip_times[:, :1] + slots[None, :] * (clip_times[:, 1:2] - clip_times[:, :1])).reshape(-1)
    labels = np.zeros(len(times), dtype=np.int64)
    for start, end in intervals[:, :2]:
        # 1e-9 s absorbs the float rounding of frame / fps at interval edges
        labels |= ((times >= start - 1e-9) & (times < end - 1e-9)).astype(np.int64)
    return labels


def export_mgfn(store_path: str | Path, out: str | Path, crops: int = MGFN_DEFAULT_CROPS,
                train_split: str = "train", test_split: str = "test") -> Path:
    if crops < 1:
        raise FeatstoreError(f"crops must be >= 1, got {crops}")
    store = Store.open(store_path)
    table = store.videos()
    grid = feature_grid_info(store)
    if grid["feat_stride"] != grid["num_frames"]:
        raise FeatstoreError(f"{store.path}: the MGFN layout needs non-overlapping snippets (stride = clip length); "
                             f"this store has clip length {grid['num_frames']} and stride {grid['feat_stride']}")
    labels = table.label
    offsets = store.clip_offsets()
    times = store.array("clips/times")
    with_clips = set(_videos_with_clips(store).tolist())
    train = [v for v in store.split_indices(train_split).tolist() if v in with_clips]
    test = [v for v in store.split_indices(test_split).tolist() if v in with_clips]
    for v in train + test:
        if labels[v] not in (0, 1):
            raise FeatstoreError(f"{store.path}: the MGFN layout needs labels 0 (normal) / 1 (anomalous); "
                                 f"video {table.video_id[v]} has {labels[v]}")
    out = _prepare(Path(out))
    paths = {}
    for v in train + test:
        name = _safe_name(str(table.video_id[v]))
        values = np.asarray(store.clip_embeddings[offsets[v]:offsets[v + 1]], dtype=np.float32)
        path = (out / "features" / f"{name}.npy").resolve()
        _write_npy(path, np.repeat(values[:, None, :], crops, axis=1))
        paths[v] = str(path)
    anomalous_first = [v for v in train if labels[v] == 1] + [v for v in train if labels[v] == 0]
    _write_text(out / "train.list", "".join(f"{paths[v]}\n" for v in anomalous_first))
    _write_text(out / "test.list", "".join(f"{paths[v]}\n" for v in test))
    truth = [frame_ground_truth(times[offsets[v]:offsets[v + 1]], table.segments[v], grid["num_frames"]) for v in test]
    _write_npy(out / "gt.npy", np.concatenate(truth).astype(np.float64) if truth else np.zeros(0))
    info = {"format": "mgfn", "store": str(store.path), "feature_size": store.dim, "crops": crops,
            "crops_note": "the store holds one view; it is repeated to fill the crop axis" if crops > 1 else "",
            "n_anomalous_train": int(sum(labels[v] == 1 for v in train)),
            "n_normal_train": int(sum(labels[v] == 0 for v in train)),
            "n_test": len(test), "frames_per_snippet": grid["num_frames"], "gt_frames": int(sum(len(t) for t in truth))}
    _write_text(out / "export_info.json", json.dumps(info, indent=2) + "\n")
    return out


def export(store_path: str | Path, out: str | Path, format: str, crops: int = MGFN_DEFAULT_CROPS) -> Path:
    """Dispatch on ``format`` (``h5`` writes one file; the others a folder)."""
    if format == "h5":
        from featstore.h5io import export_h5

        return export_h5(store_path, out)
    if format == "opentad":
        return export_opentad(store_path, out)
    if format == "mgfn":
        return export_mgfn(store_path, out, crops=crops)
    raise FeatstoreError(f"unknown export format {format!r} (available: {', '.join(EXPORT_FORMATS)})")
