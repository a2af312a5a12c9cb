"""CASIA-B (file/folder name parsing, gallery/probe walk order) and Kinetics-400 (official CSVs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_manifests.builders.casia_b import build_casia_b, parse_casia_path
from data_manifests.builders.kinetics400 import build_kinetics400
from data_manifests.registry import resolve_dataset
from data_manifests.schema import ManifestError


def touch(root: Path, rel: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


# ---------------------------------------------------------------------------- CASIA-B
CASIA_FILES = [
    "videos/001-nm-01-090.avi", "videos/001-nm-04-090.avi", "videos/001-nm-05-090.avi", "videos/001-nm-06-000.avi",
    "videos/001-bg-01-090.avi", "videos/001-cl-02-180.avi",
    "002/nm-02/018.avi", "002/nm-06/018.avi", "002/bg-02/036.avi",   # folder layout
    "videos/readme.txt", "videos/001-xx-01-090.avi",                   # ignored
]


def make_casia(root: Path) -> Path:
    for rel in CASIA_FILES:
        touch(root, rel)
    return root


def test_parse_casia_path():
    assert parse_casia_path(("videos", "124-CL-02-180.avi")) == ("124", "cl", 2, "180")
    assert parse_casia_path(("002", "nm-06", "018.avi")) == ("002", "nm", 6, "018")
    assert parse_casia_path(("nm-06", "018.avi")) is None and parse_casia_path(("001-nm-1-90.avi",)) is None


def test_casia_b_gallery_probe_normal_walks(tmp_path):
    m = build_casia_b(make_casia(tmp_path), 1)
    assert m.header.name == "casia-b" and m.header.class_names == ["001", "002"]
    recs = {r.video_id: r for r in m.records}
    assert set(recs) == {"001-nm-01-090", "001-nm-04-090", "001-nm-05-090", "001-nm-06-000", "002-nm-02-018",
                         "002-nm-06-018"}
    assert {k for k, r in recs.items() if r.split == "train"} == {"001-nm-01-090", "001-nm-04-090", "002-nm-02-018"}
    r = recs["002-nm-06-018"]
    assert (r.split, r.subject, r.label, r.path) == ("test", "002", 1, "002/nm-06/018.avi")
    assert recs["001-nm-05-090"].path == "videos/001-nm-05-090.avi" and recs["001-nm-05-090"].label == 0
    assert "3 bg/cl videos left out" in m.header.description


def test_casia_b_fold2_adds_bag_and_coat_probes(tmp_path):
    m = build_casia_b(make_casia(tmp_path), 2)
    recs = {r.video_id: r for r in m.records}
    assert len(recs) == 9
    assert all(recs[k].split == "test" for k in ("001-bg-01-090", "001-cl-02-180", "002-bg-02-036"))
    assert len(m.split("train")) == 3


def test_casia_b_registry_and_errors(tmp_path):
    assert len(resolve_dataset("casia-b", data_root=make_casia(tmp_path)).records) == 6
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match=r"no CASIA-B videos found .*001-nm-01-090\.avi"):
        build_casia_b(empty, 1)
    with pytest.raises(ManifestError, match="fold must be one of"):
        build_casia_b(tmp_path, 0)


def test_casia_b_same_walk_in_both_layouts_is_a_duplicate(tmp_path):
    make_casia(tmp_path)
    touch(tmp_path, "001/nm-01/090.avi")
    with pytest.raises(ManifestError, match="duplicate video_id '001-nm-01-090'"):
        build_casia_b(tmp_path, 1)


# ---------------------------------------------------------------------------- Kinetics-400
K400_CSV = {
    "train.csv": (
        "label,youtube_id,time_start,time_end,split,is_cc\r\n"
        "abseiling,---QUuC4vJs,3,13,train,0\r\n"
        '"zumba",--0NTAs-fA0,29,39,train,0\r\n'
        "\"air drumming\",--nQbRBEz2s,104,114,train,0\r\n"
    ),
    "validate.csv": (
        "label,youtube_id,time_start,time_end,split\n"
        "zumba,-3Zp9T46ZkI,0,10,val\n"
        "abseiling,0wR5jVB-WPk,417.0,427.0,validate\n"
    ),
    "test.csv": "youtube_id,time_start,time_end,split\n--33Lscn6sk,4,14,test\n",
}


def make_k400(root: Path, *, csv_dir: str = "annotations", files: dict | None = None, videos: bool = False) -> Path:
    folder = root / csv_dir
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (K400_CSV if files is None else files).items():
        (folder / name).write_bytes(text.encode())
    for split in ("train", "val", "test"):
        (root / split).mkdir(exist_ok=True)
    if videos:
        for rel in ("train/---QUuC4vJs_000003_000013.mp4", "train/--0NTAs-fA0_000029_000039.mp4",
                    "train/--nQbRBEz2s_000104_000114.mp4", "val/-3Zp9T46ZkI_000000_000010.mp4",
                    "val/0wR5jVB-WPk_000417_000427.mp4", "test/--33Lscn6sk_000004_000014.mp4"):
            touch(root, rel)
    return root


def test_kinetics400_labels_splits_paths(tmp_path):
    m = build_kinetics400(make_k400(tmp_path), 1)
    assert m.header.name == "kinetics400" and m.header.class_names == ["abseiling", "air drumming", "zumba"]
    recs = {r.video_id: r for r in m.records}
    r = recs["---QUuC4vJs_000003_000013"]
    assert (r.split, r.label, r.path) == ("train", 0, "train/---QUuC4vJs_000003_000013.mp4")
    assert recs["--nQbRBEz2s_000104_000114"].label == 1
    r = recs["0wR5jVB-WPk_000417_000427"]
    assert (r.split, r.label, r.path) == ("val", 0, "val/0wR5jVB-WPk_000417_000427.mp4")
    r = recs["--33Lscn6sk_000004_000014"]
    assert (r.split, r.label) == ("test", None)
    assert (len(m.split("train")), len(m.split("val")), len(m.split("test"))) == (3, 2, 1)


def test_kinetics400_registry_csvs_in_root_and_optional_test(tmp_path):
    make_k400(tmp_path, csv_dir=".", videos=True)
    assert len(resolve_dataset("kinetics400", data_root=tmp_path).records) == 6
    (tmp_path / "test.csv").unlink()
    assert not build_kinetics400(tmp_path, 1).split("test")


def test_kinetics400_missing_train_csv(tmp_path):
    with pytest.raises(ManifestError) as err:
        build_kinetics400(tmp_path, 1)
    msg = str(err.value)
    assert "Kinetics-400 train annotations not found" in msg and str(tmp_path.resolve() / "annotations" / "train.csv") in msg


@pytest.mark.parametrize("train_text, message", [
    ("label,youtube_id,time_start,time_end\nzumba,a,0,10\n", r"train\.csv:1: header lacks column\(s\) \['split'\]"),
    ("label,youtube_id,time_start,time_end,split\nzumba,a,0,10,val\n", r"train\.csv:2: split 'val' does not match"),
    ("label,youtube_id,time_start,time_end,split\nzumba,a,0,10,train\nzumba,b,1.5,10,train\n",
     r"train\.csv:3: time_start '1\.5' is not a whole"),
    ("label,youtube_id,time_start,time_end,split\nzumba,a,x,10,train\n", r"train\.csv:2: time_start 'x' is not a number"),
    ("label,youtube_id,time_start,time_end,split\nzumba,a,10,10,train\n", r"train\.csv:2: time_end 10 is not after"),
    ("label,youtube_id,time_start,time_end,split\nzumba,a,0,10,train\nzumba,b,0,10\n",
     r"train\.csv:3: expected 5 comma-separated values"),
    ("label,youtube_id,time_start,time_end,split\nzumba,a/b,0,10,train\n", r"train\.csv:2: youtube_id 'a/b'"),
    ("label,youtube_id,time_start,time_end,split\n,a,0,10,train\n", "the train CSV has no labelled rows"),
])
def test_kinetics400_malformed_lines(tmp_path, train_text, message):
    make_k400(tmp_path, files={**K400_CSV, "train.csv": train_text})
    with pytest.raises(ManifestError, match=message):
        build_kinetics400(tmp_path, 1)


def test_kinetics400_val_label_must_be_a_train_class(tmp_path):
    make_k400(tmp_path, files={**K400_CSV, "validate.csv": "label,youtube_id,time_start,time_end,split\nyoga,q,0,10,val\n"})
    with pytest.raises(ManifestError, match=r"validate\.csv:2: label 'yoga' is not a class of the train CSV"):
        build_kinetics400(tmp_path, 1)


def test_casia_b_follows_symlinked_folders_without_looping(tmp_path):
    data = make_casia(tmp_path / "data")
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked").symlink_to(data / "videos", target_is_directory=True)
    (data / "videos" / "loop").symlink_to(data / "videos", target_is_directory=True)  # a cycle
    m = build_casia_b(root, 1)
    assert {r.path for r in m.records} == {"linked/001-nm-01-090.avi", "linked/001-nm-04-090.avi",
                                           "linked/001-nm-05-090.avi", "linked/001-nm-06-000.avi"}
