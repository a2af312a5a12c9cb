"""Record paths must stay inside the manifest's root (symlinks followed); --fold must mean something."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from data_manifests import registry
from data_manifests.registry import DEFAULT_FOLD, DatasetEntry, list_datasets, register_dataset, resolve_dataset
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord
from featstore.extract import ExtractConfig, extract

HEADER = {"manifest": "featstore-manifest", "version": 1, "name": "tiny", "task": "action",
          "class_names": ["walk", "run"], "root": "."}


@pytest.fixture()
def layout(tmp_path) -> dict[str, Path]:
    """``data/`` (the root: one real clip, a symlink to it, a symlinked folder inside) beside ``outside/``."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "clips").mkdir(parents=True)
    outside.mkdir()
    (data / "clips" / "v1.mp4").write_bytes(b"inside")
    (outside / "secret.mp4").write_bytes(b"secret")
    (data / "clips" / "alias.mp4").symlink_to(data / "clips" / "v1.mp4")
    (data / "more").symlink_to(data / "clips", target_is_directory=True)
    (data / "clips" / "escape.mp4").symlink_to(outside / "secret.mp4")
    (data / "elsewhere").symlink_to(outside, target_is_directory=True)
    return {"data": data, "outside": outside}


def write_manifest(folder: Path, *paths: str, header: dict = HEADER) -> Path:
    lines = [json.dumps(header)] + [
        json.dumps({"video_id": f"v{i}", "path": path, "split": "train", "label": 0}) for i, path in enumerate(paths)
    ]
    manifest = folder / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------- paths outside the root
@pytest.mark.parametrize("bad_path", [
    "../outside/secret.mp4",
    "clips/../../outside/secret.mp4",
    "ABSOLUTE",  # the outside file by its absolute path
    "/etc/passwd",
    "clips/escape.mp4",  # a symlink inside the root to a file outside it
    "elsewhere/secret.mp4",  # through a symlinked folder inside the root
    "../outside/not-there.mp4",  # refused as outside, not reported as merely missing
])
def test_paths_outside_the_root_are_refused_naming_the_record(layout, bad_path):
    bad_path = str(layout["outside"] / "secret.mp4") if bad_path == "ABSOLUTE" else bad_path
    manifest = write_manifest(layout["data"], "clips/v1.mp4", bad_path)
    with pytest.raises(ManifestError) as err:
        resolve_dataset(str(manifest))
    message = one_line(err)
    assert str(manifest) in message
    assert "1 of 2 record paths resolve outside the data root" in message
    assert f"video 'v1', path {bad_path!r}" in message
    assert str(layout["data"].resolve()) in message and "--allow-outside-root" in message


def test_paths_inside_the_root_are_accepted_whatever_their_spelling(layout):
    data = layout["data"]
    paths = ["clips/v1.mp4", "clips/alias.mp4", "more/v1.mp4", "clips/../clips/v1.mp4", str(data / "clips" / "v1.mp4")]
    manifest = resolve_dataset(str(write_manifest(data, *paths)))
    assert [manifest.resolve_path(r).read_bytes() for r in manifest.records] == [b"inside"] * len(paths)


def test_the_root_is_compared_resolved(layout, tmp_path):
    # the declared root is the user's choice and may itself be a symlink (or absolute): its files are inside
    (tmp_path / "root-link").symlink_to(layout["data"], target_is_directory=True)
    manifest = write_manifest(tmp_path, "clips/v1.mp4", "more/v1.mp4", header={**HEADER, "root": "root-link"})
    assert len(resolve_dataset(str(manifest)).records) == 2
    absolute = write_manifest(tmp_path, "clips/v1.mp4", header={**HEADER, "root": str(tmp_path / "root-link")})
    assert len(resolve_dataset(str(absolute)).records) == 1
    unresolved = Manifest(ManifestHeader("tiny", "action", ["walk"]), [VideoRecord("a", "clips/v1.mp4", "train"),
                          VideoRecord("b", "../outside/secret.mp4", "train")], tmp_path / "root-link" / "clips" / "..")
    with pytest.raises(ManifestError, match=r"^tiny: 1 of 2 record paths .* video 'b', path '\.\./outside"):
        unresolved.check_paths_inside_root()


