"""Hugging Face model ids resolved from a local cache in huggingface_hub's layout; never a download."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_manifests.errors import FeatstoreError
from featstore.hf_cache import cached_snapshot, hub_cache_dir, parse_model_id
from tests.featstore._hub_cache import cache_model, commit_hash

CACHE_VARIABLES = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME")


@pytest.fixture
def two_commits(tmp_path, monkeypatch):
    """'org/model' cached at two commits: main -> the first, tag v1 -> the second."""
    cache = tmp_path / "hub"
    for seed, refs in ((0, ("main",)), (1, ("v1",))):
        files = tmp_path / f"files{seed}"
        files.mkdir()
        (files / "config.json").write_text(f'{{"seed": {seed}}}')
        cache_model(cache, "org/model", files, commit_hash(seed), refs)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("value, expected", [
    ("facebook/vjepa2-vitl-fpc64-256", ("facebook/vjepa2-vitl-fpc64-256", "main")),
    ("MCG-NJU/videomae-base@v1.0", ("MCG-NJU/videomae-base", "v1.0")),
    (f"org/m_1.x@{commit_hash(0)}", ("org/m_1.x", commit_hash(0))),
    ("org/model@refs/pr/1", ("org/model", "refs/pr/1")),
])
def test_model_ids_are_recognized(value, expected):
    assert parse_model_id(value) == expected


@pytest.mark.parametrize("value", ["vit.pth", "/abs/w.pt", "a/b/c.pth", "./w/x.pt", "org/model@", "org/--x",
                                   "org/model@../../x", "-org/model"])
def test_paths_are_not_model_ids(value):
    assert parse_model_id(value) is None


def test_cache_location_follows_huggingface_hub_order(tmp_path, monkeypatch):
    for variable in CACHE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub_cache_dir()[0] == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == (tmp_path / "xdg" / "huggingface" / "hub", "$XDG_CACHE_HOME/huggingface/hub")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub_cache_dir() == (tmp_path / "hf" / "hub", "$HF_HOME/hub")
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert hub_cache_dir() == (tmp_path / "legacy", "$HUGGINGFACE_HUB_CACHE")
    monkeypatch.setenv("HF_HUB_CACHE", "~/hub")
    assert hub_cache_dir() == (tmp_path / "home" / "hub", "$HF_HUB_CACHE")


@pytest.mark.parametrize("revision, seed", [("", 0), ("@main", 0), ("@v1", 1), (f"@{commit_hash(1)}", 1)])
def test_branch_tag_and_commit_resolve_to_their_snapshot(two_commits, revision, seed):
    snapshot = cached_snapshot("org/model" + revision)
    assert snapshot.commit == commit_hash(seed)
    assert snapshot.path == two_commits / "models--org--model" / "snapshots" / commit_hash(seed)
    assert (snapshot.path / "config.json").read_text() == f'{{"seed": {seed}}}'  # through the blob link
    assert snapshot.to_json() == {"repo_id": "org/model", "revision": revision[1:] or "main",
                                  "commit": commit_hash(seed)}


@pytest.mark.parametrize("revision", ["", "@main", "@v1", f"@{commit_hash(1)}"])
def test_same_folder_as_huggingface_hub_offline(two_commits, revision):
    """huggingface_hub's own offline lookup (a test-only dependency, via transformers) finds the same folder."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    theirs = huggingface_hub.snapshot_download("org/model", revision=revision[1:] or None, cache_dir=two_commits,
                                               local_files_only=True)
    assert Path(theirs) == cached_snapshot("org/model" + revision).path


@pytest.mark.parametrize("model_id, missing", [
    ("org/absent", "models--org--absent/refs/main"),
    ("org/model@v2", "models--org--model/refs/v2"),
    (f"org/model@{commit_hash(7)}", f"models--org--model/snapshots/{commit_hash(7)}"),
])
def test_not_cached_is_one_line_naming_the_id_and_where_it_looked(two_commits, model_id, missing):
    with pytest.raises(FeatstoreError) as error:
        cached_snapshot(model_id)
    message = str(error.value)
    assert "\n" not in message
    assert repr(model_id) in message and str(two_commits / missing) in message and "$HF_HUB_CACHE" in message
    assert "hf download" in message


@pytest.mark.parametrize("value", ["ckpt/vit_b.pth", "weights/model.safetensors", "runs/encoder.pth.tar",
                                   "ckpt/model.BIN"])
def test_a_checkpoint_file_name_is_a_path_not_a_model_id(value):
    # a mistyped relative checkpoint path gets "weights file not found", not advice to download it
    assert parse_model_id(value) is None
