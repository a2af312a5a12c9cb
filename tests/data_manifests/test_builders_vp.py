"""VP-HMDB51 / VP-UCF101: STPrivacy label pickles joined with HMDB51/UCF101, and the data-only unpickler."""

from __future__ import annotations

import os
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest

from data_manifests.builders._safe_pickle import load_data_pickle
from data_manifests.builders.vp import VP_ATTRIBUTE_NAMES, build_vp_hmdb51, build_vp_ucf101, video_stem
from data_manifests.registry import resolve_dataset
from data_manifests.schema import ManifestError

HMDB_SPLIT1 = {  # class -> "<video> <id>" lines of <class>_test_split1.txt (1 train, 2 test, 0 unused)
    "brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 ", "bh_x_1.avi 2 ", "bh_y_2.avi 0 "],
    "cartwheel": ["cw_1.avi 2 ", "cw_2.avi 1 "],
}


def make_hmdb(root: Path) -> Path:
    folder = root / "testTrainMulti_7030_splits"
    folder.mkdir(parents=True, exist_ok=True)
    for cls, lines in HMDB_SPLIT1.items():
        eol = "\r\n" if cls == "brush_hair" else "\n"
        (folder / f"{cls}_test_split1.txt").write_bytes((eol.join(lines) + eol).encode())
    return root


