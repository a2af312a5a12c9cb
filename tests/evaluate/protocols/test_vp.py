"""The temporal privacy protocol: per-position AP aggregated by mean and by max, video-level AP, and where
the evaluation clips sit."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from anonymize.array_store import write_array_store
from evaluate.cli import app
from evaluate.protocols._attribute_attack import position_aggregates
from evaluate.protocols.vp import AGGREGATE_RULES, VPConfig, run
from data_manifests.errors import FeatstoreError
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
    assert result["cmap_max_position"] == 0 and result["cmap_max_per_attribute"] == pytest.approx(1.0)
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
            assert attacker["cmap_max"] == max(attacker["per_position_cmap"])  # the authors' rule
            assert attacker["cmap_max_per_attribute"] >= attacker["cmap_max"] - 1e-12
    assert planted["positions"] == "centres" and set(planted["aggregate_rules"]) == set(AGGREGATE_RULES)


def test_all_clips_sampling_runs(tiny_store):
    result = run(Store.open(tiny_store), VPConfig(attacker="standard", clip_sampling="all", **FAST))
    assert list(result["attackers"]) == ["standard"] and 0 <= result["cmap_mean"] <= 1
    assert result["cmap"] == result["cmap_mean"] and result["headline"] == "standard/mean"  # one attacker: its mean


PERFECT, HALF = [0.9, 0.1, 0.8, 0.2], [0.9, 0.8, 0.1, 0.2]  # for targets [1, 0, 1, 0]: AP 1 and AP 0.75


def test_cmap_max_is_the_authors_best_position_not_each_attributes_best():
    targets = np.array([[1, 1], [0, 0], [1, 1], [0, 0]])
    scores = np.zeros((4, 3, 2))  # 3 positions: each attribute is read best at its own position
    scores[:, 0, 0], scores[:, 0, 1] = PERFECT, HALF  # position 0: cMAP (1 + 0.75) / 2
    scores[:, 1, 0], scores[:, 1, 1] = HALF, PERFECT  # position 1: the same cMAP
    scores[:, 2, 0], scores[:, 2, 1] = HALF, HALF  # position 2: 0.75
    result = position_aggregates(scores, targets)
    assert result["per_position_cmap"] == pytest.approx([0.875, 0.875, 0.75])
    assert result["cmap_max"] == pytest.approx(0.875)  # the max over positions of the position's cMAP
    assert result["cmap_max_position"] == 0 and result["per_attribute_max"] == pytest.approx([1.0, 0.75])  # first tie
    assert result["cmap_max_per_attribute"] == pytest.approx(1.0)  # per attribute max, then mean: not the authors'
    assert result["cmap_mean"] == pytest.approx((1 + 0.75 + 0.75) / 3)

    undefined = position_aggregates(scores, np.zeros_like(targets))  # no positive anywhere
    assert math.isnan(undefined["cmap_max"]) and undefined["cmap_max_position"] is None
    assert np.isnan(undefined["per_attribute_max"]).all()


def test_at_chance_the_authors_max_is_below_the_per_attribute_max():
    rng = np.random.default_rng(0)
    targets = rng.random((60, 5)) < 0.5  # 60 test videos, 5 attributes, scores carry nothing
    result = position_aggregates(rng.standard_normal((60, 5, 5)), targets.astype(np.int64))
    assert result["cmap_max"] == max(result["per_position_cmap"])
    assert result["cmap_max_per_attribute"] > result["cmap_max"] + 0.02  # each attribute's luckiest position


N_CLIPS = 11  # centres: clips 1, 3, 5, 7, 9; linspace: 0, 2, 5, 7, 10
SIGNAL_CLIPS = [0, 2, 10]  # linspace positions 0, 1 and 4, none of the centres


@pytest.fixture(scope="module")
def linspace_store(tmp_path_factory):
    """One attribute planted only in the clips at the authors' linspace positions 0, 1 and 4."""
    rng = np.random.default_rng(0)
    n_train, n_test, dim = 160, 60, 8
    n = n_train + n_test
    attributes = (rng.random((n, 1)) < 0.5).astype(np.int64)
    clips = []
    for v in range(n):
        rows = rng.standard_normal((N_CLIPS, dim)).astype(np.float32)
        rows[SIGNAL_CLIPS, 0] += 4.0 * (2 * attributes[v, 0] - 1)
        clips.append(rows)
    static = [rows[:1] for rows in clips]
    return write_array_store(tmp_path_factory.mktemp("linspace") / "linspace.zarr", clips, static,
                             ["train"] * n_train + ["test"] * n_test, [0] * n, attributes, ["only"], ["a0"],
                             dtype="float32")


