"""THUMOS14 temporal action detection from one of three annotation formats.

Accepted layout under ``root`` (``--data-root``); the first format found, in this order, is used
(or the one named by ``annotation_format``), and the header's description names the file(s) read:

1. ``actionformer``: ``root/annotations/thumos14.json`` (or ``root/thumos14.json``), ActionFormer's file:
   ``{"database": {"<video>": {"subset": "Validation" | "Test", "duration": s, "fps": f,
   "annotations": [{"segment": [start_s, end_s], "label": "...", "label_id": k}, ...]}}}``.
   Classes are the label names ordered by ``label_id``, remapped to 0..K-1 in that order (ActionFormer's
   file already uses 0..19); a label_id naming two different labels is an error.
2. ``opentad``: ``root/annotations/thumos_14_anno.json`` (or ``root/thumos_14_anno.json``), OpenTAD's file:
   the same ``database`` object with ``"subset": "training" | "validation" | "test"``, ``"duration": s``,
   ``"frame": n`` (frame count, optional) and annotations ``{"segment": [s, e], "label": name}`` (no ids).
   Classes follow ``category_idx.txt`` next to the JSON (one name a line, as OpenTAD's ``class_map``),
   else the label names sorted alphabetically. ``fps`` is ``frame / duration`` when both are given.
3. ``official``: the per-class text files of the THUMOS14 release, ``<Class>_val.txt`` (validation
   videos) and ``<Class>_test.txt`` (test videos), lines ``video_name start_s end_s``, in
   ``root/annotation/`` or ``root/annotations/`` (or the unpacked ``TH14_Temporal_annotations_validation/
   annotation/`` and ``TH14_Temporal_Annotations_Test/annotations/annotation/``). Classes are the file
   names sorted alphabetically (THUMOS14's own 0..19 order); ``fps`` and ``duration`` are unknown (null).

Videos (the same for every format)::

    root/validation/video_validation_0000051.mp4     validation videos
      (or root/videos/validation/, root/videos/)
    root/test/video_test_0000004.mp4                 test videos
      (or root/TH14_test_set_mp4/, root/videos/test/, root/videos/)

- Splits follow the TAD convention: THUMOS14 validation videos -> train, test videos -> test (OpenTAD's
  subsets: "training" -> train, "validation" and "test" -> test, as its THUMOS configs use them).
- The ``Ambiguous`` label (OpenTAD's label, the official ``Ambiguous_*.txt`` list) marks intervals that
  are neither action nor background: they are dropped (counted in the description); a video annotated
  only with them is kept without segments.
- Segments ``[start_s, end_s, class]`` in seconds, as in the file (no clipping to the duration);
  exact duplicate annotations are removed (as the ANETdetection evaluation does) and annotations
  whose end is not after their start are skipped (both counted in the description). ``label`` is null.
- Videos without annotations are kept (no segments).
"""

from __future__ import annotations

import math
from pathlib import Path

from data_manifests.builders._common import check_fold, first_existing_file, load_json, read_lines, require_file
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, Segment, VideoRecord

NAME = "thumos14"
AMBIGUOUS = "Ambiguous"
# THUMOS14 subset -> our split (TAD practice: train on the validation videos, test on the test videos).
SUBSETS = {"validation": "train", "test": "test"}
# OpenTAD's subset names -> the THUMOS14 subset they hold (its configs train on "training", test on "validation").
OPENTAD_SUBSETS = {"training": "validation", "validation": "test", "test": "test"}
# official text file suffix -> THUMOS14 subset
OFFICIAL_SUFFIXES = {"_val.txt": "validation", "_test.txt": "test"}
OFFICIAL_DIRS = ("annotation", "annotations", "TH14_Temporal_annotations_validation/annotation",
                 "TH14_Temporal_Annotations_Test/annotations/annotation")
ANNOTATION_FORMATS = ("actionformer", "opentad", "official")
VIDEO_DIRS = {
    "validation": ("validation", "videos/validation", "videos"),
    "test": ("test", "TH14_test_set_mp4", "videos/test", "videos"),
}

# vid -> (THUMOS14 subset, fps, duration, [(class index, start_s, end_s)])
Videos = dict[str, tuple[str, float | None, float | None, list[tuple[int, float, float]]]]


