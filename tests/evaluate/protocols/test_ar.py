"""Action recognition: a linear probe finds a planted action signal; noise stays at chance."""

import pytest

from evaluate.protocols.ar import ARConfig, run
from data_manifests.errors import FeatstoreError
from featstore.store import Store

FAST = dict(epochs=100, lr=1e-2)


def test_planted_actions_are_well_above_chance_and_noise_is_not(planted_store, noise_store):
    planted = run(Store.open(planted_store), ARConfig(**FAST))
    noise = run(Store.open(noise_store), ARConfig(**FAST))
    assert planted["chance_top1"] == pytest.approx(0.1) and planted["n_test_videos"] == 10
    assert planted["top1"] >= 0.5  # 5x chance on 10 test videos
    assert noise["top1"] <= 0.3
    assert planted["top5"] >= planted["top1"]


def test_raw_synthetic_features_of_the_demo_encoder_are_well_above_chance(demo_store):
    # the real pipeline: synthetic mp4 -> demo-c3d -> store -> linear probe (10 test videos, chance 0.1)
    result = run(Store.open(demo_store), ARConfig(**FAST))
    assert result["chance_top1"] == pytest.approx(0.1)
    assert result["top1"] >= 0.5


def test_tiny_store_runs_with_the_official_preset_shape(tiny_store):
    # the random-init tiny-vit carries little linearly decodable motion: this checks the mechanics only
    result = run(Store.open(tiny_store), ARConfig(epochs=20))
    assert 0 <= result["top1"] <= result["top5"] <= 1 and result["n_classes"] == 10
    assert result["timing"]["training_loop_s"] > 0


def test_all_clips_sampling_and_determinism(planted_store):
    first = run(Store.open(planted_store), ARConfig(clip_sampling="all", **FAST))
    again = run(Store.open(planted_store), ARConfig(clip_sampling="all", **FAST))
    assert first["top1"] == again["top1"] and first["final_train_loss"] == again["final_train_loss"]


def test_bad_configs_and_stores(images_store):
    for bad in (dict(clip_sampling="some"), dict(eval_clips=0), dict(batch_size=0), dict(lr=-1.0)):
        with pytest.raises(FeatstoreError):
            ARConfig(**bad)
    with pytest.raises(FeatstoreError, match="classes"):
        run(Store.open(images_store), ARConfig(epochs=1))  # images: no classes, no clips
