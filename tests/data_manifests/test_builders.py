"""UCF101 / HMDB51 builders on tiny fixtures written in the official split-file formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_manifests.builders.hmdb51 import build_hmdb51
from data_manifests.builders.ucf101 import build_ucf101
from data_manifests.registry import resolve_dataset
from data_manifests.schema import Manifest, ManifestError

# ---------------------------------------------------------------------------- UCF101 fixtures
# classInd deliberately not alphabetical, to show that classInd order (not sorting) sets the labels.
UCF_CLASS_IND = "1 YoYo\n2 ApplyEyeMakeup\n3 Basketball\n"
UCF_SPLITS = {
    # fold 1: groups 08..25 train, 01..07 test (as in the official split 1)
    "trainlist01.txt": (
        "YoYo/v_YoYo_g08_c01.avi 1\r\n"
        "\r\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 2\r\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c02.avi 2\r\n"
        "Basketball/v_Basketball_g10_c03.avi 3\r\n"
    ),
    "testlist01.txt": (
        "YoYo/v_YoYo_g01_c01.avi\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n"
        "\n"
        "Basketball/v_Basketball_g07_c04.avi\n"
    ),
    # fold 2: other groups go to test
    "trainlist02.txt": (
        "YoYo/v_YoYo_g01_c01.avi 1\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 2\n"
        "Basketball/v_Basketball_g07_c04.avi 3\n"
    ),
    "testlist02.txt": (
        "YoYo/v_YoYo_g08_c01.avi\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c02.avi\n"
        "Basketball/v_Basketball_g10_c03.avi\n"
    ),
}


def make_ucf(root: Path, *, nested: bool = True, videos: bool = False) -> Path:
    split_dir = root / "ucfTrainTestlist" if nested else root
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "classInd.txt").write_bytes(UCF_CLASS_IND.replace("\n", "\r\n").encode())  # CRLF file
    for name, text in UCF_SPLITS.items():
        (split_dir / name).write_bytes(text.encode())
    if videos:
        for text in (UCF_SPLITS["trainlist01.txt"], UCF_SPLITS["testlist01.txt"]):
            for line in text.splitlines():
                if line.strip():
                    path = root / "UCF-101" / line.split()[0]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b"placeholder")
    return root


def by_id(manifest: Manifest) -> dict:
    return {r.video_id: r for r in manifest.records}


def test_ucf101_fold1_labels_splits_subjects(tmp_path):
    m = build_ucf101(make_ucf(tmp_path), 1)
    assert m.header.name == "ucf101" and m.header.task == "action"
    assert m.header.class_names == ["YoYo", "ApplyEyeMakeup", "Basketball"]
    assert Path(m.header.root) == (tmp_path / "UCF-101").resolve() and Path(m.header.root).is_absolute()
    assert m.root_dir == (tmp_path / "UCF-101").resolve()
    assert len(m.split("train")) == 4 and len(m.split("test")) == 3 and len(m.records) == 7
    recs = by_id(m)
    r = recs["v_ApplyEyeMakeup_g09_c02"]
    assert (r.path, r.split, r.label, r.subject) == ("ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c02.avi", "train", 1, "g09")
    assert r.fps is None and r.duration is None and r.n_frames is None and r.media == "video"
    r = recs["v_Basketball_g07_c04"]  # test line: label from the folder name via classInd
    assert (r.split, r.label, r.subject) == ("test", 2, "g07")
    assert recs["v_YoYo_g01_c01"].label == 0
    assert m.resolve_path(r) == (tmp_path / "UCF-101" / "Basketball" / "v_Basketball_g07_c04.avi").resolve()
    # the official splits keep groups apart
    assert not {x.subject for x in m.split("train")} & {x.subject for x in m.split("test")}


def test_ucf101_fold2(tmp_path):
    m = build_ucf101(make_ucf(tmp_path), fold=2)
    recs = by_id(m)
    assert len(m.split("train")) == 3 and len(m.split("test")) == 4
    assert recs["v_YoYo_g08_c01"].split == "test" and recs["v_YoYo_g01_c01"].split == "train"
    assert recs["v_Basketball_g10_c03"].label == 2


def test_ucf101_split_files_directly_under_root(tmp_path):
    m = build_ucf101(make_ucf(tmp_path, nested=False), 1)
    assert len(m.records) == 7 and Path(m.header.root) == (tmp_path / "UCF-101").resolve()


def test_ucf101_does_not_check_videos_and_round_trips(tmp_path):
    m = build_ucf101(make_ucf(tmp_path), 1)  # no videos exist: building still works
    loaded = Manifest.load(m.save(tmp_path / "out" / "ucf101.jsonl"))
    assert loaded.records == m.records and loaded.root_dir == m.root_dir
    assert loaded.fingerprint() == m.fingerprint()


@pytest.mark.parametrize("fold", [0, 4, -1, True, "1"])
def test_ucf101_bad_fold(tmp_path, fold):
    with pytest.raises(ManifestError, match="fold must be one of"):
        build_ucf101(make_ucf(tmp_path), fold)


def test_ucf101_missing_class_index_names_expected_paths(tmp_path):
    with pytest.raises(ManifestError) as err:
        build_ucf101(tmp_path, 1)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "ucfTrainTestlist" / "classInd.txt") in msg and str(tmp_path / "classInd.txt") in msg


def test_ucf101_missing_split_file(tmp_path):
    make_ucf(tmp_path)
    (tmp_path / "ucfTrainTestlist" / "testlist02.txt").unlink()
    with pytest.raises(ManifestError, match="split file not found") as err:
        build_ucf101(tmp_path, 2)
    assert str(tmp_path / "ucfTrainTestlist" / "testlist02.txt") in str(err.value)


def test_ucf101_unknown_class_names_file_and_line(tmp_path):
    make_ucf(tmp_path)
    path = tmp_path / "ucfTrainTestlist" / "testlist01.txt"
    path.write_text("YoYo/v_YoYo_g01_c01.avi\n\nSkyDiving/v_SkyDiving_g01_c01.avi\n")
    with pytest.raises(ManifestError, match=r"testlist01\.txt:3: class 'SkyDiving'.*not in classInd\.txt"):
        build_ucf101(tmp_path, 1)


def test_ucf101_train_index_must_match_folder(tmp_path):
    make_ucf(tmp_path)
    (tmp_path / "ucfTrainTestlist" / "trainlist01.txt").write_text("YoYo/v_YoYo_g08_c01.avi 3\n")
    with pytest.raises(ManifestError, match=r"trainlist01\.txt:1: class index 3 disagrees with folder 'YoYo'"):
        build_ucf101(tmp_path, 1)


def test_ucf101_bad_class_index_line(tmp_path):
    make_ucf(tmp_path)
    (tmp_path / "ucfTrainTestlist" / "classInd.txt").write_text("1 YoYo\nApplyEyeMakeup\n")
    with pytest.raises(ManifestError, match=r"classInd\.txt:2: expected"):
        build_ucf101(tmp_path, 1)


def test_ucf101_video_in_train_and_test_is_a_duplicate(tmp_path):
    make_ucf(tmp_path)
    (tmp_path / "ucfTrainTestlist" / "testlist01.txt").write_text("YoYo/v_YoYo_g08_c01.avi\n")
    with pytest.raises(ManifestError, match="duplicate video_id 'v_YoYo_g08_c01'"):
        build_ucf101(tmp_path, 1)


# ---------------------------------------------------------------------------- HMDB51 fixtures
HMDB_SPLITS = {
    # class -> fold -> lines "<video> <id>" (1 train, 2 test, 0 unused); trailing spaces as in the real files
    "kick_ball": {
        1: ["kb_a_0.avi 1 ", "kb_b_0.avi 2 ", "kb_c_0.avi 0 ", "kb_d_0.avi 1 "],
        2: ["kb_a_0.avi 2 ", "kb_b_0.avi 1 ", "kb_c_0.avi 1 ", "kb_d_0.avi 0 "],
    },
    "brush_hair": {
        1: ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 ", "bh_x_1.avi 2 ", "bh_y_2.avi 0 "],
        2: ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi 0 ", "bh_x_1.avi 1 ", "bh_y_2.avi 2 "],
    },
    "cartwheel": {
        1: ["cw_1.avi 2 ", "cw_2.avi 1 "],
        2: ["cw_1.avi 1 ", "cw_2.avi 2 "],
    },
}


def make_hmdb(root: Path, *, split_dir: str | None = "testTrainMulti_7030_splits", video_dir: str | None = None) -> Path:
    folder = root / split_dir if split_dir else root
    folder.mkdir(parents=True, exist_ok=True)
    for cls, folds in HMDB_SPLITS.items():
        for fold, lines in folds.items():
            eol = "\r\n" if cls == "brush_hair" else "\n"  # one class file with CRLF
            (folder / f"{cls}_test_split{fold}.txt").write_bytes((eol.join(lines) + eol + eol).encode())
    if video_dir:
        for cls, folds in HMDB_SPLITS.items():
            (root / video_dir / cls).mkdir(parents=True, exist_ok=True)
            for line in folds[1]:
                name, flag = line.split()
                if flag != "0":
                    (root / video_dir / cls / name).write_bytes(b"placeholder")
    return root


def test_hmdb51_fold1(tmp_path):
    make_hmdb(tmp_path)
    # files that are not class split files of this fold are ignored
    (tmp_path / "testTrainMulti_7030_splits" / "._kick_ball_test_split1.txt").write_text("junk\n")
    m = build_hmdb51(tmp_path, 1)
    assert m.header.name == "hmdb51" and m.header.task == "action"
    assert m.header.class_names == ["brush_hair", "cartwheel", "kick_ball"]
    assert Path(m.header.root) == (tmp_path / "hmdb51_org").resolve()
    recs = by_id(m)
    assert len(m.records) == 7  # 9 lines, two with id 0 skipped
    assert "kb_c_0" not in recs and "bh_y_2" not in recs
    assert len(m.split("train")) == 4 and len(m.split("test")) == 3
    r = recs["April_09_brush_hair_u_nm_np1_ba_goo_0"]
    assert (r.path, r.split, r.label, r.subject) == ("brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "train", 0, None)
    assert (recs["cw_1"].split, recs["cw_1"].label) == ("test", 1)
    assert (recs["kb_b_0"].split, recs["kb_b_0"].label) == ("test", 2)


def test_hmdb51_fold2(tmp_path):
    m = build_hmdb51(make_hmdb(tmp_path), fold=2)
    recs = by_id(m)
    assert len(m.records) == 7
    assert "kb_d_0" not in recs and "April_09_brush_hair_u_nm_np1_ba_goo_0" not in recs
    assert recs["kb_c_0"].split == "train" and recs["bh_y_2"].split == "test" and recs["kb_a_0"].split == "test"


def test_hmdb51_alternative_layouts(tmp_path):
    # split files directly under root, videos in root/videos
    m = build_hmdb51(make_hmdb(tmp_path, split_dir=None, video_dir="videos"), 1)
    assert Path(m.header.root) == (tmp_path / "videos").resolve()
    m.check_files()
    # hmdb51_org/ wins over videos/ when both exist
    (tmp_path / "hmdb51_org").mkdir()
    assert Path(build_hmdb51(tmp_path, 1).header.root) == (tmp_path / "hmdb51_org").resolve()


@pytest.mark.parametrize("fold", [0, 4, True])
def test_hmdb51_bad_fold(tmp_path, fold):
    with pytest.raises(ManifestError, match="fold must be one of"):
        build_hmdb51(make_hmdb(tmp_path), fold)


def test_hmdb51_missing_split_files(tmp_path):
    with pytest.raises(ManifestError, match="HMDB51 split files not found") as err:
        build_hmdb51(tmp_path, 1)
    assert str(tmp_path / "testTrainMulti_7030_splits") + "/<class>_test_split1.txt" in str(err.value)
    # the folder exists but holds no files for fold 3
    make_hmdb(tmp_path)
    with pytest.raises(ManifestError, match=r"<class>_test_split3\.txt"):
        build_hmdb51(tmp_path, 3)


def test_hmdb51_bad_split_id_names_file_and_line(tmp_path):
    make_hmdb(tmp_path)
    (tmp_path / "testTrainMulti_7030_splits" / "cartwheel_test_split1.txt").write_text("cw_1.avi 1\ncw_2.avi 3\n")
    with pytest.raises(ManifestError, match=r"cartwheel_test_split1\.txt:2: expected"):
        build_hmdb51(tmp_path, 1)


# ---------------------------------------------------------------------------- through the registry
def test_registry_ucf101_missing_videos_one_line(tmp_path):
    make_ucf(tmp_path)
    with pytest.raises(ManifestError) as err:
        resolve_dataset("ucf101", data_root=tmp_path, fold=1)
    msg = str(err.value)
    assert "\n" not in msg
    assert "7 of 7 files of dataset 'ucf101' are missing" in msg
    assert "v_YoYo_g08_c01.avi" in msg  # the first record's file


def test_registry_ucf101_with_placeholder_videos(tmp_path):
    make_ucf(tmp_path, videos=True)
    m = resolve_dataset("ucf101", data_root=str(tmp_path), fold=1)
    assert len(m.records) == 7 and m.header.class_names[0] == "YoYo"
    # fold 2 names the same files (in other splits), so it resolves too
    assert len(resolve_dataset("ucf101", data_root=tmp_path, fold=2).split("test")) == 4


def test_registry_hmdb51_with_placeholder_videos(tmp_path):
    make_hmdb(tmp_path, video_dir="hmdb51_org")
    assert len(resolve_dataset("hmdb51", data_root=tmp_path, fold=1).records) == 7
    with pytest.raises(ManifestError, match="missing"):  # fold 2 uses kb_c_0 / bh_y_2, not created
        resolve_dataset("hmdb51", data_root=tmp_path, fold=2)
