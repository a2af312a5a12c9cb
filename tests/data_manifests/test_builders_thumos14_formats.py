"""THUMOS14 from OpenTAD's annotation JSON and from the official per-class text files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_manifests.builders.thumos14 import build_thumos14
from data_manifests.registry import resolve_dataset
from data_manifests.schema import ManifestError

# OpenTAD's thumos_14_anno.json: subsets "training" (THUMOS14 validation videos) / "validation" (test videos),
# "frame" is the frame count, annotations carry names only; "Ambiguous" marks intervals to ignore.
OPENTAD_DB = {"database": {
    "video_validation_0000051": {"subset": "training", "duration": 10.0, "frame": 300, "annotations": [
        {"segment": [2.2, 3.0], "label": "Billiards"},
        {"segment": [0.2, 1.1], "label": "Billiards"},
        {"segment": [4.0, 5.0], "label": "Ambiguous"},
    ]},
    "video_test_0000004": {"subset": "validation", "duration": 20.0, "frame": 500, "annotations": [
        {"segment": [0.5, 4.1], "label": "Diving"},
        {"segment": [0.5, 4.1], "label": "CliffDiving"},
    ]},
    "video_test_0001292": {"subset": "test", "duration": 8.0, "annotations": [
        {"segment": [1.0, 2.0], "label": "Ambiguous"},
    ]},
}}

# The official release: one file per class and subset, "video_name start_s end_s" (trailing spaces, CRLF).
OFFICIAL_FILES = {
    "Billiards_val.txt": "video_validation_0000051 2.2 3.0 \r\nvideo_validation_0000051 0.2 1.1\r\n",
    "CliffDiving_test.txt": "video_test_0000004 0.5 4.1\n",
    "Diving_test.txt": "video_test_0000004 0.5 4.1\nvideo_test_0000004 0.5 4.1\n",  # duplicate dropped
    "Diving_val.txt": "",
    "Ambiguous_val.txt": "video_validation_0000051 4.0 5.0\n",
    "Ambiguous_test.txt": "video_test_0001292 1.0 2.0\n",
}


def write_opentad(root: Path, db: dict | None = None, class_map: list[str] | None = None) -> Path:
    folder = root / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thumos_14_anno.json").write_text(json.dumps(OPENTAD_DB if db is None else db))
    if class_map is not None:
        (folder / "category_idx.txt").write_text("\n".join(class_map) + "\n")
    return root


def write_official(root: Path, files: dict[str, str] | None = None, folder: str = "annotation") -> Path:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name, text in (OFFICIAL_FILES if files is None else files).items():
        (root / folder / name).write_bytes(text.encode())
    return root


def segments(manifest) -> dict[str, list]:
    return {r.video_id: [s.to_json() for s in r.segments] for r in manifest.records}


def test_opentad_json_subsets_frames_and_ambiguous(tmp_path):
    m = build_thumos14(write_opentad(tmp_path))
    assert m.header.class_names == ["Billiards", "CliffDiving", "Diving"]  # no category_idx.txt: alphabetical
    splits = {r.video_id: r.split for r in m.records}
    assert splits == {"video_validation_0000051": "train", "video_test_0000004": "test", "video_test_0001292": "test"}
    assert segments(m) == {"video_validation_0000051": [[0.2, 1.1, 0], [2.2, 3.0, 0]],
                           "video_test_0000004": [[0.5, 4.1, 1], [0.5, 4.1, 2]],
                           "video_test_0001292": []}  # only Ambiguous: kept, no segments
    fps = {r.video_id: (r.fps, r.duration) for r in m.records}
    assert fps["video_test_0000004"] == (25.0, 20.0) and fps["video_test_0001292"] == (None, 8.0)
    assert "thumos_14_anno.json (opentad format)" in m.header.description
    assert "2 Ambiguous intervals dropped" in m.header.description


def test_opentad_class_order_follows_category_idx(tmp_path):
    m = build_thumos14(write_opentad(tmp_path, class_map=["Diving", "Billiards", "CliffDiving", "HighJump"]))
    assert m.header.class_names == ["Diving", "Billiards", "CliffDiving", "HighJump"]
    assert segments(m)["video_test_0000004"] == [[0.5, 4.1, 0], [0.5, 4.1, 2]]


def test_opentad_label_missing_from_category_idx_is_one_line(tmp_path):
    write_opentad(tmp_path, class_map=["Billiards", "Diving"])
    with pytest.raises(ManifestError, match="has label 'CliffDiving', which is not listed") as err:
        build_thumos14(tmp_path)
    assert "category_idx.txt" in str(err.value) and "\n" not in str(err.value)


def test_opentad_unknown_subset_is_one_line(tmp_path):
    db = json.loads(json.dumps(OPENTAD_DB))
    db["database"]["video_test_0000004"]["subset"] = "Validation-set"
    write_opentad(tmp_path, db)
    with pytest.raises(ManifestError, match="subset 'Validation-set' is not one of OpenTAD's training, "
                                            "validation, test"):
        build_thumos14(tmp_path)


def test_official_text_files(tmp_path):
    m = build_thumos14(write_official(tmp_path))
    assert m.header.class_names == ["Billiards", "CliffDiving", "Diving"]  # Ambiguous is not a class
    assert {r.video_id: r.split for r in m.records} == {
        "video_validation_0000051": "train", "video_test_0000004": "test", "video_test_0001292": "test"}
    assert segments(m) == {"video_validation_0000051": [[0.2, 1.1, 0], [2.2, 3.0, 0]],
                           "video_test_0000004": [[0.5, 4.1, 1], [0.5, 4.1, 2]],
                           "video_test_0001292": []}
    assert all(r.fps is None and r.duration is None for r in m.records)
    assert "1 duplicate and 0 empty annotations dropped, 2 Ambiguous intervals dropped" in m.header.description


def test_official_files_in_the_unpacked_release_folders(tmp_path):
    write_official(tmp_path, {"Billiards_val.txt": OFFICIAL_FILES["Billiards_val.txt"]},
                   "TH14_Temporal_annotations_validation/annotation")
    write_official(tmp_path, {"Diving_test.txt": OFFICIAL_FILES["Diving_test.txt"]},
                   "TH14_Temporal_Annotations_Test/annotations/annotation")
    m = build_thumos14(tmp_path)
    assert m.header.class_names == ["Billiards", "Diving"] and len(m.records) == 2


@pytest.mark.parametrize("files, message", [
    ({"Billiards_val.txt": "video_validation_0000051 2.2\n"},
     r"Billiards_val\.txt:1: expected 'video_name start_s end_s'"),
    ({"Billiards_val.txt": "v 1.0 x\n"}, r"Billiards_val\.txt:1: expected"),
    ({"Billiards_val.txt": "v -1.0 2.0\n"}, "starts before 0"),
    ({"Billiards_val.txt": "v 1.0 2.0\n", "Diving_test.txt": "v 1.0 2.0\n"},
     "video 'v' is listed in both the validation and the test annotation files"),
])
def test_official_bad_lines_are_one_line(tmp_path, files, message):
    write_official(tmp_path, files)
    with pytest.raises(ManifestError, match=message) as err:
        build_thumos14(tmp_path)
    assert "\n" not in str(err.value)


def test_format_detection_order_and_explicit_choice(tmp_path):
    write_official(tmp_path)
    write_opentad(tmp_path)
    assert "(opentad format)" in build_thumos14(tmp_path).header.description  # OpenTAD JSON before text files
    assert "(official format)" in build_thumos14(tmp_path, annotation_format="official").header.description
    with pytest.raises(ManifestError, match="annotation format must be one of actionformer, opentad, official"):
        build_thumos14(tmp_path, annotation_format="csv")
    with pytest.raises(ManifestError, match=r"annotations not found: expected \S*/annotations/thumos14\.json"):
        build_thumos14(tmp_path, annotation_format="actionformer")


def test_no_annotations_names_every_format(tmp_path):
    with pytest.raises(ManifestError) as err:
        build_thumos14(tmp_path)
    message = str(err.value)
    assert "thumos14.json (ActionFormer)" in message and "thumos_14_anno.json (OpenTAD)" in message
    assert "<Class>_val.txt" in message and "\n" not in message


def test_registry_resolves_opentad_layout_with_videos(tmp_path):
    write_opentad(tmp_path)
    for rel in ("validation/video_validation_0000051.mp4", "TH14_test_set_mp4/video_test_0000004.mp4",
                "TH14_test_set_mp4/video_test_0001292.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    m = resolve_dataset("thumos14", data_root=tmp_path)
    assert {r.path for r in m.records} == {"validation/video_validation_0000051.mp4",
                                           "TH14_test_set_mp4/video_test_0000004.mp4",
                                           "TH14_test_set_mp4/video_test_0001292.mp4"}