def test_allow_outside_root_reads_them(layout):
    outside = str(layout["outside"] / "secret.mp4")
    manifest_file = write_manifest(layout["data"], "../outside/secret.mp4", outside, "clips/escape.mp4")
    manifest = resolve_dataset(str(manifest_file), allow_outside_root=True)
    assert [manifest.resolve_path(r).read_bytes() for r in manifest.records] == [b"secret"] * 3
    # a missing file outside the root is still reported as missing once allowed
    missing = write_manifest(layout["data"], "../outside/not-there.mp4")
    with pytest.raises(ManifestError, match="1 of 1 files of dataset 'tiny' are missing"):
        resolve_dataset(str(missing), allow_outside_root=True)


def test_a_symlink_loop_is_one_line(layout):
    (layout["data"] / "loop.mp4").symlink_to(layout["data"] / "loop.mp4")
    with pytest.raises(ManifestError, match=r"cannot resolve the path 'loop.mp4' of video 'v0'") as err:
        resolve_dataset(str(write_manifest(layout["data"], "loop.mp4")))
    one_line(err)


def test_registered_datasets_are_checked_too(layout, monkeypatch):
    # a builder's records come from annotation files the user did not write
    monkeypatch.setattr(registry, "_DATASETS", {})
    monkeypatch.setattr(registry, "_BUILTINS_REGISTERED", True)

    def build(root: Path, fold: int) -> Manifest:
        records = [VideoRecord("ok", "clips/v1.mp4", "train"), VideoRecord("bad", "clips/escape.mp4", "test")]
        return Manifest(ManifestHeader("plugin", "action", ["walk"]), records, root)

    register_dataset(DatasetEntry("plugin", "a plugin dataset", build))
    with pytest.raises(ManifestError, match=r"^plugin: 1 of 2 record paths .* video 'bad', path 'clips/escape.mp4'"):
        resolve_dataset("plugin", layout["data"])
    assert len(resolve_dataset("plugin", layout["data"], allow_outside_root=True).records) == 2


def test_extract_refuses_before_writing_anything(layout, tmp_path):
    manifest = write_manifest(layout["data"], "clips/v1.mp4", "../outside/secret.mp4")
    out = tmp_path / "x.zarr"
    with pytest.raises(ManifestError, match=r"video 'v1', path '\.\./outside/secret\.mp4'"):
        extract(ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(out)), show_progress=False)
    assert not out.exists()


# ---------------------------------------------------------------------------- folds
def test_a_manifest_file_is_one_fold(layout):
    manifest = write_manifest(layout["data"], "clips/v1.mp4")
    assert len(resolve_dataset(str(manifest), fold=DEFAULT_FOLD).records) == 1
    for fold in (0, 2, 9):
        with pytest.raises(ManifestError) as err:
            resolve_dataset(str(manifest), fold=fold)
        assert one_line(err) == (f"--fold {fold} does not apply to a manifest file: {manifest} is one fold "
                                 "(write one manifest per fold and pass it as --dataset)")


@pytest.mark.parametrize("name", ["synthetic", "synthetic-tad", "synthetic-variant-images"])
def test_synthetic_parts_have_one_fold_and_generate_nothing_for_another(tmp_path, name):
    with pytest.raises(ManifestError) as err:
        resolve_dataset(name, tmp_path, fold=2)
    assert one_line(err) == f"{name} fold must be one of [1] (the synthetic dataset has one train/test split), got 2"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", [e.name for e in list_datasets() if not e.name.startswith("synthetic")])
def test_every_public_dataset_refuses_a_fold_it_does_not_have(tmp_path, name):
    # pa-hmdb51 looks for its annotation folder before the HMDB51 split files that carry the fold
    (tmp_path / "PrivacyAttributes").mkdir()
    (tmp_path / "PrivacyAttributes" / "brush_hair.json").write_text("{}")
    with pytest.raises(ManifestError, match=r"fold must be one of \[1(, 2)?(, 3)?\] \(.*\), got 9$") as err:
        resolve_dataset(name, tmp_path, fold=9)
    one_line(err)
    assert sorted(os.listdir(tmp_path)) == ["PrivacyAttributes"]  # nothing written besides what the test made
