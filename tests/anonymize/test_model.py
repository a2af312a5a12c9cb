"""AAM shapes, batch independence, the temporal mode's receptive field, identity init, parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anonymize.model import AAMConfig, OutputProjection, build_aam, output_projection, parameter_report
from anonymize.train import Trainer, zero_residual_outputs
from data_manifests.errors import FeatstoreError
from tests.anonymize.conftest import small_config

VARIANTS = [
    AAMConfig(),
    AAMConfig(layers=1, heads=4),
    AAMConfig(layers=5, heads=16),
    AAMConfig(block="attention-only"),
    AAMConfig(architecture="mlp", layers=1),
    AAMConfig(architecture="mlp", layers=3),
    AAMConfig(mode="temporal", window=1),
]


@pytest.mark.parametrize("config", VARIANTS, ids=lambda c: f"{c.architecture}-{c.block}-{c.layers}x{c.heads}-{c.mode}")
def test_output_shape_equals_input_shape(config):
    torch.manual_seed(0)
    aam = build_aam(32, config)
    assert aam(torch.randn(5, 32)).shape == (5, 32)
    assert aam(torch.randn(3, 4, 32), torch.ones(3, 4, dtype=torch.bool)).shape == (3, 4, 32)


@pytest.mark.parametrize("config", VARIANTS, ids=lambda c: f"{c.architecture}-{c.block}-{c.layers}x{c.heads}-{c.mode}")
def test_batch_independence(config):
    """A sample's output does not depend on the other samples of its batch (eval mode: all variants;
    training mode too for the attention AAM, whose clip mode never mixes samples)."""
    torch.manual_seed(0)
    aam = build_aam(32, config)
    x = torch.randn(8, 32)
    other = torch.randn(8, 32) * 5
    modes = ["eval"] + (["train"] if config.architecture == "attention" else [])
    for mode in modes:
        aam.train(mode == "train")
        alone = torch.cat([aam(x[i : i + 1]) for i in range(len(x))])
        together = aam(x)
        mixed = aam(torch.cat([x[:4], other[:4], x[4:], other[4:]]))
        torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.cat([mixed[:4], mixed[8:12]]), alone, rtol=1e-5, atol=1e-5)


def test_the_authors_batch_mixing_is_detected_by_the_same_check():
    """The authors' layout (a 2-D [B, D] tensor into a sequence-first attention) fails the property
    the test above checks, so that check can tell the difference."""
    torch.manual_seed(0)
    attention = torch.nn.MultiheadAttention(32, 8)
    x = torch.randn(8, 32)
    together = x + attention(x, x, x)[0]
    first_alone = x[:1] + attention(x[:1], x[:1], x[:1])[0]
    assert not torch.allclose(together[:1], first_alone, atol=1e-4)


def test_temporal_mode_attends_only_within_the_window_and_the_mask():
    torch.manual_seed(0)
    config = AAMConfig(mode="temporal", layers=2, window=1, heads=4)
    aam = build_aam(32, config).eval()
    x = torch.randn(1, 9, 32)
    mask = torch.ones(1, 9, dtype=torch.bool)
    base = aam(x, mask)
    changed = x.clone()
    changed[0, 8] += 3 * torch.randn(32)  # position 8 is 4 > layers * window = 2 positions away from position 4
    torch.testing.assert_close(aam(changed, mask)[0, :6], base[0, :6])
    assert not torch.allclose(aam(changed, mask)[0, 6], base[0, 6])
    # A padded position never influences real ones.
    padded = x.clone()
    padded[0, 5] = 100 * torch.randn(32)
    mask_padded = mask.clone()
    mask_padded[0, 5] = False
    reference = aam(padded, mask_padded)
    padded[0, 5] = 100 * torch.randn(32)
    torch.testing.assert_close(aam(padded, mask_padded)[0, :5], reference[0, :5])


def test_a_context_of_layers_times_window_reproduces_the_whole_sequence():
    torch.manual_seed(0)
    config = AAMConfig(mode="temporal", layers=3, window=1, heads=4)
    aam = build_aam(32, config).eval()
    sequence = torch.randn(1, 12, 32)
    whole = aam(sequence, torch.ones(1, 12, dtype=torch.bool))[0]
    context = config.context_window
    assert context == 3
    for centre in (0, 5, 11):
        rows = np.arange(centre - context, centre + context + 1)
        valid = (rows >= 0) & (rows < 12)
        window = sequence[0, np.clip(rows, 0, 11)][None]
        out = aam(window, torch.from_numpy(valid)[None])[0, context]
        torch.testing.assert_close(out, whole[centre], rtol=1e-5, atol=1e-5)


def test_zero_identity_is_exact_and_trained_identity_reproduces_the_input(array_store, tmp_path):
    torch.manual_seed(0)
    aam = build_aam(32, AAMConfig())
    zero_residual_outputs(aam)
    x = torch.randn(10, 32)
    torch.testing.assert_close(aam(x), x)
    config = small_config(array_store, tmp_path / "run", identity={"preset": "code", "epochs": 150, "lr": 3e-3})
    trainer = Trainer(config, show_progress=False)
    result = trainer.identity_init()
    assert result["loss"] == "mse" and result["lr"] == 3e-3  # the code preset's loss, a faster lr for the test
    assert result["relative_mse"] < 0.01, result  # reconstruction error < 1% of the embedding variance
    untrained = Trainer(small_config(array_store, tmp_path / "run2", identity={"preset": "none"}), show_progress=False)
    rows = torch.from_numpy(np.asarray(untrained.store.static_embeddings[...], dtype=np.float32))
    with torch.no_grad():
        trained_error = torch.nn.functional.mse_loss(trainer.aam(rows), rows)
        untrained_error = torch.nn.functional.mse_loss(untrained.aam(rows), rows)
    assert trained_error < 0.1 * untrained_error


def test_the_output_projection_is_the_identity_until_fitted_then_drops_what_varies_under_the_floor():
    projection = OutputProjection(3, centre=False)
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    torch.testing.assert_close(projection(x), x)
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    covariance = rotation @ torch.diag(torch.tensor([4.0, 1.0, 1e-4], dtype=torch.float64)) @ rotation.T
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert projection.fit(mean, covariance, floor=0.05) == 2  # 1e-4 < 0.05 x the mean eigenvalue 1.67
    small, large = rotation[:, 2].float(), rotation[:, 0].float()
    centre = mean.float()
    torch.testing.assert_close(projection(centre + small), centre)  # the small direction is gone
    torch.testing.assert_close(projection(centre + large - small), centre + large)  # the others stay
    projection.reset()
    torch.testing.assert_close(projection(x), x)
    with pytest.raises(FeatstoreError, match="output floor"):
        AAMConfig(output_floor=1.5)


def test_a_rank_cap_keeps_the_largest_of_the_directions_above_the_floor():
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    covariance = rotation @ torch.diag(torch.tensor([4.0, 1.0, 1e-4], dtype=torch.float64)) @ rotation.T
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    largest, middle, small = (rotation[:, i].float() for i in range(3))
    centre = mean.float()
    capped = OutputProjection(3, centre=False)
    assert capped.fit(mean, covariance, floor=0.05, rank=1) == 1  # two above the floor, the larger kept
    torch.testing.assert_close(capped(centre + largest - middle + small), centre + largest)
    assert capped.fit(mean, covariance, floor=0.0, rank=2) == 2  # without a floor: the two largest
    torch.testing.assert_close(capped(centre + largest + middle - small), centre + largest + middle)
    assert capped.fit(mean, covariance, floor=0.05, rank=3) == 2  # a cap above what the floor keeps changes nothing
    assert capped.fit(mean, covariance, floor=0.0, rank=5) == 3  # nor one above the dimension
    centred = OutputProjection(3, centre=True)
    assert centred.fit(mean, covariance, floor=0.0, rank=1) == 1  # centring and a cap: the largest, not shifted back
    torch.testing.assert_close(centred(centre + largest - middle), largest)
    assert output_projection(AAMConfig(output_rank=2), 4) is not None
    with pytest.raises(FeatstoreError, match="output rank"):
        AAMConfig(output_rank=-1)


def test_a_centring_output_projection_subtracts_the_fitted_mean_with_or_without_the_floor():
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    centring = OutputProjection(3, centre=True)
    torch.testing.assert_close(centring(x), x)  # the identity until fitted
    assert centring.fit(mean, torch.eye(3, dtype=torch.float64), floor=0.0) == 3  # floor 0: nothing dropped
    torch.testing.assert_close(centring(x), x - mean.float())
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    covariance = rotation @ torch.diag(torch.tensor([4.0, 1.0, 1e-4], dtype=torch.float64)) @ rotation.T
    assert centring.fit(mean, covariance, floor=0.05) == 2
    small, large = rotation[:, 2].float(), rotation[:, 0].float()
    torch.testing.assert_close(centring(mean.float() + large - small), large)  # projected, then not shifted back
    assert output_projection(AAMConfig(output_centre=True), 4) is not None
    assert output_projection(AAMConfig(), 4) is None
    # the choice is in the weights (their hash identifies an export's anonymizer): a floor-only map's keys stay
    assert "centred" in centring.state_dict() and "centred" not in OutputProjection(3, centre=False).state_dict()


PAPER_TABLE_16 = {1024: 25.6e6, 768: 14.6e6, 1280: 39.8e6, 1408: 48.0e6}


@pytest.mark.parametrize("dim", sorted(PAPER_TABLE_16))
def test_default_parameter_count_is_close_to_the_papers_table_16(dim):
    report = parameter_report(dim, AAMConfig(), n_classes=400)
    # 3 blocks x (attention 4d^2 + 4d, FFN 4d^2 + 3d, 2 LayerNorms 4d) + a linear 400-way head.
    assert report["aam"] == 3 * (8 * dim * dim + 11 * dim)
    assert report["total"] == report["aam"] + 400 * dim + 400
    assert abs(report["total"] / PAPER_TABLE_16[dim] - 1) < 0.015


def test_bad_configs_are_one_line_errors():
    with pytest.raises(FeatstoreError, match="architecture"):
        AAMConfig(architecture="unet")
    with pytest.raises(FeatstoreError, match="temporal mode needs the attention"):
        AAMConfig(architecture="mlp", mode="temporal")
    with pytest.raises(FeatstoreError, match="divisible"):
        build_aam(30, AAMConfig(heads=8))
