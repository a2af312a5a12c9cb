"""The static privacy protocol: leakage on real features, chance on noise, the attackers, edge cases
(the attacker suite and the worst case in detail: test_attackers.py)."""

import json

import numpy as np
import pytest

from data_manifests.errors import FeatstoreError
from evaluate.protocols._attribute_attack import check_test_positives
from evaluate.protocols.privacy import PrivacyConfig, run
from evaluate.results import json_safe
from featstore.store import Store

FAST = dict(epochs=15, batch_size=32)


def test_raw_features_leak_and_noise_is_at_chance(tiny_store, noise_store):
    raw = run(Store.open(tiny_store), PrivacyConfig(**FAST))
    noise = run(Store.open(noise_store), PrivacyConfig(**FAST))
    assert raw["chance_cmap"] == pytest.approx(0.5) and noise["chance_cmap"] == pytest.approx(0.5)
    assert noise["attackers"]["standard"]["cmap"] == pytest.approx(noise["chance_cmap"], abs=0.1)  # chance
    # the worst case over every attacker (the test-selected authors' one included) stays near chance too
    assert noise["cmap"] == noise["worst_case"]["cmap"] == pytest.approx(noise["chance_cmap"], abs=0.15)
    assert raw["cmap"] > noise["cmap"] + 0.08
    assert raw["attackers"]["standard"]["cmap"] > noise["attackers"]["standard"]["cmap"] + 0.08
    assert raw["attackers"]["authors"]["cmap"] > noise["attackers"]["authors"]["cmap"] + 0.1
    assert raw["per_attribute"]["scene"] > 0.9  # the background is in every frame


def test_demo_encoder_features_leak_the_appearance_attributes(demo_store, noise_store):
    raw = run(Store.open(demo_store), PrivacyConfig(attacker="both", **FAST))  # the suite: test_attackers.py
    noise = run(Store.open(noise_store), PrivacyConfig(attacker="both", **FAST))
    # skin tone, clothing and scene are visible in one frame and the demo encoder carries them
    for name in ("skin_tone", "clothing_texture", "scene"):
        assert raw["attackers"]["standard"]["per_attribute"][name] > 0.8, name
        assert raw["per_attribute"][name] >= raw["attackers"]["standard"]["per_attribute"][name]  # worst case
    assert raw["attackers"]["standard"]["cmap"] > noise["attackers"]["standard"]["cmap"] + 0.25
    assert raw["cmap"] > noise["cmap"] + 0.25


def test_both_attackers_are_reported_by_name_with_the_worst_case_as_headline(planted_store):
    result = run(Store.open(planted_store), PrivacyConfig(attacker="both", **FAST))
    attackers = result["attackers"]
    assert set(attackers) == {"standard", "authors"} and result["attacker"] == "standard"
    assert result["headline"] == "worst_case"
    assert result["cmap"] == result["worst_case"]["cmap"]
    assert result["per_attribute"] == result["worst_case"]["per_attribute"]
    for name, ap in result["per_attribute"].items():
        assert ap == max(attackers["standard"]["per_attribute"][name], attackers["authors"]["per_attribute"][name])
    assert attackers["standard"]["cmap"] > 0.9  # the planted attribute directions are found
    assert "test" in attackers["authors"]["selected_by"] and attackers["authors"]["test_selected"]
    assert "validation" in attackers["standard"]["selected_by"] and not attackers["standard"]["test_selected"]
    assert set(result["per_attribute"]) == {"skin_tone", "gender_shape", "clothing_texture", "scene"}
    assert result["n_test_samples"] == 10 * 10  # 10 test videos x 10 static clips
    json.dumps(json_safe(result), allow_nan=False)


def test_one_attacker_and_determinism(tiny_store):
    first = run(Store.open(tiny_store), PrivacyConfig(attacker="authors", **FAST))
    again = run(Store.open(tiny_store), PrivacyConfig(attacker="authors", **FAST))
    assert list(first["attackers"]) == ["authors"] and first["attacker"] == first["headline"] == "authors"
    assert first["cmap"] == first["attackers"]["authors"]["cmap"] == first["worst_case"]["cmap"]
    assert first["cmap"] == again["cmap"] and first["per_attribute"] == again["per_attribute"]


def test_full_clips_and_image_stores(tiny_store, images_store):
    clips = run(Store.open(tiny_store), PrivacyConfig(kind="clips", attacker="standard", **FAST))
    assert clips["kind"] == "clips" and 0 <= clips["cmap"] <= 1
    images = run(Store.open(images_store), PrivacyConfig(**FAST))  # every attacker, on 8 training images
    assert images["n_test_samples"] == images["n_test_videos"] == 4  # one static clip per image
    assert set(images["attackers"]) == {"standard", "authors", "mlp", "logreg", "knn", "mlp-whitened", "knn-whitened",
                                        "svm-whitened", "mlp-wide", "quadratic", "ensemble"}
    for knn in ("knn", "knn-whitened"):  # k capped by the 7 fit rows
        assert all(k <= 7 for k in images["attackers"][knn]["selected_k"].values())
    json.dumps(json_safe(images), allow_nan=False)


def test_bad_configs_and_undefined_cmap(tiny_store):
    for bad in (dict(attacker="nope"), dict(kind="frames"), dict(epochs=0), dict(val_fraction=1.0),
                dict(val_unit="clip"), dict(val_folds=0), dict(plateau_factor=2.0), dict(train_split="test")):
        with pytest.raises(FeatstoreError):
            PrivacyConfig(**bad)
    with pytest.raises(FeatstoreError, match="no private attribute has a positive"):
        check_test_positives(np.zeros((5, 2), dtype=np.int64), ["a", "b"], tiny_store)
    rates = check_test_positives(np.array([[1, 0], [0, 0]]), ["a", "b"], tiny_store)
    assert rates.tolist() == [0.5, 0.0]
