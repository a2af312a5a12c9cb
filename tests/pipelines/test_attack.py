"""The inversion-attack protocol (Table 8): the table on a tiny run, both attacks on known invertible maps,
and one-line errors for stores that do not belong together."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from anonymize.export import export_store
from anonymize.model import AAMConfig, build_aam
from anonymize.train import train, zero_residual_outputs
from anonymize.array_store import write_array_store
from evaluate.data import StoreData
from evaluate.results import json_safe
from pipelines.attack import (
    AttackConfig,
    action_note,
    attribute_note,
    run,
    train_inverter,
    whitebox_invert,
    whitebox_invert_sequences,
)
from data_manifests.errors import FeatstoreError
from featstore.store import Store
from tests.anonymize.conftest import small_config, structured_store
from tests.conftest import run_cli

EVALUATE = "pipelines.evaluate_cli"  # the module of the `evaluate` console script (run_cli runs `python -m`)

FAST = dict(inverter_epochs=15, inverter_batch_size=64, whitebox_steps=200, whitebox_lr=0.2, action_epochs=40, attribute_epochs=15,
            device="cpu")


@pytest.fixture(scope="module")
def attack_inputs(tmp_path_factory):
    """A raw array store, a 2-epoch anonymizer run on it and the anonymized export."""
    root = tmp_path_factory.mktemp("attack")
    raw = structured_store(root / "raw.zarr")
    run_dir = root / "run"
    train(small_config(raw, run_dir, epochs=2))
    anon = root / "anon.zarr"
    export_store(run_dir, raw, anon, device="cpu")
    return raw, anon, run_dir


def near_identity_aam(dim: int, mode: str = "clip", seed: int = 0) -> nn.Module:
    """An attention AAM started at the exact identity, then every residual branch's last layer set to
    small random weights: x + f(x) with f a contraction, hence invertible (and not the identity)."""
    torch.manual_seed(seed)
    aam = build_aam(dim, AAMConfig(layers=2, heads=2, mode=mode, window=1))
    zero_residual_outputs(aam)
    with torch.no_grad():
        for block in aam.blocks:
            block.attention.out_proj.weight.normal_(0, 0.15 / math.sqrt(dim))
            block.ffn[-1].weight.normal_(0, 0.15 / math.sqrt(dim))
    for parameter in aam.parameters():
        parameter.requires_grad_(False)
    return aam.eval()


def test_table8_rows_are_complete_and_in_range(attack_inputs):
    raw, anon, run_dir = attack_inputs
    metrics = run(Store.open(raw), Store.open(anon), run_dir, AttackConfig(**FAST))
    table = metrics["table"]
    assert list(table) == ["raw", "anonymized", "blackbox", "whitebox", "chance"]
    for row in table.values():
        assert 0 <= row["action_top1"] <= 1 and 0 <= row["attribute_cmap"] <= 1
    assert table["chance"]["action_top1"] == pytest.approx(1 / 3)
    # chance cMAP = mean positive rate of the test static clips (each video's attributes, per clip)
    test_attributes = Store.open(raw).videos().attributes[Store.open(raw).split_indices("test")]
    assert table["chance"]["attribute_cmap"] == pytest.approx(test_attributes.mean())
    # the structured store's classes are planted directions: the raw action head reads them
    assert table["raw"]["action_top1"] > 0.8
    quality = metrics["inversion_quality"]
    assert set(quality) == {"anonymized", "blackbox", "whitebox"} and set(quality["whitebox"]) == {"clips", "static"}
    for kind in ("clips", "static"):
        # the white-box preimage reproduces the observed output (float16 storage sets the floor)
        assert quality["whitebox"][kind]["output_mse"] < 1e-4
        assert -1 <= quality["blackbox"][kind]["cosine"] <= 1
    # this small AAM is invertible: the white-box attack lands on the raw rows and reads what raw reads
    assert quality["whitebox"]["clips"]["mse"] < 1e-3 * quality["anonymized"]["clips"]["mse"]
    assert table["whitebox"]["action_top1"] == table["raw"]["action_top1"]
    assert metrics["anonymizer"]["aam_sha256"] == Store.open(anon).provenance["anonymizer"]["aam_sha256"]
    assert metrics["notes"] == []
    json.dumps(json_safe(metrics), allow_nan=False)
    again = run(Store.open(raw), Store.open(anon), run_dir, AttackConfig(**FAST))
    assert again["table"] == table and again["inversion_quality"] == quality  # seeded: same numbers


def test_whitebox_recovers_the_input_of_an_invertible_aam():
    dim = 16
    aam = near_identity_aam(dim)
    raw = torch.randn(300, dim, generator=torch.Generator().manual_seed(1)) * 2
    with torch.no_grad():
        observed = aam(raw)
    assert (observed - raw).pow(2).mean() > 1e-3  # the map is not the identity: there is something to undo
    recovered, residual = whitebox_invert(aam, observed, steps=300, lr=0.05, batch_rows=64)
    assert (recovered - raw).abs().max() < 1e-3
    assert residual.max() < 1e-8
    # rows never interact: another batch size gives the same preimages
    again, _ = whitebox_invert(aam, observed, steps=300, lr=0.05, batch_rows=300)
    torch.testing.assert_close(again, recovered, rtol=1e-5, atol=1e-5)


def test_whitebox_recovers_whole_sequences_of_a_temporal_aam():
    dim = 16
    aam = near_identity_aam(dim, mode="temporal", seed=2)
    counts = np.array([3, 1, 5, 2])
    raw = torch.randn(int(counts.sum()), dim, generator=torch.Generator().manual_seed(3))
    observed = torch.empty_like(raw)
    start = 0
    with torch.no_grad():
        for count in counts:  # the export's definition: the AAM over each whole video
            sequence = raw[start : start + count][None]
            observed[start : start + count] = aam(sequence, torch.ones(1, count, dtype=torch.bool))[0]
            start += count
    recovered, residual = whitebox_invert_sequences(aam, observed, counts, steps=300, lr=0.05, batch_rows=6)
    assert (recovered - raw).abs().max() < 1e-3
    assert residual.max() < 1e-8


def test_blackbox_inverter_learns_a_linear_map():
    generator = torch.Generator().manual_seed(4)
    dim, n = 8, 800
    mixing = torch.linalg.qr(torch.randn(dim, dim, generator=generator))[0] * torch.linspace(0.5, 2.0, dim)
    raw = torch.randn(n, dim, generator=generator)
    anonymized = raw @ mixing + 0.3
    groups = np.arange(n) // 4  # four rows per "video"
    train_rows, test_rows = slice(0, 600), slice(600, n)
    config = AttackConfig(inverter_epochs=60, inverter_batch_size=64, inverter_lr=3e-3, inverter_hidden=32)
    inverter, outcome, details = train_inverter(anonymized[train_rows], raw[train_rows], groups[train_rows], config)
    with torch.no_grad():
        recovered = inverter(anonymized[test_rows])
    error = (recovered - raw[test_rows]).pow(2).mean() / raw[test_rows].var()
    assert error < 0.01, f"relative MSE {error:.4f} on unseen rows"
    assert details["n_fit_pairs"] + details["n_val_pairs"] == 600 and details["val_mse"] < 0.02


def test_cli_on_a_temporal_anonymizer(attack_inputs, tmp_path):
    raw, _, _ = attack_inputs
    run_dir, anon = tmp_path / "run", tmp_path / "anon.zarr"
    train(small_config(raw, run_dir, epochs=1, aam=AAMConfig(mode="temporal", layers=2, heads=2, window=1)))
    export_store(run_dir, raw, anon, device="cpu")
    result = run_cli(EVALUATE, "attack", "--raw", str(raw), "--anon", str(anon), "--run", str(run_dir),
                     "--out", str(tmp_path), "--inverter-epochs", "3", "--whitebox-steps", "20", "--action-epochs", "5",
                     "--attribute-epochs", "3", "--attribute-kind", "clips", "--device", "cpu", "--no-progress")
    assert result.returncode == 0, result.stderr
    for row in ("raw", "anonymized", "black-box inversion", "white-box inversion", "chance"):
        assert row in result.stdout
    document = json.loads((tmp_path / "attack.json").read_text())
    assert document["protocol"] == "attack" and set(document["store"]) == {"anon", "raw"}
    assert document["config"]["attribute_kind"] == "clips"
    assert document["metrics"]["attribute"]["kind"] == "clips"
    assert document["metrics"]["whitebox"]["mode"].startswith("temporal")


def test_mismatched_stores_and_runs_are_one_line_errors(attack_inputs, tmp_path):
    raw, anon, run_dir = attack_inputs
    other_raw = structured_store(tmp_path / "other.zarr", seed=7)
    other_run = tmp_path / "other_run"
    train(small_config(raw, other_run, epochs=1, seed=11))
    cases = {
        "not an anonymized store": (raw, raw, run_dir),
        "itself an anonymized store": (anon, anon, run_dir),
        "another anonymizer": (raw, anon, other_run),
        "was exported from": (other_raw, anon, run_dir),
    }
    for message, (raw_path, anon_path, run_path) in cases.items():
        with pytest.raises(FeatstoreError, match=message):
            run(Store.open(raw_path), Store.open(anon_path), run_path, AttackConfig(**FAST))
    result = run_cli(EVALUATE, "attack", "--raw", str(other_raw), "--anon", str(anon), "--run", str(run_dir),
                     "--out", str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 2
    assert "was exported from" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_labels_skip_their_column_with_a_note(tmp_path):
    rng = np.random.default_rng(0)
    clips = [rng.normal(size=(2, 8)) for _ in range(6)]
    store = write_array_store(tmp_path / "plain.zarr", clips, clips, ["train"] * 4 + ["test"] * 2, [0, 1] * 3,
                              np.zeros((6, 0)), ["a", "b"], [])
    data = StoreData(Store.open(store), torch.device("cpu"), kinds=("clips", "static"))
    assert "no private attributes" in attribute_note(data, AttackConfig())
    assert action_note(data, AttackConfig()) is None
    unlabelled = write_array_store(tmp_path / "unlabelled.zarr", clips, clips, ["train"] * 4 + ["test"] * 2, [-1] * 6,
                                   np.ones((6, 1)), ["a", "b"], ["p"])
    data = StoreData(Store.open(unlabelled), torch.device("cpu"), kinds=("clips", "static"))
    assert "no labelled 'train' videos" in action_note(data, AttackConfig())
    assert attribute_note(data, AttackConfig()) is None


def test_bad_configs():
    for bad in (dict(inverter_epochs=0), dict(inverter_hidden=0), dict(inverter_layers=-1), dict(whitebox_lr=0.0),
                dict(whitebox_steps=-1), dict(attribute_kind="frames"), dict(inverter_val_fraction=1.0),
                dict(train_split="test")):
        with pytest.raises(FeatstoreError):
            AttackConfig(**bad)
