"""VISPR builder on a tiny fixture in the official per-image annotation JSON format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_manifests.builders.vispr import ATTRIBUTE_NAMES, build_vispr
from data_manifests.registry import resolve_dataset
from data_manifests.schema import Manifest, ManifestError

# split folder -> image id -> label list (as in VISPR: many attributes, the 7 of the protocol among them)
ANNOTATIONS = {
    "train2017": {
        "2017_10001": ["a1_age_approx", "a17_color", "a4_gender", "a9_face_complete"],
        "2017_10002": ["a0_safe"],
        "2017_10003": ["a10_face_partial", "a12_semi_nudity", "a64_rel_personal", "a65_rel_social"],
    },
    "val2017": {"2017_20001": ["a65_rel_soci", "a4_gender"]},  # the paper's truncated spelling
    "test2017": {
        "2017_30001": ["a17_color", "a16_race"],
        "2017_30002": ["a13_full_nudity", "a12_semi_nudity"],
    },
}


def make_vispr(root: Path, *, splits=("train2017", "val2017", "test2017"), nested: bool = True,
               images: bool = False) -> Path:
    for folder in splits:
        anno_dir = root / "annotations" / folder if nested else root / folder
        anno_dir.mkdir(parents=True, exist_ok=True)
        for image_id, labels in ANNOTATIONS[folder].items():
            text = json.dumps({"id": image_id, "image_path": f"images/{folder}/{image_id}.jpg", "labels": labels},
                              indent=2)
            if image_id == "2017_10003":
                text = text.replace("\n", "\r\n")  # one CRLF file
            (anno_dir / f"{image_id}.json").write_bytes(text.encode())
            if images:
                image = root / "images" / folder / f"{image_id}.jpg"
                image.parent.mkdir(parents=True, exist_ok=True)
                image.write_bytes(b"placeholder")
    return root


def by_id(manifest: Manifest) -> dict:
    return {r.video_id: r for r in manifest.records}


def test_vispr_splits_attributes_and_paths(tmp_path):
    m = build_vispr(make_vispr(tmp_path), 1)
    assert m.header.name == "vispr" and m.header.task == "static" and m.header.class_names == []
    assert m.header.attribute_names == list(ATTRIBUTE_NAMES) == [
        "a17_color", "a4_gender", "a9_face_complete", "a10_face_partial", "a12_semi_nudity",
        "a64_rel_personal", "a65_rel_social",
    ]
    assert m.root_dir == tmp_path.resolve()
    assert (len(m.split("train")), len(m.split("val")), len(m.split("test"))) == (3, 1, 2)
    recs = by_id(m)
    assert recs["2017_10001"].attributes == [1, 1, 1, 0, 0, 0, 0]
    assert recs["2017_10002"].attributes == [0, 0, 0, 0, 0, 0, 0]
    assert recs["2017_10003"].attributes == [0, 0, 0, 1, 1, 1, 1]
    assert recs["2017_20001"].attributes == [0, 1, 0, 0, 0, 0, 1] and recs["2017_20001"].split == "val"
    assert recs["2017_30002"].attributes == [0, 0, 0, 0, 1, 0, 0] and recs["2017_30002"].split == "test"
    r = recs["2017_30001"]
    assert (r.path, r.media, r.label, r.subject, r.n_frames) == ("images/test2017/2017_30001.jpg", "image", None, None, 1)
    assert m.resolve_path(r) == tmp_path.resolve() / "images" / "test2017" / "2017_30001.jpg"


def test_vispr_flat_layout_and_optional_val(tmp_path):
    m = build_vispr(make_vispr(tmp_path, splits=("train2017", "test2017"), nested=False), 1)
    assert len(m.records) == 5 and not m.split("val")
    assert "train2017, test2017" in m.header.description


def test_vispr_through_registry_with_images(tmp_path):
    make_vispr(tmp_path, images=True)
    m = resolve_dataset("vispr", data_root=tmp_path)
    assert len(m.records) == 6
    loaded = Manifest.load(m.save(tmp_path / "out" / "vispr.jsonl"))
    assert loaded.fingerprint() == m.fingerprint() and loaded.root_dir == m.root_dir


def test_vispr_missing_annotations_names_expected_path(tmp_path):
    with pytest.raises(ManifestError) as err:
        build_vispr(tmp_path, 1)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path.resolve() / "annotations" / "train2017") in msg
    make_vispr(tmp_path, splits=("train2017",))
    with pytest.raises(ManifestError, match=r"test2017 annotations not found"):
        build_vispr(tmp_path, 1)


def test_vispr_malformed_json_names_file_and_line(tmp_path):
    make_vispr(tmp_path)
    bad = tmp_path / "annotations" / "train2017" / "2017_10002.json"
    bad.write_text('{\n  "id": "2017_10002",\n  "labels": [,]\n}\n')
    with pytest.raises(ManifestError, match=r"2017_10002\.json:3: not valid JSON"):
        build_vispr(tmp_path, 1)


@pytest.mark.parametrize("content, message", [
    ({"id": "x", "image_path": "images/x.jpg", "labels": "a17_color"}, "'labels' must be a list"),
    ({"id": "x", "labels": []}, "'image_path' must be a string"),
    ({"id": "x", "image_path": "/etc/passwd", "labels": []}, "expected a relative path"),
    ({"id": "x", "image_path": "../x.jpg", "labels": []}, "expected a relative path"),
    (["not", "an", "object"], "expected a JSON object"),
])
def test_vispr_bad_annotation_content(tmp_path, content, message):
    make_vispr(tmp_path)
    (tmp_path / "annotations" / "test2017" / "2017_30001.json").write_text(json.dumps(content))
    with pytest.raises(ManifestError, match=message) as err:
        build_vispr(tmp_path, 1)
    assert "2017_30001.json" in str(err.value)


def test_vispr_has_one_fold(tmp_path):
    with pytest.raises(ManifestError, match="VISPR fold must be one of"):
        build_vispr(make_vispr(tmp_path), 2)
