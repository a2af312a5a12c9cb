"""The demo encoder: bundled weights load by default, match their training record, and can be regenerated."""

import dataclasses
import json

import pytest
import torch

from featstore.encoders import create_encoder, get_encoder_entry
from featstore.encoders import demo_pretrain
from featstore.hashing import file_sha256
from data_manifests.errors import FeatstoreError


def test_bundled_weights_load_by_default_and_match_their_record():
    entry = get_encoder_entry("demo-c3d")
    loaded = create_encoder("demo-c3d")
    assert loaded.weights == str(entry.bundled_weights) and loaded.layout == "native"
    record = json.loads(entry.bundled_weights.with_name(demo_pretrain.RECORD_FILE).read_text())
    assert record["weights_sha256"] == file_sha256(entry.bundled_weights) == loaded.weights_sha256
    # the record says the features carry the action (10 classes: chance 0.1) on held-out pretraining data
    assert record["held_out"]["action_top1_motion_clips"] > 0.5


def test_missing_bundled_weights_are_a_clear_error(monkeypatch, tmp_path):
    entry = get_encoder_entry("demo-c3d")
    from featstore.encoders import _registry

    monkeypatch.setitem(_registry._ENCODERS, "demo-c3d",
                        dataclasses.replace(entry, bundled_weights=tmp_path / "gone.safetensors"))
    with pytest.raises(FeatstoreError, match="bundled weights .* are missing"):
        create_encoder("demo-c3d")


def test_overrides_are_refused():
    with pytest.raises(FeatstoreError, match="overrides are not accepted"):
        create_encoder("demo-c3d", overrides={"img_size": 32})


def test_pretraining_writes_weights_the_registry_loads(tmp_path, single_thread):
    config = demo_pretrain.PretrainConfig(train_per_class=1, test_per_class=1, n_subjects=4, images=4, test_images=2,
                                          steps=2, batch_size=4, warmup_steps=1)
    record = demo_pretrain.pretrain(config, tmp_path / "weights", data_dir=tmp_path / "data", show_progress=False)
    weights = tmp_path / "weights" / demo_pretrain.WEIGHTS_FILE
    assert record["weights_sha256"] == file_sha256(weights)
    assert json.loads((tmp_path / "weights" / demo_pretrain.RECORD_FILE).read_text())["pretrain_config"]["steps"] == 2
    loaded = create_encoder("demo-c3d", weights=weights)
    with torch.inference_mode():
        out = loaded.module(torch.randn(2, 3, 16, 64, 64))
    assert out.shape == (2, 192) and torch.isfinite(out).all()
