"""NTU RGB+D 60 and Toyota Smarthome builders (file-name parsing, subject splits) and the gender table."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_manifests.builders.gender import read_gender_table
from data_manifests.builders.ntu60 import CROSS_SUBJECT_TRAIN, NTU60_CLASSES, build_ntu60, parse_ntu_name
from data_manifests.builders.ntu60 import read_gender_table as ntu_read_gender_table
from data_manifests.builders.toyota_smarthome import CS_CLASSES, build_toyota_smarthome
from data_manifests.registry import resolve_dataset
from data_manifests.schema import ManifestError

NTU_FILES = [
    "nturgb+d_rgb/S001C001P001R001A001_rgb.avi",   # performer 1: cross-subject train
    "nturgb+d_rgb/S001C002P003R002A004_rgb.avi",   # performer 3: test; brushing hair
    "nturgb+d_rgb/S017C003P038R001A060_rgb.avi",   # last NTU-60 setup/action; performer 38 train
    "nturgb+d_rgb/S010C001P021R002A050_rgb.avi",   # performer 21: test
    "nturgb+d_rgb/S018C001P045R001A061_rgb.avi",   # NTU-120 only (setup 18, action 61): skipped
    "nturgb+d_rgb/S005C001P010R001A120_rgb.avi",   # NTU-120 action: skipped
    "nturgb+d_rgb/README.txt",                     # not a video
    "nturgb+d_rgb/S001C001P001R001A002_rgb.txt",   # not a video
]


def touch(root: Path, rel: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def make_ntu(root: Path) -> Path:
    for rel in NTU_FILES:
        touch(root, rel)
    return root


def test_ntu60_classes_and_subject_list():
    assert len(NTU60_CLASSES) == 60 and NTU60_CLASSES[3] == "brushing hair" and NTU60_CLASSES[59].startswith("walking apart")
    assert len(CROSS_SUBJECT_TRAIN) == 20 and 38 in CROSS_SUBJECT_TRAIN and 3 not in CROSS_SUBJECT_TRAIN
    assert parse_ntu_name("S001C002P003R002A013") == {"setup": 1, "camera": 2, "performer": 3, "replication": 2,
                                                      "action": 13}
    assert parse_ntu_name("S001C002P003R002A013_depth") is None and parse_ntu_name("readme") is None


def test_ntu60_cross_subject(tmp_path):
    m = build_ntu60(make_ntu(tmp_path), 1)
    assert m.header.name == "ntu60" and m.header.task == "action" and m.header.class_names == list(NTU60_CLASSES)
    recs = {r.video_id: r for r in m.records}
    assert set(recs) == {"S001C001P001R001A001", "S001C002P003R002A004", "S017C003P038R001A060",
                         "S010C001P021R002A050"}
    r = recs["S001C002P003R002A004"]
    assert (r.label, r.subject, r.split, r.path) == (3, "P003", "test", "nturgb+d_rgb/S001C002P003R002A004_rgb.avi")
    assert (recs["S001C001P001R001A001"].split, recs["S001C001P001R001A001"].label) == ("train", 0)
    assert (recs["S017C003P038R001A060"].split, recs["S017C003P038R001A060"].label) == ("train", 59)
    assert recs["S010C001P021R002A050"].split == "test"
    assert "2 NTU RGB+D 120 files skipped" in m.header.description and "cross-subject" in m.header.description
    assert m.root_dir == tmp_path.resolve()


def test_ntu60_cross_view(tmp_path):
    m = build_ntu60(make_ntu(tmp_path), 2)
    splits = {r.video_id: r.split for r in m.records}
    assert splits == {"S001C001P001R001A001": "test", "S001C002P003R002A004": "train",
                      "S017C003P038R001A060": "train", "S010C001P021R002A050": "test"}


def test_ntu60_through_registry(tmp_path):
    m = resolve_dataset("ntu60", data_root=make_ntu(tmp_path), fold=1)
    assert len(m.records) == 4


def test_ntu60_errors(tmp_path):
    with pytest.raises(ManifestError, match=r"no NTU RGB\+D 60 videos found .*S001C001P001R001A001_rgb\.avi"):
        build_ntu60(tmp_path, 1)
    with pytest.raises(ManifestError, match="folder not found"):
        build_ntu60(tmp_path / "absent", 1)
    with pytest.raises(ManifestError, match="fold must be one of"):
        build_ntu60(make_ntu(tmp_path), 3)


# ---------------------------------------------------------------------------- gender table
def test_gender_table_reads_and_normalizes(tmp_path):
    path = tmp_path / "genders.csv"
    path.write_bytes("\ufeffSubject , Gender,notes\r\nP001,male,x\r\nP002, F ,\r\n\r\nP003,FEMALE,\r\n".encode())
    assert read_gender_table(path) == {"P001": "male", "P002": "female", "P003": "female"}
    assert ntu_read_gender_table is read_gender_table  # the NTU module exposes the same helper


@pytest.mark.parametrize("text, message", [
    ("subject,sex\nP001,male\n", r"genders\.csv:1: header lacks column\(s\) \['gender'\]"),
    ("subject,gender\nP001,male\nP002,unknown\n", r"genders\.csv:3: gender 'unknown' is not female/male"),
    ("subject,gender\nP001,male\nP002,female\nP001,male\n", r"genders\.csv:4: subject 'P001' is listed again \(first on line 2\)"),
    ("subject,gender\n,male\n", r"genders\.csv:2: empty subject"),
    ("subject,gender\nP001,male,extra\n", r"genders\.csv:2: expected 2 comma-separated values"),
    ("subject,gender\n", r"has no rows"),
    ("", r"empty gender table"),
])
def test_gender_table_errors(tmp_path, text, message):
    path = tmp_path / "genders.csv"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_gender_table(path)


def test_gender_table_missing(tmp_path):
    with pytest.raises(ManifestError, match=r"gender table not found: expected .*nope\.csv"):
        read_gender_table(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------- Toyota Smarthome
TOYOTA_FILES = [
    "mp4/Cook.Cleandishes_p02_r00_v02_c03.mp4",   # subject 2: test
    "mp4/Drink.Fromcup_p03_r01_v05_c01.mp4",      # subject 3: train
    "mp4/WatchTV_p25_r00_v01_c07.mp4",            # subject 25: train, last class
    "mp4/Walk_p18_r02_v11_c02.mp4",               # subject 18: test
    "mp4/Cook_p03_r00_v01_c01.mp4",               # not a CS class: skipped
    "mp4/notes.txt",
]


def make_toyota(root: Path) -> Path:
    for rel in TOYOTA_FILES:
        touch(root, rel)
    return root


def test_toyota_cross_subject(tmp_path):
    m = build_toyota_smarthome(make_toyota(tmp_path), 1)
    assert m.header.name == "toyota-smarthome" and len(m.header.class_names) == 31
    assert m.header.class_names == sorted(m.header.class_names) == list(CS_CLASSES)
    recs = {r.video_id: r for r in m.records}
    assert set(recs) == {"Cook.Cleandishes_p02_r00_v02_c03", "Drink.Fromcup_p03_r01_v05_c01",
                         "WatchTV_p25_r00_v01_c07", "Walk_p18_r02_v11_c02"}
    r = recs["Cook.Cleandishes_p02_r00_v02_c03"]
    assert (r.label, r.subject, r.split, r.path) == (0, "p02", "test", "mp4/Cook.Cleandishes_p02_r00_v02_c03.mp4")
    r = recs["Drink.Fromcup_p03_r01_v05_c01"]
    assert (r.label, r.subject, r.split) == (CS_CLASSES.index("Drink.Fromcup"), "p03", "train")
    assert (recs["WatchTV_p25_r00_v01_c07"].label, recs["WatchTV_p25_r00_v01_c07"].split) == (30, "train")
    assert recs["Walk_p18_r02_v11_c02"].split == "test"
    assert "1 clips of activities outside the 31 CS classes skipped" in m.header.description


def test_toyota_through_registry_and_errors(tmp_path):
    assert len(resolve_dataset("toyota-smarthome", data_root=make_toyota(tmp_path)).records) == 4
    with pytest.raises(ManifestError, match="fold must be one of"):
        build_toyota_smarthome(tmp_path, 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match=r"no Toyota Smarthome clips found .*Cook\.Cleandishes_p02_r00_v02_c03\.mp4"):
        build_toyota_smarthome(empty, 1)
    with pytest.raises(ManifestError, match="Toyota Smarthome folder not found"):
        build_toyota_smarthome(tmp_path / "absent", 1)
