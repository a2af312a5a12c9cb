"""The static privacy protocol: leakage on real features, chance on noise, both attackers, edge cases."""

import json

import numpy as np
import pytest

from evaluate.common import json_safe
from evaluate.protocols.privacy import PrivacyConfig, check_test_positives, run
from featstore.errors import FeatstoreError
from featstore.store import Store

FAST = dict(epochs=15, batch_size=32)


def test_raw_features_leak_and_noise_is_at_chance(tiny_store, noise_store):
    raw = run(Store.open(tiny_store), PrivacyConfig(**FAST))
    noise = run(Store.open(noise_store), PrivacyConfig(**FAST))
    assert raw["chance_cmap"] == pytest.approx(0.5) and noise["chance_cmap"] == pytest.approx(0.5)
    assert noise["cmap"] == pytest.approx(noise["chance_cmap"], abs=0.1)  # standard attacker: chance
    assert raw["cmap"] > noise["cmap"] + 0.08
    assert raw["attackers"]["authors"]["cmap"] > noise["attackers"]["authors"]["cmap"] + 0.1
    assert raw["per_attribute"]["scene"] > 0.9  # the background is in every frame


def test_demo_encoder_features_leak_the_appearance_attributes(demo_store, noise_store):
    raw = run(Store.open(demo_store), PrivacyConfig(**FAST))
    noise = run(Store.open(noise_store), PrivacyConfig(**FAST))
    # skin tone, clothing and scene are visible in one frame and the demo encoder carries them
    for name in ("skin_tone", "clothing_texture", "scene"):
        assert raw["per_attribute"][name] > 0.8, name
    assert raw["cmap"] > noise["cmap"] + 0.25


def test_both_attackers_are_reported_by_name_with_standard_as_headline(planted_store):
    result = run(Store.open(planted_store), PrivacyConfig(**FAST))
    assert set(result["attackers"]) == {"standard", "authors"}
    assert result["attacker"] == "standard" and result["cmap"] == result["attackers"]["standard"]["cmap"]
    assert result["cmap"] > 0.9  # the planted attribute directions are found
    assert "test" in result["attackers"]["authors"]["selected_by"]
    assert "validation" in result["attackers"]["standard"]["selected_by"]
    assert set(result["per_attribute"]) == {"skin_tone", "gender_shape", "clothing_texture", "scene"}
    assert result["n_test_samples"] == 10 * 10  # 10 test videos x 10 static clips
    json.dumps(json_safe(result), allow_nan=False)


def test_one_attacker_and_determinism(tiny_store):
    first = run(Store.open(tiny_store), PrivacyConfig(attacker="authors", **FAST))
    again = run(Store.open(tiny_store), PrivacyConfig(attacker="authors", **FAST))
    assert list(first["attackers"]) == ["authors"] and first["attacker"] == "authors"
    assert first["cmap"] == again["cmap"] and first["per_attribute"] == again["per_attribute"]


def test_full_clips_and_image_stores(tiny_store, images_store):
    clips = run(Store.open(tiny_store), PrivacyConfig(kind="clips", attacker="standard", **FAST))
    assert clips["kind"] == "clips" and 0 <= clips["cmap"] <= 1
    images = run(Store.open(images_store), PrivacyConfig(attacker="standard", **FAST))
    assert images["n_test_samples"] == images["n_test_videos"] == 4  # one static clip per image


def test_bad_configs_and_undefined_cmap(tiny_store):
    for bad in (dict(attacker="nope"), dict(kind="frames"), dict(epochs=0), dict(val_fraction=1.0),
                dict(plateau_factor=2.0), dict(train_split="test")):
        with pytest.raises(FeatstoreError):
            PrivacyConfig(**bad)
    with pytest.raises(FeatstoreError, match="no private attribute has a positive"):
        check_test_positives(np.zeros((5, 2), dtype=np.int64), ["a", "b"], tiny_store)
    rates = check_test_positives(np.array([[1, 0], [0, 0]]), ["a", "b"], tiny_store)
    assert rates.tolist() == [0.5, 0.0]