def build_thumos14(root: Path, fold: int = 1, annotation_format: str | None = None) -> Manifest:
    """The THUMOS14 TAD manifest (validation videos -> train, test videos -> test).

    ``annotation_format`` (one of ``ANNOTATION_FORMATS``) picks the annotation files; by default the
    first format whose files exist under ``root`` (see the module docstring for the order).
    """
    check_fold("THUMOS14", fold, (1,), "THUMOS14 has one TAD split: validation -> train, test -> test")
    root = Path(root).expanduser().resolve()
    if annotation_format is None:
        annotation_format = _detect_format(root)
    if annotation_format == "actionformer":
        source, class_names, videos, ambiguous = _read_actionformer(root)
    elif annotation_format == "opentad":
        source, class_names, videos, ambiguous = _read_opentad(root)
    elif annotation_format == "official":
        source, class_names, videos, ambiguous = _read_official(root)
    else:
        raise ManifestError(f"THUMOS14 annotation format must be one of {', '.join(ANNOTATION_FORMATS)}, "
                            f"got {annotation_format!r}")
    records = []
    duplicates = empty = 0
    for vid in sorted(videos):
        subset, fps, duration, annotations = videos[vid]
        segments: list[Segment] = []
        seen = set()
        for class_index, start, end in annotations:
            key = (class_index, start, end)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            if end <= start:
                empty += 1
                continue
            segments.append(Segment(start, end, class_index))
        segments.sort(key=lambda s: (s.start, s.end, s.label))
        records.append(VideoRecord(
            video_id=vid, path=_video_path(root, subset, vid), split=SUBSETS[subset], label=None,
            segments=segments, fps=fps, duration=duration,
        ))
    dropped = f"{duplicates} duplicate and {empty} empty annotations dropped"
    if annotation_format != "actionformer":
        dropped += f", {ambiguous} {AMBIGUOUS} intervals dropped"
    header = ManifestHeader(
        name=NAME,
        task="tad",
        class_names=class_names,
        root=str(root),
        description=(f"THUMOS14 TAD from {source} ({annotation_format} format): validation -> train, "
                     f"test -> test; segments in seconds ({dropped})"),
    )
    return Manifest(header, records, root)


def _actionformer_candidates(root: Path) -> list[Path]:
    return [root / "annotations" / "thumos14.json", root / "thumos14.json"]


def _opentad_candidates(root: Path) -> list[Path]:
    return [root / "annotations" / "thumos_14_anno.json", root / "thumos_14_anno.json"]


def _official_files(root: Path) -> list[Path]:
    return sorted({path for folder in OFFICIAL_DIRS if (root / folder).is_dir()
                   for suffix in OFFICIAL_SUFFIXES for path in (root / folder).glob(f"*{suffix}")})


def _detect_format(root: Path) -> str:
    if first_existing_file(_actionformer_candidates(root)) is not None:
        return "actionformer"
    if first_existing_file(_opentad_candidates(root)) is not None:
        return "opentad"
    if _official_files(root):
        return "official"
    expected = _actionformer_candidates(root)[0]
    raise ManifestError(f"THUMOS14 annotations not found: expected {expected} (ActionFormer), "
                        f"{_opentad_candidates(root)[0]} (OpenTAD) or the official <Class>_val.txt/<Class>_test.txt "
                        f"files in {root / 'annotation'}")


def _read_database(path: Path) -> dict:
    data = load_json(path, "THUMOS14 annotations")
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict) or not database:
        raise ManifestError(f"{path}: expected a non-empty object under \"database\"")
    return database


def _read_actionformer(root: Path) -> tuple[str, list[str], Videos, int]:
    path = require_file(_actionformer_candidates(root), "THUMOS14 annotations", "the ActionFormer-style thumos14.json")
    parsed = {vid: _actionformer_entry(path, vid, entry) for vid, entry in _read_database(path).items()}
    names_by_id: dict[int, str] = {}
    ids_by_name: dict[str, int] = {}
    for vid, (_, _, _, annotations) in parsed.items():
        for label_id, label, _, _ in annotations:
            if names_by_id.setdefault(label_id, label) != label:
                raise ManifestError(f"{path}: video {vid!r}: label_id {label_id} names both "
                                    f"{names_by_id[label_id]!r} and {label!r}")
            if ids_by_name.setdefault(label, label_id) != label_id:
                raise ManifestError(f"{path}: video {vid!r}: label {label!r} has both label_id "
                                    f"{ids_by_name[label]} and {label_id}")
    ordered_ids = sorted(names_by_id)
    class_of = {label_id: i for i, label_id in enumerate(ordered_ids)}
    videos = {vid: (subset, fps, duration,
                    [(class_of[label_id], start, end) for label_id, _, start, end in annotations])
              for vid, (subset, fps, duration, annotations) in parsed.items()}
    return path.name, [names_by_id[i] for i in ordered_ids], videos, 0


def _actionformer_entry(path: Path, vid: str, entry) -> tuple[str, float | None, float | None, list]:
    where = f"{path}: video {vid!r}"
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected an object with subset, duration, fps and annotations")
    subset = str(entry.get("subset", "")).lower()
    if subset not in SUBSETS:
        raise ManifestError(f"{where}: subset {entry.get('subset')!r} is not Validation or Test")
    fps = _optional_positive(entry.get("fps"), where, "fps")
    duration = _optional_positive(entry.get("duration"), where, "duration")
    parsed = []
    for at, act, label, start, end in _annotations(where, entry):
        label_id = act.get("label_id")
        if isinstance(label_id, float) and label_id.is_integer():
            label_id = int(label_id)
        if not isinstance(label_id, int) or isinstance(label_id, bool):
            raise ManifestError(f"{at}: 'label_id' must be an integer, got {label_id!r}")
        parsed.append((label_id, label, start, end))
    return subset, fps, duration, parsed


