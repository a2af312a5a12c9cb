"""PA-HMDB51 builder on fixtures in the official PrivacyAttributes/<action>.json format + HMDB51 split files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_manifests.builders.pa_hmdb51 import PA_ATTRIBUTE_NAMES, build_pa_hmdb51, video_attributes
from data_manifests.registry import resolve_dataset
from data_manifests.schema import ManifestError

HMDB_SPLITS = {  # class -> fold -> "<video> <id>" lines
    "brush_hair": {1: ["bh_a_0.avi 1 ", "bh_b_1.avi 2 ", "bh_c_2.avi 0 ", "bh_d_3.avi 1 "],
                   2: ["bh_a_0.avi 2 ", "bh_b_1.avi 1 ", "bh_c_2.avi 1 ", "bh_d_3.avi 0 "]},
    "cartwheel": {1: ["cw_a_0.avi 2 ", "cw_b_1.avi 1 "], 2: ["cw_a_0.avi 1 ", "cw_b_1.avi 2 "]},
    "kick_ball": {1: ["kb_a_0.avi 1 "], 2: ["kb_a_0.avi 2 "]},  # a class without PA annotations
}


def attrs(skin, face, gender, nudity, relationship, review=True):
    return {"skin_color": skin, "relationship": relationship, "face": face, "review": review, "nudity": nudity,
            "gender": gender, "note": ""}


PA_JSON = {
    "brush_hair": {
        # face partially then completely visible; female; semi-nudity in one range only
        "bh_a_0.avi": attrs([[0, 141, 1]], [[0, 128, 1], [129, 141, 2]], [[0, 141, 2]],
                            [[0, 21, 0], [22, 60, 2], [61, 141, 0]], [[0, 141, 0]]),
        # nothing identifiable anywhere
        "bh_b_1.avi": attrs([[0, 93, 0], [94, 200, 0]], [[0, 200, 0]], [[0, 200, 0]], [[0, 200, 0]], [[0, 200, 0]]),
        # annotated but id 0 in split 1
        "bh_c_2.avi": attrs([[0, 50, 3]], [[0, 50, 0]], [[0, 50, 1]], [[0, 50, 0]], [[0, 50, 1]]),
        # several people: list values
        "bh_d_3.avi": attrs([[0, 229, [1, 2]]], [[0, 229, 0]], [[0, 229, [1, 2]]], [[0, 229, 0]], [[0, 229, 1]]),
    },
    "cartwheel": {
        "cw_a_0.avi": attrs([[0, 80, 2]], [[0, 10, 0], [11, 80, 1]], [[0, 80, 1]], [[0, 80, 1]], [[0, 80, 0]]),
        "not_in_hmdb.avi": attrs([[0, 9, 1]], [[0, 9, 1]], [[0, 9, 1]], [[0, 9, 1]], [[0, 9, 1]]),
    },
}


def make_pa(root: Path, annotations: dict | None = None, folder: str = "PrivacyAttributes",
            videos: bool = False) -> Path:
    split_dir = root / "testTrainMulti_7030_splits"
    split_dir.mkdir(parents=True, exist_ok=True)
    for cls, folds in HMDB_SPLITS.items():
        for fold, lines in folds.items():
            (split_dir / f"{cls}_test_split{fold}.txt").write_text("\n".join(lines) + "\n")
    pa_dir = root / folder
    pa_dir.mkdir(parents=True, exist_ok=True)
    for action, content in (PA_JSON if annotations is None else annotations).items():
        text = json.dumps(content, indent=4)
        if action == "cartwheel":
            text = text.replace("\n", "\r\n")  # one CRLF file
        (pa_dir / f"{action}.json").write_bytes(text.encode())
    if videos:
        for cls, folds in HMDB_SPLITS.items():
            for line in folds[1]:
                name, flag = line.split()
                if flag != "0":
                    (root / "hmdb51_org" / cls).mkdir(parents=True, exist_ok=True)
                    (root / "hmdb51_org" / cls / name).write_bytes(b"x")
    return root


def test_pa_hmdb51_video_level_attributes_labels_splits(tmp_path):
    m = build_pa_hmdb51(make_pa(tmp_path), 1)
    assert m.header.name == "pa-hmdb51" and m.header.task == "action"
    assert m.header.attribute_names == list(PA_ATTRIBUTE_NAMES) == ["skin_color", "face", "gender", "nudity",
                                                                   "relationship"]
    assert m.header.class_names == ["brush_hair", "cartwheel", "kick_ball"]  # all HMDB51 classes: labels comparable
    recs = {r.video_id: r for r in m.records}
    assert set(recs) == {"bh_a_0", "bh_b_1", "bh_d_3", "cw_a_0"}  # only annotated videos of split 1
    assert (recs["bh_a_0"].attributes, recs["bh_a_0"].split, recs["bh_a_0"].label) == ([1, 1, 1, 1, 0], "train", 0)
    assert recs["bh_b_1"].attributes == [0, 0, 0, 0, 0] and recs["bh_b_1"].split == "test"
    assert recs["bh_d_3"].attributes == [1, 0, 1, 0, 1]
    assert (recs["cw_a_0"].attributes, recs["cw_a_0"].split, recs["cw_a_0"].label) == ([1, 1, 1, 1, 0], "test", 1)
    assert recs["cw_a_0"].path == "cartwheel/cw_a_0.avi" and recs["cw_a_0"].subject is None
    assert "4 of 6 annotated videos" in m.header.description and "2 left out" in m.header.description


def test_pa_hmdb51_fold2_and_nested_folder(tmp_path):
    m = build_pa_hmdb51(make_pa(tmp_path, folder="PA-HMDB51/PrivacyAttributes"), 2)
    recs = {r.video_id: r for r in m.records}
    assert set(recs) == {"bh_a_0", "bh_b_1", "bh_c_2", "cw_a_0"}
    assert recs["bh_c_2"].attributes == [1, 0, 1, 0, 1] and recs["bh_c_2"].split == "train"
    assert recs["bh_a_0"].split == "test" and recs["cw_a_0"].split == "train"


def test_pa_hmdb51_through_registry(tmp_path):
    make_pa(tmp_path, videos=True)
    assert len(resolve_dataset("pa-hmdb51", data_root=tmp_path, fold=1).records) == 4


def test_pa_hmdb51_missing_annotations_names_expected_path(tmp_path):
    with pytest.raises(ManifestError) as err:
        build_pa_hmdb51(tmp_path, 1)
    assert str(tmp_path / "PrivacyAttributes") + "/<action>.json" in str(err.value) and "\n" not in str(err.value)


def test_pa_hmdb51_needs_hmdb_split_files(tmp_path):
    (tmp_path / "PrivacyAttributes").mkdir()
    (tmp_path / "PrivacyAttributes" / "cartwheel.json").write_text(json.dumps(PA_JSON["cartwheel"]))
    with pytest.raises(ManifestError, match="HMDB51 split files not found"):
        build_pa_hmdb51(tmp_path, 1)


def test_pa_hmdb51_malformed_json_names_file_and_line(tmp_path):
    make_pa(tmp_path)
    (tmp_path / "PrivacyAttributes" / "cartwheel.json").write_text('{\n "cw_a_0.avi": {\n  "face": [[0, 1, 1]],,\n}\n}')
    with pytest.raises(ManifestError, match=r"cartwheel\.json:3: not valid JSON"):
        build_pa_hmdb51(tmp_path, 1)


def test_pa_hmdb51_action_mismatch(tmp_path):
    moved = {"brush_hair": {**PA_JSON["brush_hair"], "cw_a_0.avi": PA_JSON["cartwheel"]["cw_a_0.avi"]}}
    make_pa(tmp_path, annotations=moved)
    with pytest.raises(ManifestError, match=r"annotated under 'brush_hair' but HMDB51 lists it under 'cartwheel'"):
        build_pa_hmdb51(tmp_path, 1)


def test_pa_hmdb51_no_annotated_video_in_split(tmp_path):
    make_pa(tmp_path, annotations={"cartwheel": {"not_in_hmdb.avi": PA_JSON["cartwheel"]["not_in_hmdb.avi"]}})
    with pytest.raises(ManifestError, match="no PA-HMDB51 video"):
        build_pa_hmdb51(tmp_path, 1)


@pytest.mark.parametrize("entry, message", [
    ({k: v for k, v in PA_JSON["cartwheel"]["cw_a_0.avi"].items() if k != "nudity"}, "'nudity' must be a list"),
    ({**PA_JSON["cartwheel"]["cw_a_0.avi"], "face": [[10, 2, 1]]}, "is not \\[start_frame, end_frame, value\\]"),
    ({**PA_JSON["cartwheel"]["cw_a_0.avi"], "face": [[0, 2]]}, "is not \\[start_frame, end_frame, value\\]"),
    ({**PA_JSON["cartwheel"]["cw_a_0.avi"], "gender": [[0, 2, -1]]}, "not a non-negative integer"),
    ({**PA_JSON["cartwheel"]["cw_a_0.avi"], "gender": [[0, 2, "M"]]}, "not a non-negative integer"),
    ({**PA_JSON["cartwheel"]["cw_a_0.avi"], "gender": [[0, 2, []]]}, "not a non-negative integer"),
    ([1, 2], "expected an object"),
])
def test_pa_hmdb51_bad_entries_name_file_and_video(tmp_path, entry, message):
    make_pa(tmp_path, annotations={"cartwheel": {"cw_a_0.avi": entry}})
    with pytest.raises(ManifestError, match=message) as err:
        build_pa_hmdb51(tmp_path, 1)
    assert "cartwheel.json: video 'cw_a_0.avi'" in str(err.value)


def test_video_attributes_any_range_rule():
    entry = attrs([[0, 5, 0]], [[0, 2, 0], [3, 5, 2]], [[0, 5, 0]], [[0, 5, 0]], [[0, 5, 0]])
    assert video_attributes(entry, "x") == [0, 1, 0, 0, 0]
    assert video_attributes(attrs([], [], [], [], []), "x") == [0, 0, 0, 0, 0]  # no range: not visible
