"""The temporal privacy protocol: per-position AP aggregated by mean and by max, video-level AP."""

import math

import numpy as np
import pytest

from evaluate.protocols.vp import VPConfig, position_aggregates, run
from featstore.store import Store

FAST = dict(epochs=15, batch_size=8)


def test_position_aggregates_by_hand():
    targets = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])  # attribute 1 has no positive
    scores = np.zeros((4, 2, 2))
    scores[:, 0, 0] = [0.9, 0.1, 0.8, 0.2]  # position 0: AP 1
    scores[:, 1, 0] = [0.9, 0.8, 0.1, 0.2]  # position 1: positives at ranks 1 and 4 -> (1 + 2/4) / 2
    result = position_aggregates(scores, targets)
    assert result["per_attribute_mean"][0] == pytest.approx((1 + 0.75) / 2)
    assert result["per_attribute_max"][0] == pytest.approx(1.0)
    assert math.isnan(result["per_attribute_mean"][1]) and math.isnan(result["per_attribute_max"][1])
    assert result["cmap_mean"] == pytest.approx(0.875) and result["cmap_max"] == pytest.approx(1.0)
    # video level: sigmoid probabilities averaged over the clips rank video 0, then videos 1 and 2 tied
    # (sigmoid(0.1) + sigmoid(0.8)) / 2, then video 3: positives 0 and 2 -> (1 + 2/3) / 2
    assert result["per_attribute_video"][0] == pytest.approx(5 / 6) and math.isnan(result["per_attribute_video"][1])
    assert result["cmap_video"] == pytest.approx(5 / 6)


def test_planted_attributes_are_found_and_max_is_never_below_mean(planted_store, noise_store):
    planted = run(Store.open(planted_store), VPConfig(**FAST))
    noise = run(Store.open(noise_store), VPConfig(**FAST))
    assert planted["attacker"] == "standard" and planted["cmap_mean"] == planted["attackers"]["standard"]["cmap_mean"]
    assert planted["cmap"] == planted["worst_case"]["cmap"] >= planted["cmap_mean"] > 0.9
    assert planted["cmap_mean"] > noise["cmap_mean"] + 0.2
    for result in (planted, noise):
        for attacker in result["attackers"].values():
            assert attacker["cmap_max"] >= attacker["cmap_mean"] - 1e-12
            assert len(attacker["per_position_cmap"]) == 5


def test_all_clips_sampling_runs(tiny_store):
    result = run(Store.open(tiny_store), VPConfig(attacker="standard", clip_sampling="all", **FAST))
    assert list(result["attackers"]) == ["standard"] and 0 <= result["cmap_mean"] <= 1
    assert result["cmap"] == result["cmap_mean"] and result["headline"] == "standard/mean"  # one attacker: its mean
