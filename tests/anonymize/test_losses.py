"""Loss terms against hand-computed values, and the sign of each term of Eq. 7 in a training step."""

from __future__ import annotations

import math

import pytest
import torch

from anonymize.losses import attribute_bce, attribute_confusion, latent_consistency, nt_xent, within_video_consistency
from anonymize.train import STREAM_BUDGET, STREAM_TASK0, Trainer, generator_for
from tests.anonymize.conftest import small_config


def test_nt_xent_orthogonal_pairs_by_hand():
    # 2 videos x 2 static clips: z = [e1, e2 | e1, e2]. Each anchor: positive similarity 1, two
    # negatives of similarity 0 -> loss = -log(e^(1/T) / (e^(1/T) + 2)) for all four anchors.
    first = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    second = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)  # scale must not matter (cosine)
    for temperature in (0.1, 0.5, 1.0):
        expected = -math.log(math.exp(1 / temperature) / (math.exp(1 / temperature) + 2))
        assert nt_xent(first, second, temperature).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_non_orthogonal_by_hand():
    # z0 = (1,0), z1 = (0,1) ; z2 = (1,1)/sqrt2 (positive of z0), z3 = (1,0) (positive of z1). T = 1.
    first = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    second = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    c = 1 / math.sqrt(2)
    sim = [[1, 0, c, 1], [0, 1, c, 0], [c, c, 1, c], [1, 0, c, 1]]
    positive = {0: 2, 1: 3, 2: 0, 3: 1}
    losses = []
    for i in range(4):
        denominator = sum(math.exp(sim[i][j]) for j in range(4) if j != i)
        losses.append(-math.log(math.exp(sim[i][positive[i]]) / denominator))
    assert nt_xent(first, second, 1.0).item() == pytest.approx(sum(losses) / 4, rel=1e-6)


def test_latent_consistency_distances_by_hand():
    anonymized = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    raw = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert latent_consistency(anonymized, raw, "mse").item() == pytest.approx((4 + 9 + 16) / 4)
    assert latent_consistency(anonymized, raw, "l1").item() == pytest.approx((2 + 3 + 4) / 4)
    assert latent_consistency(anonymized, raw, "l2").item() == pytest.approx((2 + 5) / 2)


def test_within_video_consistency_by_hand():
    raw = (torch.tensor([[1.0, 2.0], [0.0, 1.0]]), torch.tensor([[0.0, 2.0], [0.0, 0.0]]))  # differences (1,0), (0,1)
    shifted = (raw[0] + 5.0, raw[1] + 5.0)  # a shift every clip of a video shares costs nothing
    assert within_video_consistency(shifted, raw).item() == 0.0
    squeezed = (raw[0] * 0.5, raw[1] * 0.5)  # differences halved: (0.5, 0), (0, 0.5)
    assert within_video_consistency(squeezed, raw).item() == pytest.approx((0.25 + 0.25) / 4)


def test_attribute_losses_ignore_unknown_labels_and_confusion_is_minimal_at_one_half():
    logits = torch.tensor([[0.0, 5.0], [2.0, -1.0]])
    labels = torch.tensor([[1, -1], [0, -1]])
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert attribute_bce(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    assert attribute_confusion(torch.zeros(2, 2), labels).item() == pytest.approx(math.log(2))
    assert attribute_confusion(logits, labels).item() > math.log(2)


def _step_batches(trainer):
    """The static pairs and action batch that ``train_epoch(0)`` uses for its (single) step."""
    seed = trainer.config.seed
    pairs = next(iter(trainer.pair_sources[0].epoch(27, generator_for(seed, 0, STREAM_BUDGET))))
    batch = next(trainer.tasks[0].epoch_batches(27, generator_for(seed, 0, STREAM_TASK0)))
    return pairs, batch


def _budget(trainer, pairs, batch):
    return nt_xent(trainer.aam(pairs.first), trainer.aam(pairs.second), 0.1).item()


def _lc(trainer, pairs, batch):
    return latent_consistency(trainer.aam(batch.embeddings), batch.embeddings).item()


def _utility(trainer, pairs, batch):
    return trainer.tasks[0].loss(trainer.aam(batch.embeddings), batch).item()


@torch.no_grad()
def _measure(trainer, measure):
    return measure(trainer, *_step_batches(trainer))


def _one_step_change(array_store, tmp_path, measure, identity="zero", **weights):
    """One joint step (27 training videos, batch 27) with the given weights: measure(after) - measure(before)."""
    config = small_config(array_store, tmp_path / "run", identity={"preset": identity}, head_init_epochs=0,
                          batch_size=27, lr=1e-4, lr_reference_batch=27, weight_decay=0.0, **weights)
    trainer = Trainer(config, show_progress=False)
    before = _measure(trainer, measure)
    assert trainer.train_epoch(0)["steps"] == 1
    return _measure(trainer, measure) - before


def test_signs_of_the_objective_terms(array_store, tmp_path):
    # Budget alone: NT-Xent is maximized (the objective has -w_B * L_budget).
    assert _one_step_change(array_store, tmp_path / "b", _budget, w_utility=0.0, w_lc=0.0, w_budget=1.0) > 0
    # Utility alone: the task loss goes down.
    assert _one_step_change(array_store, tmp_path / "u", _utility, w_utility=1.0, w_lc=0.0, w_budget=0.0) < 0
    # LC alone: the distance to the input goes down (from a random AAM: at the identity it is already 0).
    assert _one_step_change(array_store, tmp_path / "l", _lc, identity="none", w_utility=0.0, w_lc=1.0,
                            w_budget=0.0) < 0


def test_nt_xent_to_uniform_is_zero_when_pairs_carry_no_identity_and_ignores_offsets():
    from anonymize.losses import nt_xent_to_uniform

    constant = torch.ones(3, 4, dtype=torch.float64)
    assert nt_xent_to_uniform(constant, constant).item() == pytest.approx(0.0, abs=1e-12)
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    second = first + 0.01 * torch.randn(5, 4, generator=generator, dtype=torch.float64)
    offset = torch.full((1, 4), 50.0, dtype=torch.float64)
    value = nt_xent_to_uniform(first, second, 0.1)
    assert value.item() > 1.0  # matching pairs are far below the uniform value log(9)
    torch.testing.assert_close(nt_xent_to_uniform(first + offset, second + offset, 0.1), value)
    # by hand: (NT-Xent of the centred batch - log(2N - 1))^2
    both = torch.cat([first, second])
    both = both - both.mean(0)
    expected = (nt_xent(both[:5], both[5:], 0.1) - math.log(9)) ** 2
    torch.testing.assert_close(value, expected)