def _annotations(where: str, entry: dict):
    """(where, annotation, label, start_s, end_s) of each well-formed annotation of a video entry."""
    annotations = entry.get("annotations", [])
    if not isinstance(annotations, list):
        raise ManifestError(f"{where}: 'annotations' must be a list")
    for number, act in enumerate(annotations):
        at = f"{where}, annotation {number}"
        if not isinstance(act, dict):
            raise ManifestError(f"{at}: expected an object with segment and label")
        segment, label = act.get("segment"), act.get("label")
        if not (isinstance(segment, list) and len(segment) == 2 and all(_is_finite(v) for v in segment)):
            raise ManifestError(f"{at}: 'segment' must be [start_s, end_s], got {segment!r}")
        if not isinstance(label, str) or not label:
            raise ManifestError(f"{at}: 'label' must be a class name, got {label!r}")
        start, end = float(segment[0]), float(segment[1])
        if start < 0:
            raise ManifestError(f"{at}: segment {segment!r} starts before 0")
        yield at, act, label, start, end


def _read_opentad(root: Path) -> tuple[str, list[str], Videos, int]:
    path = require_file(_opentad_candidates(root), "THUMOS14 annotations", "OpenTAD's thumos_14_anno.json")
    parsed = {}
    for vid, entry in _read_database(path).items():
        where = f"{path}: video {vid!r}"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: expected an object with subset, duration, frame and annotations")
        subset = OPENTAD_SUBSETS.get(str(entry.get("subset", "")).lower())
        if subset is None:
            raise ManifestError(f"{where}: subset {entry.get('subset')!r} is not one of OpenTAD's "
                                f"{', '.join(OPENTAD_SUBSETS)}")
        duration = _optional_positive(entry.get("duration"), where, "duration")
        frames = _optional_positive(entry.get("frame"), where, "frame")
        fps = frames / duration if frames is not None and duration is not None else None
        parsed[vid] = (subset, fps, duration,
                       [(label, start, end) for _, _, label, start, end in _annotations(where, entry)])
    class_map = path.parent / "category_idx.txt"
    if class_map.is_file():
        class_names = [name for _, name in read_lines(class_map, "OpenTAD class map")]
        if len(set(class_names)) != len(class_names):
            raise ManifestError(f"{class_map}: a class name is listed twice")
    else:
        labels = {label for *_, annotations in parsed.values() for label, _, _ in annotations}
        class_names = sorted(labels - {AMBIGUOUS})
    return _by_class_index(path.name, class_names, parsed, class_map if class_map.is_file() else None)


def _read_official(root: Path) -> tuple[str, list[str], Videos, int]:
    files = _official_files(root)
    if not files:
        raise ManifestError(f"THUMOS14 annotation files not found: expected <Class>_val.txt / <Class>_test.txt "
                            f"in {root / 'annotation'} (or {', '.join(str(root / d) for d in OFFICIAL_DIRS[1:])})")
    parsed: dict[str, tuple[str, None, None, list]] = {}
    labels = set()
    for path in files:
        suffix = next(s for s in OFFICIAL_SUFFIXES if path.name.endswith(s))
        subset, label = OFFICIAL_SUFFIXES[suffix], path.name[: -len(suffix)]
        labels.add(label)
        for number, line in read_lines(path, "THUMOS14 annotation file"):
            fields = line.split()
            if len(fields) != 3 or not all(_is_number_text(v) for v in fields[1:]):
                raise ManifestError(f"{path}:{number}: expected 'video_name start_s end_s', got {line!r}")
            vid, start, end = fields[0], float(fields[1]), float(fields[2])
            if start < 0:
                raise ManifestError(f"{path}:{number}: segment [{start}, {end}] starts before 0")
            video_subset = parsed.setdefault(vid, (subset, None, None, []))[0]
            if video_subset != subset:
                raise ManifestError(f"{path}:{number}: video {vid!r} is listed in both the validation and "
                                    "the test annotation files")
            parsed[vid][3].append((label, start, end))
    folders = sorted({str(f.parent.relative_to(root)) for f in files})
    class_names = sorted(labels - {AMBIGUOUS})
    return _by_class_index(f"{len(files)} files in {', '.join(folders)}/", class_names, parsed, None)


def _by_class_index(source: str, class_names: list[str], parsed: dict,
                    class_map: Path | None) -> tuple[str, list[str], Videos, int]:
    """Replace class names by their index in ``class_names``, dropping (and counting) Ambiguous intervals."""
    index = {name: i for i, name in enumerate(class_names)}
    videos: Videos = {}
    ambiguous = 0
    for vid, (subset, fps, duration, annotations) in parsed.items():
        indexed = []
        for label, start, end in annotations:
            if label == AMBIGUOUS:
                ambiguous += 1
                continue
            if label not in index:
                raise ManifestError(f"{class_map}: video {vid!r} has label {label!r}, which is not listed")
            indexed.append((index[label], start, end))
        videos[vid] = (subset, fps, duration, indexed)
    return source, class_names, videos, ambiguous


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


def _is_number_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _optional_positive(value, where: str, key: str) -> float | None:
    if value is None:
        return None
    if not _is_finite(value) or value <= 0:
        raise ManifestError(f"{where}: '{key}' must be a positive number, got {value!r}")
    return float(value)
