"""PA-HMDB51 (Wu et al., TPAMI 2020): the 592 HMDB51 videos with frame-range privacy annotations.

Accepted layout under ``root`` (``--data-root``)::

    root/PrivacyAttributes/<action>.json            the official annotation files (one per action;
      or root/PA-HMDB51/PrivacyAttributes/...         the VITA-Group/PA-HMDB51 repository's folder)
    + the HMDB51 files read by ``build_hmdb51``     (videos and testTrainMulti_7030_splits)

Each ``<action>.json`` maps a video file name to its annotations::

    {"<video>.avi": {"skin_color": [[0, 280, 1]], "face": [[0, 128, 1], [129, 141, 2]],
                     "gender": [[0, 229, [1, 2]]], "nudity": [[0, 280, 0]],
                     "relationship": [[0, 280, 0]], "review": true, "note": ""}, ...}

Every attribute is a list of ``[start_frame, end_frame, value]`` ranges (inclusive). Values, as
defined by the dataset's annotation GUI: skin_color 0 unidentifiable, 1 white, 2 brown/yellow,
3 black (a list for several people); face 0 invisible, 1 partially, 2 completely visible; gender
0 unidentifiable, 1 male, 2 female ([1, 2] both); nudity 0 none, 1 partial, 2 semi-nudity;
relationship 0 unidentifiable, 1 identifiable.

Video-level attributes (``skin_color, face, gender, nudity, relationship``, the dataset's five):
an attribute is 1 if ANY annotated frame range has a non-zero value for it (the attribute is visible /
identifiable somewhere in the video), else 0.

Labels, classes and splits come from ``build_hmdb51(root, fold)``: label = the HMDB51 class index
(51 classes, so labels are comparable with HMDB51), split = the official 70/30 split ``fold``
(id 1 train, 2 test). Annotated videos that split ``fold`` does not use (id 0) or that the split
files do not list are left out; the description records how many.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from data_manifests.builders._common import load_json
from data_manifests.builders.hmdb51 import build_hmdb51
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord

NAME = "pa-hmdb51"
PA_ATTRIBUTE_NAMES = ("skin_color", "face", "gender", "nudity", "relationship")
ANNOTATION_DIRS = ("PrivacyAttributes", "PA-HMDB51/PrivacyAttributes", "PA-HMDB51-master/PrivacyAttributes")


def build_pa_hmdb51(root: Path, fold: int = 1) -> Manifest:
    """The annotated HMDB51 videos of split ``fold`` with video-level binary attributes."""
    root = Path(root).expanduser()
    annotation_dir = _annotation_dir(root)
    base = build_hmdb51(root, fold)
    by_id = {record.video_id: record for record in base.records}
    records: list[VideoRecord] = []
    left_out = 0
    n_annotated = 0
    for json_path in sorted(annotation_dir.glob("*.json")):
        action = json_path.stem
        annotations = load_json(json_path, "PA-HMDB51 annotation file")
        if not isinstance(annotations, dict):
            raise ManifestError(f"{json_path}: expected a JSON object 'video file name -> attribute ranges'")
        for video_name in sorted(annotations):
            n_annotated += 1
            attributes = video_attributes(annotations[video_name], f"{json_path}: video {video_name!r}")
            video_id = PurePosixPath(video_name.replace("\\", "/")).stem
            record = by_id.get(video_id)
            if record is None:  # id 0 in this fold's split file, or not listed there at all
                left_out += 1
                continue
            record_action = PurePosixPath(record.path).parent.name
            if record_action != action:
                raise ManifestError(
                    f"{json_path}: video {video_name!r} is annotated under '{action}' but HMDB51 lists it "
                    f"under '{record_action}'"
                )
            records.append(VideoRecord(
                video_id=record.video_id, path=record.path, split=record.split, label=record.label,
                attributes=attributes, subject=None, media="video",
            ))
    if not records:
        raise ManifestError(
            f"no PA-HMDB51 video of {annotation_dir} is in HMDB51 split {fold} ({n_annotated} annotated videos; "
            f"are the HMDB51 split files for the same videos in {root}?)"
        )
    header = ManifestHeader(
        name=NAME,
        task="action",
        class_names=list(base.header.class_names),
        attribute_names=list(PA_ATTRIBUTE_NAMES),
        root=base.header.root,
        description=(
            f"PA-HMDB51: {len(records)} of {n_annotated} annotated videos in HMDB51 split {fold} "
            f"({left_out} left out: id 0 in that split or not listed); an attribute is 1 "
            f"if any annotated frame range has a non-zero value"
        ),
    )
    return Manifest(header, records, base.root_dir)


def _annotation_dir(root: Path) -> Path:
    for folder in ANNOTATION_DIRS:
        candidate = root / folder
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    raise ManifestError(
        f"PA-HMDB51 annotations not found: expected {root / ANNOTATION_DIRS[0]}/<action>.json "
        f"(the PrivacyAttributes folder of the official PA-HMDB51 release)"
    )


def video_attributes(entry, where: str) -> list[int]:
    """The five video-level 0/1 attributes of one annotated video (1 = non-zero in any range)."""
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected an object with the keys {list(PA_ATTRIBUTE_NAMES)}")
    attributes = []
    for name in PA_ATTRIBUTE_NAMES:
        ranges = entry.get(name)
        if not isinstance(ranges, list):
            raise ManifestError(f"{where}: '{name}' must be a list of [start_frame, end_frame, value] ranges")
        present = False
        for item in ranges:
            if not (isinstance(item, list) and len(item) == 3 and _is_int(item[0]) and _is_int(item[1])
                    and 0 <= item[0] <= item[1]):
                raise ManifestError(f"{where}: '{name}' range {item!r} is not [start_frame, end_frame, value]")
            values = item[2] if isinstance(item[2], list) else [item[2]]
            if not values or not all(_is_int(v) and v >= 0 for v in values):
                raise ManifestError(f"{where}: '{name}' range {item!r} has a value that is not a non-negative "
                                    f"integer (or a list of them)")
            present = present or any(v > 0 for v in values)
        attributes.append(int(present))
    return attributes


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
