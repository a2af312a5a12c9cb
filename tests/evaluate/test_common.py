"""The shared setup: row arithmetic, samplers, the seeded training loop, result files."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from evaluate.common import (
    AllRows,
    OneRowPerGroup,
    StoreData,
    TrainSettings,
    carve_validation,
    linear_head,
    save_result,
    seeded_module,
    train_head,
)
from evaluate.protocols.privacy import PrivacyConfig
from data_manifests.errors import FeatstoreError
from featstore.store import Store


def test_store_rows_and_video_means_match_a_plain_loop(tiny_store):
    store = Store.open(tiny_store)
    data = StoreData(store, torch.device("cpu"), kinds=("clips", "static"))
    videos = data.split_videos("test", "clips")
    rows, owner = data.rows_of(videos, "static")
    offsets = store.static_offsets()
    expected = [(r, i) for i, v in enumerate(videos) for r in range(offsets[v], offsets[v + 1])]
    assert list(zip(rows.tolist(), owner.tolist())) == expected
    clips = store.load_embeddings("clips")
    clip_offsets = store.clip_offsets()
    means = np.stack([clips[clip_offsets[v] : clip_offsets[v + 1]].mean(axis=0) for v in videos])
    np.testing.assert_allclose(data.video_means(videos).numpy(), means, rtol=1e-5, atol=1e-6)
    assert data.evenly_spaced_rows(videos, 5).shape == (len(videos), 5)


def test_one_row_per_group_draws_each_group_once_inside_its_rows():
    starts, counts = np.array([0, 10, 13]), np.array([10, 3, 1])
    sampler = OneRowPerGroup.of(starts, counts, targets=np.array([7, 8, 9]))
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(50):
        rows, targets = sampler(generator)
        assert sorted(targets.tolist()) == [7, 8, 9]
        for row, target in zip(rows.tolist(), targets.tolist()):
            group = target - 7
            assert starts[group] <= row < starts[group] + counts[group]
            seen.add(row)
    assert seen == set(range(14))  # over many epochs every row of every group comes up


def test_all_rows_is_a_fresh_permutation_each_epoch():
    sampler = AllRows.of(np.arange(100, 120), np.arange(20))
    generator = torch.Generator().manual_seed(0)
    first, second = sampler(generator), sampler(generator)
    assert sorted(first[0].tolist()) == list(range(100, 120))
    assert (first[0] - 100).tolist() == first[1].tolist()  # row and target stay paired
    assert first[0].tolist() != second[0].tolist()


def toy_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((64, 8)).astype(np.float32))
    y = (x[:, 0] > 0).long()
    return x, y, AllRows.of(np.arange(64), np.arange(64))


def test_training_is_deterministic_and_learns():
    x, y, sampler = toy_problem()
    settings = TrainSettings(epochs=30, lr=1e-2, batch_size=16, seed=3)
    weights = []
    for _ in range(2):
        model = seeded_module(linear_head(8, 2), settings.seed, torch.device("cpu"))
        outcome = train_head(model, x, y, sampler, nn.functional.cross_entropy, settings)
        weights.append(model.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    assert outcome.losses[-1] < outcome.losses[0] * 0.5
    assert outcome.selected_epoch == 30 and outcome.loop_seconds > 0


def test_selection_restores_the_best_epoch_weights():
    x, y, sampler = toy_problem()
    settings = TrainSettings(epochs=6, lr=1e-2, batch_size=16, seed=0, plateau_factor=0.2, plateau_patience=0)
    scores = iter([0.1, 0.5, float("nan"), 0.5, 0.2, 0.3])  # best: epoch 2 (ties keep the earlier epoch)
    snapshots = []

    def select(model):
        snapshots.append(model.weight.detach().clone())
        return next(scores)

    model = seeded_module(linear_head(8, 2), 0, torch.device("cpu"))
    outcome = train_head(model, x, y, sampler, nn.functional.cross_entropy, settings, select=select)
    assert outcome.selected_epoch == 2
    assert torch.equal(model.weight, snapshots[1])


def test_carve_validation_is_seeded_and_disjoint():
    fit, val = carve_validation(50, 0.1, seed=4)
    assert len(val) == 5 and len(fit) == 45 and not set(fit) & set(val)
    again = carve_validation(50, 0.1, seed=4)
    assert np.array_equal(fit, again[0]) and np.array_equal(val, again[1])
    with pytest.raises(FeatstoreError):
        carve_validation(1, 0.1, seed=0)


def test_save_result_writes_config_metrics_and_provenance(tiny_store, tmp_path):
    store = Store.open(tiny_store)
    config = PrivacyConfig(epochs=3)
    path = save_result(tmp_path / "out", "privacy", config, {"cmap": 0.7, "per_attribute": {"a": float("nan")}},
                       store)
    document = json.loads(path.read_text())
    assert path == tmp_path / "out" / "privacy.json"
    assert set(document) == {"protocol", "config", "metrics", "store", "store_provenance", "finished"}
    assert document["config"]["epochs"] == 3 and document["config"]["attacker"] == "all"  # the default: every attacker
    assert document["metrics"]["per_attribute"]["a"] is None  # nan is written as null
    assert document["store"] == str(tiny_store)
    assert document["store_provenance"]["encoder"] == "tiny-vit" and document["store_provenance"]["dim"] == 192
    (tmp_path / "file").write_text("x")
    with pytest.raises(FeatstoreError, match="not a folder"):
        save_result(tmp_path / "file", "privacy", config, {}, store)
