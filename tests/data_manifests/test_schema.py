"""The manifest schema: round trip, every validation error, check_files, fingerprint; registry basics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_manifests import registry
from data_manifests.registry import DatasetEntry, list_datasets, register_dataset, resolve_dataset
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, Segment, VideoRecord

HEADER = {
    "manifest": "featstore-manifest",
    "version": 1,
    "name": "tiny",
    "task": "action",
    "class_names": ["walk", "run", "jump"],
    "attribute_names": ["face", "skin", "gender"],
    "root": ".",
    "description": "test manifest",
}


def record(video_id: str = "v1", **kw) -> dict:
    rec = {"video_id": video_id, "path": f"clips/{video_id}.mp4", "split": "train", "label": 1}
    rec.update(kw)
    return rec


def write(path: Path, header: dict, *records, raw_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(header)] + [json.dumps(r) for r in records] + list(raw_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def sample_manifest(root_dir: Path) -> Manifest:
    header = ManifestHeader(
        name="tiny", task="tad", class_names=["bg", "jump"], attribute_names=["face", "skin"],
        root=".", description="round trip",
    )
    records = [
        VideoRecord("a", "clips/a.mp4", "train", label=1, attributes=[1, 0], subject="s01",
                    segments=[Segment(0.5, 2.25, 1), Segment(3.0, 4.0, 0)], fps=25.0, duration=6.4, n_frames=160),
        VideoRecord("b", "clips/b.mp4", "val", label=None, attributes=None, subject=None),
        VideoRecord("c", "stills/c.png", "test", label=0, attributes=[0, 1], media="image"),
    ]
    return Manifest(header, records, root_dir)


# ---------------------------------------------------------------------------- round trip
def test_round_trip_save_load(tmp_path):
    m = sample_manifest(tmp_path)
    path = m.save(tmp_path / "sub" / "m.jsonl")
    assert not (tmp_path / "sub" / "m.jsonl.tmp").exists()
    loaded = Manifest.load(path)
    assert loaded.header == m.header
    assert loaded.header.root == ".."  # rewritten so records still point at the same files
    assert loaded.records == m.records
    assert loaded.root_dir == tmp_path.resolve()
    assert loaded.source == path
    assert loaded.fingerprint() == m.fingerprint()
    # and once more: saving the loaded manifest gives the same bytes
    again = loaded.save(tmp_path / "sub" / "m2.jsonl")
    assert again.read_bytes() == path.read_bytes()


def test_load_skips_blank_lines_and_resolves_relative_root(tmp_path):
    (tmp_path / "data").mkdir()
    path = write(tmp_path / "m.jsonl", {**HEADER, "root": "data"}, record("v1"), raw_lines=("", "  "))
    m = Manifest.load(path)
    assert len(m.records) == 1
    assert m.resolve_path(m.records[0]) == (tmp_path / "data" / "clips" / "v1.mp4").resolve()


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        Manifest.load(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ManifestError, match="empty manifest"):
        Manifest.load(tmp_path / "empty.jsonl")


# ---------------------------------------------------------------------------- errors
def test_bad_json_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "m.jsonl", HEADER, record("v1"), raw_lines=('{"video_id": "v2", ',))
    with pytest.raises(ManifestError) as err:
        Manifest.load(path)
    assert f"{path}:3: not valid JSON" in str(err.value)


def test_non_object_line(tmp_path):
    path = write(tmp_path / "m.jsonl", HEADER, raw_lines=("[1, 2]",))
    with pytest.raises(ManifestError, match=r":2: expected a JSON object"):
        Manifest.load(path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"manifest": "something-else"}, r":1: not a featstore-manifest header"),
        ({"version": 2}, r":1: manifest version 2 is not supported"),
        ({"version": None}, r"manifest version None is not supported"),
        ({"colour": "red"}, r":1: unknown header keys \['colour'\]"),
        ({"task": "detection"}, r"task 'detection' is not one of"),
        ({"class_names": "walk"}, r"'class_names' must be a list"),
    ],
)
def test_bad_header(tmp_path, change, message):
    path = write(tmp_path / "m.jsonl", {**HEADER, **change}, record())
    with pytest.raises(ManifestError, match=message):
        Manifest.load(path)


def test_header_without_format_key(tmp_path):
    header = {k: v for k, v in HEADER.items() if k != "manifest"}
    with pytest.raises(ManifestError, match="not a featstore-manifest header"):
        Manifest.load(write(tmp_path / "m.jsonl", header, record()))


def test_header_lacks_class_names(tmp_path):
    header = {k: v for k, v in HEADER.items() if k != "class_names"}
    with pytest.raises(ManifestError, match="header lacks 'class_names'"):
        Manifest.load(write(tmp_path / "m.jsonl", header, record()))


@pytest.mark.parametrize(
    "records, message",
    [
        ([record("v1"), record("v2"), record("v1")], r"duplicate video_id 'v1'"),
        ([record("v1", label=3)], r"label 3, outside 0\.\.2"),
        ([record("v1", label=-1)], r"label -1, outside"),
        ([record("v1", label="run")], r":2: label must be an integer"),
        ([record("v1", attributes=[1, 0])], r"has 2 attributes, header names 3"),
        ([record("v1", attributes=[1, 0, 2])], r"non-binary attributes \[1, 0, 2\]"),
        ([record("v1", attributes=[1, 0, 0.5])], r":2: attributes must be a list of 0/1"),
        ([record("v1", attributes=[1, 0, "x"])], r":2: attributes must be a list of 0/1"),
        ([record("v1", split="training")], r":2: split 'training' is not one of"),
        ([record("v1", frames=12)], r":2: unknown keys \['frames'\]"),
        ([record("v1", segments=[[-1.0, 2.0, 0]])], r"empty or negative segment \[-1\.0, 2\.0, 0\]"),
        ([record("v1", segments=[[3.0, 2.0, 0]])], r"empty or negative segment"),
        ([record("v1", segments=[[0.0, 2.0, 5]])], r"segment label 5 outside the classes"),
        ([record("v1", segments=[[0.0, 2.0]])], r":2: each segment must be"),
        ([record("v1", segments=[["a", 2.0, 0]])], r":2: each segment must be"),
        ([record("v1", segments=[[0.0, 2.0, 1.5]])], r":2: each segment must be"),
        ([record("v1", fps=-25)], r":2: fps must be a non-negative number"),
        ([record("v1", n_frames=-1)], r":2: n_frames must be"),
        ([record("v1", media="audio")], r":2: media 'audio' is not one of"),
        ([record("v1", path="")], r":2: 'path' must be a non-empty string"),
    ],
)
def test_bad_records(tmp_path, records, message):
    path = write(tmp_path / "m.jsonl", HEADER, *records)
    with pytest.raises(ManifestError, match=message) as err:
        Manifest.load(path)
    assert str(path) in str(err.value)


def test_validation_also_runs_on_construction(tmp_path):
    header = ManifestHeader(name="x", task="action", class_names=["a"])
    with pytest.raises(ManifestError, match="duplicate video_id 'v'"):
        Manifest(header, [VideoRecord("v", "v.mp4", "train"), VideoRecord("v", "w.mp4", "test")], tmp_path)


# ---------------------------------------------------------------------------- check_files / fingerprint
def test_check_files_names_count_and_first_missing(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "v2.mp4").write_bytes(b"x")
    path = write(tmp_path / "m.jsonl", HEADER, record("v1"), record("v2"), record("v3"))
    m = Manifest.load(path)
    with pytest.raises(ManifestError) as err:
        m.check_files()
    msg = str(err.value)
    assert "\n" not in msg
    assert "2 of 3 files of dataset 'tiny' are missing" in msg
    assert str(tmp_path.resolve() / "clips" / "v1.mp4") in msg and "v3.mp4" not in msg
    for name in ("v1", "v3"):
        (tmp_path / "clips" / f"{name}.mp4").write_bytes(b"x")
    m.check_files()


def test_fingerprint_ignores_root_but_not_labels(tmp_path):
    a = sample_manifest(tmp_path / "a")
    b = sample_manifest(tmp_path / "b")
    b.header.root = "/somewhere/else"
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() == sample_manifest(tmp_path).fingerprint()  # stable across instances
    b.records[0].label = 0
    assert a.fingerprint() != b.fingerprint()


def test_fingerprint_stable_across_save_to_other_folder(tmp_path):
    m = sample_manifest(tmp_path)
    one = Manifest.load(m.save(tmp_path / "one" / "m.jsonl"))
    moved = Manifest(m.header, m.records, tmp_path / "elsewhere")
    two = Manifest.load(moved.save(tmp_path / "two" / "m.jsonl"))
    assert one.root_dir != two.root_dir
    assert one.fingerprint() == two.fingerprint()


def test_split_selects_records(tmp_path):
    m = sample_manifest(tmp_path)
    assert [r.video_id for r in m.split("train")] == ["a"]
    assert [r.video_id for r in m.split("test")] == ["c"]


# ---------------------------------------------------------------------------- registry
def test_resolve_manifest_path(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "v1.mp4").write_bytes(b"x")
    path = write(tmp_path / "m.jsonl", HEADER, record("v1"))
    m = resolve_dataset(str(path))
    assert m.header.name == "tiny" and len(m.records) == 1
    with pytest.raises(ManifestError, match="manifest not found"):
        resolve_dataset(str(tmp_path / "other.jsonl"))


def test_resolve_manifest_path_with_missing_file(tmp_path):
    path = write(tmp_path / "m.jsonl", HEADER, record("v1"))
    with pytest.raises(ManifestError, match="1 of 1 files of dataset 'tiny' are missing"):
        resolve_dataset(str(path))


def test_resolve_unknown_name_lists_known_names():
    with pytest.raises(ManifestError) as err:
        resolve_dataset("kinetics-9000")
    msg = str(err.value)
    assert "unknown dataset 'kinetics-9000'" in msg
    for name in ("hmdb51", "synthetic", "ucf101"):
        assert name in msg


def test_public_dataset_needs_data_root():
    with pytest.raises(ManifestError, match="'ucf101' needs --data-root"):
        resolve_dataset("ucf101")


def test_builtins_still_registered_after_an_early_custom_registration(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "_DATASETS", {})
    monkeypatch.setattr(registry, "_BUILTINS_REGISTERED", False)
    register_dataset(DatasetEntry("custom", "a plugin dataset", lambda root, fold: sample_manifest(root)))
    names = [e.name for e in list_datasets()]
    assert "custom" in names and "ucf101" in names and "synthetic" in names
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(DatasetEntry("custom", "again", lambda root, fold: sample_manifest(root)))
