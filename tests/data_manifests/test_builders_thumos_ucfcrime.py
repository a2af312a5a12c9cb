"""THUMOS14 (ActionFormer JSON, TAD) and UCF-Crime (official lists + temporal annotation, AD) builders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_manifests.builders.thumos14 import build_thumos14
from data_manifests.builders.ucf_crime import build_ucf_crime
from data_manifests.registry import resolve_dataset
from data_manifests.schema import ManifestError


def touch(root: Path, rel: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


# ---------------------------------------------------------------------------- THUMOS14
def thumos_db() -> dict:
    return {"version": "Thumos14-30fps", "database": {
        "video_validation_0000051": {
            "subset": "Validation", "duration": 169.95, "fps": 30.0,
            "annotations": [
                {"label": "Billiards", "segment": [2.2, 3.0], "segment(frames)": [66.0, 90.0], "label_id": 2},
                {"label": "Billiards", "segment": [0.2, 1.1], "segment(frames)": [6.0, 33.0], "label_id": 2},
                {"label": "Billiards", "segment": [0.2, 1.1], "segment(frames)": [6.0, 33.0], "label_id": 2},  # dup
            ]},
        "video_test_0000004": {
            "subset": "Test", "duration": 33.5, "fps": 29.97,
            "annotations": [
                {"label": "CliffDiving", "segment": [0.5, 4.1], "label_id": 4},
                {"label": "Diving", "segment": [0.5, 4.1], "label_id": 7},  # same interval, other class: kept
                {"label": "Diving", "segment": [5.0, 5.0], "label_id": 7},  # empty: skipped
            ]},
        "video_test_0001292": {"subset": "Test", "duration": 20.0, "fps": 30.0, "annotations": []},
    }}


def make_thumos(root: Path, db: dict | None = None, *, nested: bool = True, videos: bool = False) -> Path:
    path = root / "annotations" / "thumos14.json" if nested else root / "thumos14.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(thumos_db() if db is None else db, indent=1).replace("\n", "\r\n").encode())
    if videos:
        touch(root, "validation/video_validation_0000051.mp4")
        touch(root, "TH14_test_set_mp4/video_test_0000004.mp4")
        touch(root, "TH14_test_set_mp4/video_test_0001292.mp4")
    return root


def test_thumos14_segments_classes_splits(tmp_path):
    m = build_thumos14(make_thumos(tmp_path), 1)
    assert m.header.name == "thumos14" and m.header.task == "tad"
    assert m.header.class_names == ["Billiards", "CliffDiving", "Diving"]  # ordered by label_id 2, 4, 7 -> 0, 1, 2
    recs = {r.video_id: r for r in m.records}
    r = recs["video_validation_0000051"]
    assert (r.split, r.label, r.fps, r.duration) == ("train", None, 30.0, 169.95)
    assert [s.to_json() for s in r.segments] == [[0.2, 1.1, 0], [2.2, 3.0, 0]]  # sorted, duplicate removed
    r = recs["video_test_0000004"]
    assert r.split == "test" and [s.to_json() for s in r.segments] == [[0.5, 4.1, 1], [0.5, 4.1, 2]]
    assert recs["video_test_0001292"].segments == [] and recs["video_test_0001292"].split == "test"
    assert r.path == "test/video_test_0000004.mp4"  # no video folder exists: the first candidate
    assert "1 duplicate and 1 empty annotations dropped" in m.header.description


def test_thumos14_finds_videos_in_official_folders(tmp_path):
    make_thumos(tmp_path, nested=False, videos=True)
    m = resolve_dataset("thumos14", data_root=tmp_path)
    paths = {r.video_id: r.path for r in m.records}
    assert paths == {"video_validation_0000051": "validation/video_validation_0000051.mp4",
                     "video_test_0000004": "TH14_test_set_mp4/video_test_0000004.mp4",
                     "video_test_0001292": "TH14_test_set_mp4/video_test_0001292.mp4"}


def test_thumos14_missing_json_names_expected_path(tmp_path):
    with pytest.raises(ManifestError) as err:
        build_thumos14(tmp_path, 1)
    assert str(tmp_path.resolve() / "annotations" / "thumos14.json") in str(err.value)


def test_thumos14_malformed_json_names_line(tmp_path):
    (tmp_path / "thumos14.json").write_text('{\n "database": {\n  "v": {"subset": "Test",}\n }\n}\n')
    with pytest.raises(ManifestError, match=r"thumos14\.json:3: not valid JSON"):
        build_thumos14(tmp_path, 1)


def _mutate(change):
    db = thumos_db()
    change(db["database"])
    return db


@pytest.mark.parametrize("db, message", [
    ({"database": {}}, "expected a non-empty object under \"database\""),
    ([], "expected a non-empty object under \"database\""),
    (_mutate(lambda d: d["video_test_0000004"].update(subset="Training")), "subset 'Training' is not Validation or Test"),
    (_mutate(lambda d: d["video_test_0000004"]["annotations"][0].update(segment=[1.0])), "'segment' must be"),
    (_mutate(lambda d: d["video_test_0000004"]["annotations"][0].update(segment=[-1.0, 2.0])), "starts before 0"),
    (_mutate(lambda d: d["video_test_0000004"]["annotations"][0].update(label_id="4")), "'label_id' must be an integer"),
    (_mutate(lambda d: d["video_test_0000004"]["annotations"][1].update(label_id=4)),
     "label_id 4 names both 'CliffDiving' and 'Diving'"),
    (_mutate(lambda d: d["video_test_0000004"]["annotations"][0].update(label="Billiards")),
     "label 'Billiards' has both label_id 2 and 4"),
    (_mutate(lambda d: d["video_test_0000004"].update(fps=0)), "'fps' must be a positive number"),
])
def test_thumos14_bad_content(tmp_path, db, message):
    make_thumos(tmp_path, db)
    with pytest.raises(ManifestError, match=message) as err:
        build_thumos14(tmp_path, 1)
    assert "thumos14.json" in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------- UCF-Crime
UCF_TRAIN = (
    "Abuse/Abuse001_x264.mp4\r\n"
    "Arrest/Arrest001_x264.mp4\r\n"
    "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\r\n"
    "Training_Normal_Videos_Anomaly/Normal_Videos002_x264.mp4\r\n"
)
UCF_TEST = (
    "Abuse/Abuse028_x264.mp4\n"
    "Arson/Arson011_x264.mp4\n"
    "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4\n"
)
UCF_TEMPORAL = (
    "Abuse028_x264.mp4  Abuse  165  240  -1  -1\n"
    "Arson011_x264.mp4  Arson  150  420  680  1267\n"
    "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n"
    "Burglary005_x264.mp4  Burglary  4710  5040  -1  -1\n"   # not in the test list: unused
)


def make_crime(root: Path, *, temporal: str = UCF_TEMPORAL, test: str = UCF_TEST, official: bool = True,
               temporal_name: str = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt") -> Path:
    base = root / "UCF_Crimes" if official else root
    splits = base / "Anomaly_Detection_splits" if official else root
    splits.mkdir(parents=True, exist_ok=True)
    (splits / "Anomaly_Train.txt").write_bytes(UCF_TRAIN.encode())
    (splits / "Anomaly_Test.txt").write_bytes(test.encode())
    (root / temporal_name).write_text(temporal)
    for line in (UCF_TRAIN + test).split():
        touch(base / "Videos" if official else root, line)
    return root


def test_ucf_crime_labels_splits_segments(tmp_path):
    m = build_ucf_crime(make_crime(tmp_path), 1)
    assert m.header.name == "ucf-crime" and m.header.task == "ad" and m.header.class_names == ["normal", "anomaly"]
    assert m.root_dir == (tmp_path / "UCF_Crimes" / "Videos").resolve()
    recs = {r.video_id: r for r in m.records}
    assert (len(m.split("train")), len(m.split("test"))) == (4, 3) and "Burglary005_x264" not in recs
    assert (recs["Abuse001_x264"].label, recs["Abuse001_x264"].segments) == (1, [])
    assert (recs["Normal_Videos001_x264"].label, recs["Normal_Videos001_x264"].split) == (0, "train")
    r = recs["Abuse028_x264"]
    assert (r.split, r.label, r.fps, r.path) == ("test", 1, None, "Abuse/Abuse028_x264.mp4")
    # frames 165..240 (1-based, inclusive) at 30 fps -> [164/30, 240/30] seconds
    assert [s.to_json() for s in r.segments] == [[164 / 30, 8.0, 1]]
    assert [s.to_json() for s in recs["Arson011_x264"].segments] == [[149 / 30, 14.0, 1], [679 / 30, 1267 / 30, 1]]
    assert (recs["Normal_Videos_003_x264"].label, recs["Normal_Videos_003_x264"].segments) == (0, [])
    assert round(r.segments[0].start * 30) == 164 and round(r.segments[0].end * 30) == 240  # frames recoverable


def test_ucf_crime_flat_layout_and_short_annotation_name_through_registry(tmp_path):
    make_crime(tmp_path, official=False, temporal_name="Temporal_Anomaly_Annotation.txt")
    m = resolve_dataset("ucf-crime", data_root=tmp_path)
    assert len(m.records) == 7 and m.root_dir == tmp_path.resolve()


@pytest.mark.parametrize("missing, expected, first_candidate", [
    ("UCF_Crimes/Anomaly_Detection_splits/Anomaly_Train.txt", "UCF-Crime training list not found",
     "Anomaly_Detection_splits/Anomaly_Train.txt"),
    ("UCF_Crimes/Anomaly_Detection_splits/Anomaly_Test.txt", "UCF-Crime test list not found",
     "Anomaly_Detection_splits/Anomaly_Test.txt"),
    ("Temporal_Anomaly_Annotation_for_Testing_Videos.txt", "UCF-Crime temporal annotation of the test videos not found",
     "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"),
])
def test_ucf_crime_missing_files_name_expected_paths(tmp_path, missing, expected, first_candidate):
    make_crime(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(ManifestError, match=expected) as err:
        build_ucf_crime(tmp_path, 1)
    msg = str(err.value)
    assert f"expected {tmp_path.resolve() / first_candidate} (or " in msg and "\n" not in msg


@pytest.mark.parametrize("temporal, test, message", [
    ("Abuse028_x264.mp4 Abuse 165 240 -1\n", UCF_TEST, r"Temporal_Anomaly_Annotation_for_Testing_Videos\.txt:1: expected"),
    ("Abuse028_x264.mp4 Abuse 165 x -1 -1\n", UCF_TEST, r"\.txt:1: frame numbers must be integers"),
    ("Abuse028_x264.mp4 Abuse 240 165 -1 -1\n", UCF_TEST, r"\.txt:1: interval 240\.\.165 is not a frame range"),
    ("Abuse028_x264.mp4 Abuse -1 -1 -1 -1\n", UCF_TEST, r"\.txt:1: class 'Abuse' is anomalous but no interval"),
    ("Normal_Videos_003_x264.mp4 Normal 1 5 -1 -1\n", UCF_TEST, r"\.txt:1: a Normal video must have -1"),
    (UCF_TEMPORAL + "Abuse028_x264.mp4 Abuse 1 2 -1 -1\n", UCF_TEST, r"\.txt:5: 'Abuse028_x264\.mp4' is annotated twice"),
    ("Abuse028_x264.mp4 Abuse 165 240 -1 -1\n", UCF_TEST, r"Anomaly_Test\.txt:2: test video 'Arson011_x264\.mp4' has no line"),
    (UCF_TEMPORAL, UCF_TEST + "Abuse/Abuse029 x264.mp4\n", r"Anomaly_Test\.txt:4: expected '<Folder>/<video>\.mp4'"),
    (UCF_TEMPORAL, "Testing_Normal_Videos_Anomaly/Abuse028_x264.mp4\n", r"Anomaly_Test\.txt:1: 'Abuse028_x264\.mp4' is listed"),
])
def test_ucf_crime_malformed_lines(tmp_path, temporal, test, message):
    make_crime(tmp_path, temporal=temporal, test=test)
    with pytest.raises(ManifestError, match=message):
        build_ucf_crime(tmp_path, 1)


def test_ucf_crime_one_fold(tmp_path):
    with pytest.raises(ManifestError, match="fold must be one of"):
        build_ucf_crime(make_crime(tmp_path), 2)
