"""THUMOS14 temporal action detection from the ActionFormer-style annotation JSON.

Accepted layout under ``root`` (``--data-root``)::

    root/annotations/thumos14.json          (or root/thumos14.json)
    root/validation/video_validation_0000051.mp4     validation videos
      (or root/videos/validation/, root/videos/)
    root/test/video_test_0000004.mp4                 test videos
      (or root/TH14_test_set_mp4/, root/videos/test/, root/videos/)

JSON: ``{"database": {"<video>": {"subset": "Validation" | "Test", "duration": s, "fps": f,
"annotations": [{"segment": [start_s, end_s], "label": "...", "label_id": k}, ...]}}}``.

- Splits follow the TAD convention: Validation -> train, Test -> test.
- Classes: the label names ordered by ``label_id``; label ids are remapped to 0..K-1 in that order
  (ActionFormer's file already uses 0..19). A label_id naming two different labels is an error.
- Segments ``[start_s, end_s, class]`` in seconds, as in the file (no clipping to the duration);
  exact duplicate annotations are removed (as the ANETdetection evaluation does) and annotations
  whose end is not after their start are skipped (both counted in the description). ``label`` is null.
- ``fps`` and ``duration`` come from the JSON. Videos without annotations are kept (no segments).
"""

from __future__ import annotations

import math
from pathlib import Path

from data_manifests.builders._common import check_fold, load_json, require_file
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, Segment, VideoRecord

NAME = "thumos14"
SUBSETS = {"validation": "train", "test": "test"}
VIDEO_DIRS = {
    "validation": ("validation", "videos/validation", "videos"),
    "test": ("test", "TH14_test_set_mp4", "videos/test", "videos"),
}


def build_thumos14(root: Path, fold: int = 1) -> Manifest:
    """The THUMOS14 TAD manifest (validation videos -> train, test videos -> test)."""
    check_fold("THUMOS14", fold, (1,), "THUMOS14 has one TAD split: validation -> train, test -> test")
    root = Path(root).expanduser().resolve()
    path = require_file([root / "annotations" / "thumos14.json", root / "thumos14.json"],
                        "THUMOS14 annotations", "the ActionFormer-style thumos14.json")
    data = load_json(path, "THUMOS14 annotations")
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict) or not database:
        raise ManifestError(f"{path}: expected a non-empty object under \"database\"")
    videos = {vid: _video_entry(path, vid, entry) for vid, entry in database.items()}
    names_by_id: dict[int, str] = {}
    ids_by_name: dict[str, int] = {}
    for vid, (_, _, _, annotations) in videos.items():
        for label_id, label, _, _ in annotations:
            if names_by_id.setdefault(label_id, label) != label:
                raise ManifestError(f"{path}: video {vid!r}: label_id {label_id} names both "
                                    f"{names_by_id[label_id]!r} and {label!r}")
            if ids_by_name.setdefault(label, label_id) != label_id:
                raise ManifestError(f"{path}: video {vid!r}: label {label!r} has both label_id "
                                    f"{ids_by_name[label]} and {label_id}")
    ordered_ids = sorted(names_by_id)
    class_of = {label_id: i for i, label_id in enumerate(ordered_ids)}
    records = []
    duplicates = empty = 0
    for vid in sorted(videos):
        subset, fps, duration, annotations = videos[vid]
        segments: list[Segment] = []
        seen = set()
        for label_id, _, start, end in annotations:
            key = (label_id, start, end)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            if end <= start:
                empty += 1
                continue
            segments.append(Segment(start, end, class_of[label_id]))
        segments.sort(key=lambda s: (s.start, s.end, s.label))
        records.append(VideoRecord(
            video_id=vid, path=_video_path(root, subset, vid), split=SUBSETS[subset], label=None,
            segments=segments, fps=fps, duration=duration,
        ))
    header = ManifestHeader(
        name=NAME,
        task="tad",
        class_names=[names_by_id[i] for i in ordered_ids],
        root=str(root),
        description=(
            f"THUMOS14 TAD from {path.name}: validation -> train, test -> test; segments in seconds"
            f" ({duplicates} duplicate and {empty} empty annotations dropped)"
        ),
    )
    return Manifest(header, records, root)


def _video_entry(path: Path, vid: str, entry) -> tuple[str, float | None, float | None, list]:
    where = f"{path}: video {vid!r}"
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected an object with subset, duration, fps and annotations")
    subset = str(entry.get("subset", "")).lower()
    if subset not in SUBSETS:
        raise ManifestError(f"{where}: subset {entry.get('subset')!r} is not Validation or Test")
    fps = _optional_positive(entry.get("fps"), where, "fps")
    duration = _optional_positive(entry.get("duration"), where, "duration")
    annotations = entry.get("annotations", [])
    if not isinstance(annotations, list):
        raise ManifestError(f"{where}: 'annotations' must be a list")
    parsed = []
    for number, act in enumerate(annotations):
        at = f"{where}, annotation {number}"
        if not isinstance(act, dict):
            raise ManifestError(f"{at}: expected an object with segment, label and label_id")
        segment, label, label_id = act.get("segment"), act.get("label"), act.get("label_id")
        if not (isinstance(segment, list) and len(segment) == 2 and all(_is_finite(v) for v in segment)):
            raise ManifestError(f"{at}: 'segment' must be [start_s, end_s], got {segment!r}")
        if not isinstance(label, str) or not label:
            raise ManifestError(f"{at}: 'label' must be a class name, got {label!r}")
        if isinstance(label_id, float) and label_id.is_integer():
            label_id = int(label_id)
        if not isinstance(label_id, int) or isinstance(label_id, bool):
            raise ManifestError(f"{at}: 'label_id' must be an integer, got {label_id!r}")
        start, end = float(segment[0]), float(segment[1])
        if start < 0:
            raise ManifestError(f"{at}: segment {segment!r} starts before 0")
        parsed.append((label_id, label, start, end))
    return subset, fps, duration, parsed


def _video_path(root: Path, subset: str, vid: str) -> str:
    """The first candidate folder holding ``<vid>.mp4``; else the first existing one (or the first)."""
    folders = VIDEO_DIRS[subset]
    for folder in folders:
        if (root / folder / f"{vid}.mp4").is_file():
            return f"{folder}/{vid}.mp4"
    existing = [f for f in folders if (root / f).is_dir()]
    return f"{(existing or folders)[0]}/{vid}.mp4"


def _is_finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _optional_positive(value, where: str, key: str) -> float | None:
    if value is None:
        return None
    if not _is_finite(value) or value <= 0:
        raise ManifestError(f"{where}: '{key}' must be a positive number, got {value!r}")
    return float(value)