def test_evaluation_clip_rows_by_rule(linspace_store):
    store = Store.open(linspace_store)
    offsets = store.clip_offsets()
    assert (store.evenly_spaced_clip_rows(5) - offsets[:-1, None] == [1, 3, 5, 7, 9]).all()  # the default: centres
    assert (store.evenly_spaced_clip_rows(5, "linspace") - offsets[:-1, None] == [0, 2, 5, 7, 10]).all()


def test_vp_scores_the_clips_at_the_chosen_positions(linspace_store):
    store = Store.open(linspace_store)
    linspace = run(store, VPConfig(attacker="logreg", positions="linspace"))
    centres = run(store, VPConfig(attacker="logreg"))
    assert linspace["positions"] == "linspace" and centres["positions"] == "centres"
    at_linspace = linspace["attackers"]["logreg"]["per_position_cmap"]
    assert min(at_linspace[p] for p in (0, 1, 4)) > 0.95 and max(at_linspace[p] for p in (2, 3)) < 0.8
    assert max(centres["attackers"]["logreg"]["per_position_cmap"]) < 0.8  # noise clips only
    with pytest.raises(FeatstoreError, match="positions must be one of"):
        VPConfig(positions="middle")


def test_the_vp_command_records_the_positions_and_both_max_rules(linspace_store, tmp_path):
    result = CliRunner().invoke(app, ["vp", "--store", str(linspace_store), "--out", str(tmp_path), "--attacker",
                                      "logreg", "--positions", "linspace", "--device", "cpu"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "at linspace" in result.output and "max per attribute" in result.output
    document = json.loads((tmp_path / "vp.json").read_text())
    assert document["config"]["positions"] == "linspace" and document["metrics"]["positions"] == "linspace"
    metrics = document["metrics"]
    assert metrics["cmap_max"] == max(metrics["attackers"]["logreg"]["per_position_cmap"])
    assert metrics["aggregate_rules"]["cmap_max"].startswith("the authors'")
    assert metrics["cmap_max_per_attribute"] >= metrics["cmap_max"]


def test_null_floor_reads_chance_where_the_planted_attributes_read_high(planted_store):
    config = VPConfig(attacker="standard", null_permutations=3, **FAST)
    result = run(Store.open(planted_store), config)
    floor = result["null_floor"]
    assert floor["permutations"] == 3 and len(floor["cmaps"]) == 3
    assert floor["cmap"] == pytest.approx(np.mean(floor["cmaps"]))
    # shuffled labels keep each split's positive rates but lose their link to the embeddings
    assert result["cmap"] > 0.9 and floor["cmap"] < result["chance_cmap"] + 0.25 < result["cmap"]
    assert set(floor["per_attribute"]) == set(result["positive_rate"])
    again = run(Store.open(planted_store), config)
    assert again["null_floor"] == floor  # the shuffles follow the seed
    assert run(Store.open(planted_store), VPConfig(attacker="standard", **FAST))["null_floor"] is None


def test_null_floor_option_on_the_command_line(planted_store, tmp_path):
    result = CliRunner().invoke(app, ["vp", "--store", str(planted_store), "--attacker", "standard", "--epochs", "3",
                                      "--null-permutations", "1", "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "null floor (1 shuffles)" in result.output
    assert json.loads((tmp_path / "vp.json").read_text())["metrics"]["null_floor"]["permutations"] == 1
    bad = CliRunner().invoke(app, ["vp", "--store", str(planted_store), "--null-permutations", "-1"])
    # (the console script turns this error into one line and exit code 2: tests/evaluate/test_cli.py)
    assert isinstance(bad.exception, FeatstoreError) and "null_permutations must be >= 0" in str(bad.exception)