def make_ucf(root: Path) -> Path:
    folder = root / "ucfTrainTestlist"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classInd.txt").write_bytes(b"1 ApplyEyeMakeup\r\n2 YoYo\r\n")
    (folder / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nYoYo/v_YoYo_g09_c02.avi 2\n")
    (folder / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nYoYo/v_YoYo_g02_c03.avi\n")
    return root


def write_pickle(path: Path, obj, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


HMDB_LABELS = {
    "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi": np.array([1, 1, 0, 0, 1]),  # relative path
    "bh_x_1.avi": np.array([[0, 1, 1, 0, 0]], dtype=np.float32),  # file name, shape (1, 5), floats
    "cartwheel/cw_1": [1, 0, 0, 1, 0],  # no extension
    "brush_hair/bh_y_2.avi": (1, 1, 1, 1, 1),  # id 0 in split 1: not in the manifest, ignored
    # cw_2 has no entry -> attributes unknown
}


def test_vp_hmdb51_joins_labels_by_video(tmp_path):
    make_hmdb(tmp_path)
    write_pickle(tmp_path / "hmdb51_privacy_attribute_label.pickle", HMDB_LABELS)
    m = build_vp_hmdb51(tmp_path, 1)
    assert m.header.name == "vp-hmdb51" and m.header.task == "action"
    assert m.header.attribute_names == list(VP_ATTRIBUTE_NAMES) == ["face", "skin_color", "gender", "nudity",
                                                                   "relationship"]
    assert m.header.class_names == ["brush_hair", "cartwheel"]
    recs = {r.video_id: r for r in m.records}
    assert set(recs) == {"April_09_brush_hair_u_nm_np1_ba_goo_0", "bh_x_1", "cw_1", "cw_2"}
    r = recs["April_09_brush_hair_u_nm_np1_ba_goo_0"]
    assert (r.split, r.label, r.attributes, r.path) == (
        "train", 0, [1, 1, 0, 0, 1], "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi")
    assert recs["bh_x_1"].attributes == [0, 1, 1, 0, 0] and recs["bh_x_1"].split == "test"
    assert recs["cw_1"].attributes == [1, 0, 0, 1, 0] and recs["cw_1"].label == 1
    assert recs["cw_2"].attributes is None  # no label in the pickle: unknown, not 0
    assert "3 of 4 videos labelled" in m.header.description
    assert m.root_dir == (tmp_path / "hmdb51_org").resolve()


def test_vp_ucf101_protocol2_pickle_in_annotations_folder(tmp_path):
    make_ucf(tmp_path)
    labels = {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1": [0, 0, 1, 0, 0],  # a split-file line as key
        "YoYo\\v_YoYo_g09_c02.avi": np.array([1, 0, 1, 0, 1], dtype=np.int64),  # Windows separator
        "v_ApplyEyeMakeup_g01_c01": np.array([True, False, False, False, True]),
        "v_YoYo_g02_c03.avi": [np.int64(1), np.int64(1), 0.0, 0.0, 1.0],
    }
    write_pickle(tmp_path / "VPUCF_annotations" / "ucf101_privacy_attribute_label.pickle", labels, protocol=2)
    m = build_vp_ucf101(tmp_path, 1)
    recs = {r.video_id: r for r in m.records}
    assert recs["v_ApplyEyeMakeup_g08_c01"].attributes == [0, 0, 1, 0, 0]
    assert recs["v_YoYo_g09_c02"].attributes == [1, 0, 1, 0, 1] and recs["v_YoYo_g09_c02"].subject == "g09"
    assert recs["v_ApplyEyeMakeup_g01_c01"].attributes == [1, 0, 0, 0, 1]
    assert recs["v_YoYo_g02_c03"].attributes == [1, 1, 0, 0, 1] and recs["v_YoYo_g02_c03"].split == "test"
    assert m.header.class_names == ["ApplyEyeMakeup", "YoYo"]


def test_vp_through_registry(tmp_path):
    make_ucf(tmp_path)
    write_pickle(tmp_path / "ucf101_privacy_attribute_label.pkl", {"v_YoYo_g09_c02": [1, 1, 1, 1, 1]})
    for line in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "YoYo/v_YoYo_g09_c02.avi",
                 "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "YoYo/v_YoYo_g02_c03.avi"):
        (tmp_path / "UCF-101" / line).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "UCF-101" / line).write_bytes(b"x")
    m = resolve_dataset("vp-ucf101", data_root=tmp_path, fold=1)
    assert sum(r.attributes is not None for r in m.records) == 1


@pytest.mark.parametrize("key, stem", [
    ("brush_hair/a_b_c.avi", "a_b_c"), ("a_b_c.avi", "a_b_c"), ("a_b_c", "a_b_c"),
    ("YoYo/v_YoYo_g01_c01.avi 101", "v_YoYo_g01_c01"), ("x\\y\\v.mp4", "v"), ("name.with.dots", "name.with.dots"),
])
def test_video_stem(key, stem):
    assert video_stem(key) == stem


def test_vp_missing_pickle_names_expected_path(tmp_path):
    make_hmdb(tmp_path)
    with pytest.raises(ManifestError) as err:
        build_vp_hmdb51(tmp_path, 1)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "hmdb51_privacy_attribute_label.pickle") in msg


def test_vp_fold_and_split_files_are_checked_first(tmp_path):
    with pytest.raises(ManifestError, match="HMDB51 split files not found"):
        build_vp_hmdb51(tmp_path, 1)
    with pytest.raises(ManifestError, match="fold must be one of"):
        build_vp_ucf101(make_ucf(tmp_path), 4)


@pytest.mark.parametrize("labels, message", [
    ({"cw_1.avi": [1, 0, 1]}, "expected 5 binary labels"),
    ({"cw_1.avi": [1, 0, 2, 0, 0]}, "labels must be 0 or 1"),
    ({"cw_1.avi": ["a", "b", "c", "d", "e"]}, "expected 5 binary labels"),
    ({"cw_1.avi": [1, 0, 1, 0, 0], "cartwheel/cw_1.avi": [0, 0, 0, 0, 0]}, "name the same video with different labels"),
    ({3: [1, 0, 1, 0, 0]}, "is not a string"),
    ({}, "expected a non-empty dict"),
    ([("cw_1.avi", [1, 0, 1, 0, 0])], "expected a non-empty dict"),
    ({"unknown_video.avi": [1, 0, 1, 0, 0]}, "none of the 1 videos"),
])
def test_vp_bad_label_content(tmp_path, labels, message):
    make_hmdb(tmp_path)
    write_pickle(tmp_path / "hmdb51_privacy_attribute_label.pickle", labels)
    with pytest.raises(ManifestError, match=message) as err:
        build_vp_hmdb51(tmp_path, 1)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------- the data-only unpickler
class _RunsCode:
    """Unpickling this calls os.mkdir(marker): a stand-in for an arbitrary command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


class _PlainObject:
    def __init__(self):
        self.labels = [1, 0, 1, 0, 0]


def test_malicious_pickle_is_refused_before_running(tmp_path):
    make_hmdb(tmp_path)
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / "hmdb51_privacy_attribute_label.pickle", {"cw_1.avi": _RunsCode(marker)})
    assert any(op.name in ("GLOBAL", "STACK_GLOBAL") for op, _, _ in pickletools.genops(path.read_bytes()))
    with pytest.raises(ManifestError, match=r"refusing to load .*references (posix|os|nt)\.mkdir") as err:
        build_vp_hmdb51(tmp_path, 1)
    assert "\n" not in str(err.value)
    assert not marker.exists()  # the callable was never run


@pytest.mark.parametrize("obj, refused", [
    ({"cw_1.avi": _PlainObject()}, "_PlainObject"),
    (eval, "builtins.eval"),
    ({"x": getattr}, "builtins.getattr"),
])
def test_non_data_globals_are_refused(tmp_path, obj, refused):
    path = write_pickle(tmp_path / "labels.pickle", obj)
    with pytest.raises(ManifestError, match=f"refusing to load .*{refused}"):
        load_data_pickle(path, "labels")


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_data_pickles_load_with_every_protocol(tmp_path, protocol):
    obj = {"a.avi": np.arange(5, dtype=np.int8), "b": [np.int64(1), np.bool_(True), 0.5], "c": {1, 2},
           "d": (b"raw", "text")}
    loaded = load_data_pickle(write_pickle(tmp_path / "ok.pickle", obj, protocol=protocol), "labels")
    assert loaded["a.avi"].tolist() == [0, 1, 2, 3, 4] and loaded["c"] == {1, 2} and loaded["d"] == (b"raw", "text")
    assert loaded["b"][0] == 1 and bool(loaded["b"][1]) is True


def test_truncated_or_missing_pickle(tmp_path):
    data = pickle.dumps({"a.avi": np.ones(5)})
    (tmp_path / "cut.pickle").write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError, match=r"cannot read labels .*cut\.pickle"):
        load_data_pickle(tmp_path / "cut.pickle", "labels")
    with pytest.raises(ManifestError, match=r"labels not found: expected .*absent\.pickle"):
        load_data_pickle(tmp_path / "absent.pickle", "labels")


def test_numpy1_module_paths_are_accepted(tmp_path):
    """Label files written with numpy 1.x name numpy.core.multiarray; they must still load."""
    data = pickle.dumps({"a.avi": np.array([1, 0, 1, 0, 1])}, protocol=2)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    loaded = load_data_pickle(write_pickle_bytes(tmp_path / "old.pickle", old), "labels")
    assert loaded["a.avi"].tolist() == [1, 0, 1, 0, 1]


def write_pickle_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
