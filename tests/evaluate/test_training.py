"""The shared training loop: samplers, seeded determinism, epoch selection, validation carving."""

import numpy as np
import pytest
import torch
from torch import nn

from data_manifests.errors import FeatstoreError
from evaluate.settings import TrainSettings
from evaluate.training import AllRows, OneRowPerGroup, carve_validation, linear_head, seeded_module, train_head


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
