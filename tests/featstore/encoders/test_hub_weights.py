"""--weights as a Hugging Face model id: the weights come from the local Hugging Face cache, never downloaded."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from data_manifests.errors import FeatstoreError
from featstore.encoders import create_encoder, list_encoders
from featstore.hashing import file_sha256
from tests.featstore._hub_cache import cache_model, commit_hash


def save_tiny_vit(folder, seed: int):
    """A seeded random tiny-vit's weights as a repository's model.safetensors; returns the file."""
    folder.mkdir(parents=True)
    state = create_encoder("tiny-vit", seed=seed).module.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    return folder / "model.safetensors"


def test_model_id_and_revision_load_their_cached_snapshot(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    main_file, tagged_file = save_tiny_vit(tmp_path / "main", 5), save_tiny_vit(tmp_path / "old", 6)
    main_snapshot = cache_model(cache, "someone/tiny-vit", tmp_path / "main", commit_hash(0))
    old_snapshot = cache_model(cache, "someone/tiny-vit", tmp_path / "old", commit_hash(1), refs=())
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    clips = torch.randn(1, 3, 16, 64, 64, generator=torch.Generator().manual_seed(0))

    for model_id, snapshot, file, revision, commit in (
        ("someone/tiny-vit", main_snapshot, main_file, "main", commit_hash(0)),
        (f"someone/tiny-vit@{commit_hash(1)}", old_snapshot, tagged_file, commit_hash(1), commit_hash(1)),
    ):
        loaded = create_encoder("tiny-vit", weights=model_id)
        from_file = create_encoder("tiny-vit", weights=file)
        with torch.inference_mode():
            torch.testing.assert_close(loaded.module(clips), from_file.module(clips), rtol=0, atol=0)
        assert loaded.weights == str(snapshot) and loaded.weights_sha256 == file_sha256(file)
        assert loaded.hub_model == {"repo_id": "someone/tiny-vit", "revision": revision, "commit": commit}
    assert create_encoder("tiny-vit", weights=main_file).hub_model is None  # a local file is no hub model


def test_existing_local_folder_wins_over_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.chdir(tmp_path)
    file = save_tiny_vit(tmp_path / "org" / "tiny", 7)  # the folder ./org/tiny, whose name looks like an id
    loaded = create_encoder("tiny-vit", weights="org/tiny")
    assert loaded.weights == "org/tiny" and loaded.weights_sha256 == file_sha256(file) and loaded.hub_model is None


def test_not_cached_model_id_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(FeatstoreError) as error:
        create_encoder("tiny-vit", weights="facebook/vjepa2-vitl-fpc64-256")
    message = str(error.value)
    assert "'facebook/vjepa2-vitl-fpc64-256'" in message and "\n" not in message
    assert str(tmp_path / "hub" / "models--facebook--vjepa2-vitl-fpc64-256" / "refs" / "main") in message
    with pytest.raises(FeatstoreError, match="weights file not found"):  # a path, not an id: the old message
        create_encoder("tiny-vit", weights=tmp_path / "w.pt")


def test_vjepa2_save_pretrained_repository_from_the_cache(tmp_path, monkeypatch, randomize):
    """The real use: a transformers repository cached by `hf download`; its config.json sets the architecture."""
    transformers = pytest.importorskip("transformers", reason="transformers (test-only dependency) is not installed")
    if "vjepa2" not in {e.name for e in list_encoders()}:
        pytest.skip("transformers is older than 4.53 (no VJEPA2)")
    small = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, crop_size=32, frames_per_clip=4,
                 pred_hidden_size=32, pred_num_hidden_layers=1, pred_num_attention_heads=4, num_pooler_layers=1)
    model = transformers.VJEPA2Model(transformers.VJEPA2Config(**small))
    model.load_state_dict(randomize(model.state_dict(), 0))
    model.eval()
    model.save_pretrained(tmp_path / "saved")
    cache_model(tmp_path / "hf-home" / "hub", "facebook/vjepa2-vitl-fpc64-256", tmp_path / "saved", commit_hash(3))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    clips = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(clips.permute(0, 2, 1, 3, 4), skip_predictor=True).last_hidden_state.mean(dim=1)

    loaded = create_encoder("vjepa2", weights="facebook/vjepa2-vitl-fpc64-256")
    assert (loaded.spec.embed_dim, loaded.spec.num_frames, loaded.spec.resolution) == (64, 4, 32)
    assert loaded.hub_model["commit"] == commit_hash(3)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(clips), expected, rtol=1e-4, atol=1e-5)
