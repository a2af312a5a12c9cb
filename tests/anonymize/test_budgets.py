"""Budget modes: the registry, the new loss terms, and budgets on full clips that the static-clip
shortcut cannot satisfy (trained on a store whose attribute structure is known)."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from torch import nn

from anonymize.array_store import write_array_store
from anonymize.budgets import budget_class, budget_modes
from anonymize.budgets.base import train_split_std
from anonymize.budgets.independence import INDEPENDENCE_MIN_ROWS
from anonymize.cli import main
from anonymize.config import TrainConfig
from anonymize.data import window_rows
from anonymize.export import export_store
from anonymize.losses import gaussian_channel_capacity, info_nce, info_nce_confusion, matching_logits
from anonymize.model import AAMConfig
from anonymize.runinfo import run_summary
from anonymize.train import Trainer
from evaluate.metrics import leakage_removed
from evaluate.protocols import vp
from data_manifests.errors import FeatstoreError
from featstore.store import VIDEO_LABELS, Store
from tests.anonymize.conftest import small_config

DIM = 16
STATIC_OFFSET = 6.0  # added to the last 3 dimensions of every static clip: static and full clips are separable
OFFSET_DIMS = slice(DIM - 3, DIM)


def planted_store(out: Path, n_videos: int = 160, seed: int = 0) -> Path:
    """4 action classes and 2 binary attributes in orthogonal directions; the attributes (+-0.75 along
    their direction, noise std 0.5 per dimension) are planted in the full clips AND the static clips;
    static clips also carry a constant offset, so an anonymizer can tell them from full clips."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(DIM, DIM)))[0]
    class_directions = 2.0 * basis[:, :4].T
    attribute_directions = 0.75 * basis[:, 4:6].T
    labels = (np.arange(n_videos) // 4) % 4
    attributes = rng.integers(0, 2, size=(n_videos, 2))
    offset = np.zeros(DIM)
    offset[OFFSET_DIMS] = STATIC_OFFSET
    clips, static = [], []
    for video in range(n_videos):
        appearance = (2 * attributes[video] - 1) @ attribute_directions
        clips.append(class_directions[labels[video]] + appearance + 0.5 * rng.normal(size=(3 + video % 3, DIM)))
        static.append(appearance + offset + 0.5 * rng.normal(size=(4, DIM)))
    splits = ["train" if video % 4 else "test" for video in range(n_videos)]
    return write_array_store(out, clips, static, splits, labels.tolist(), attributes, list("abcd"), ["p", "q"])


# The independence term is a kernel statistic of the batch: it needs batches of tens of videos, and it is
# bounded (0..1), so it is weighted like the demo's default (w_B 10, w_LC 0.1).
MODE_SETTINGS = {"independence": {"batch_size": 40, "lr_reference_batch": 40, "w_budget": 10.0, "w_lc": 0.1,
                                  "epochs": 40}}
# the planted runs: name -> (budget mode, what a full-clip mode sees of each video)
PLANTED_RUNS = {"none": ("none", "one"), "direct": ("direct", "one"), "cross-view": ("cross-view", "one"),
                "supervised-clips": ("supervised-clips", "one"), "independence": ("independence", "one"),
                "independence-video-mean": ("independence", "video-mean")}


def planted_config(store: Path, out: Path, mode: str, budget_clips: str = "one") -> TrainConfig:
    """Enough optimization for the AAM to move on a small store (seconds on one thread)."""
    settings = dict(identity={"preset": "zero"}, head_init_epochs=10, epochs=15, batch_size=16, lr=3e-3,
                    lr_scaling="linear", lr_reference_batch=32, w_lc=1.0, w_budget=3.0, budget_steps=3,
                    critic_hidden=64, critic_proj=16, validate_every=0, progress=False, device="cpu")
    settings.update(MODE_SETTINGS.get(mode, {}))
    return TrainConfig(store=str(store), out=str(out), budget_mode=mode, budget_clips=budget_clips,
                       aam=AAMConfig(layers=1, heads=2), **settings)


def measure(trainer: Trainer) -> dict:
    """A fresh attacker (logistic regression) trained on AAM(train clips), its attribute AP on AAM(test
    clips); a fresh linear action probe the same way; how far the AAM moves clips and static clips."""
    store = trainer.store
    clips = torch.from_numpy(store.load_embeddings("clips").astype(np.float32))
    static = torch.from_numpy(store.load_embeddings("static").astype(np.float32))
    trainer.aam.eval()
    with torch.no_grad():
        anonymized_clips, anonymized_static = trainer.aam(clips), trainer.aam(static)
    owner = np.repeat(np.arange(len(store.videos().label)), np.diff(store.clip_offsets()))
    attributes, labels = store.videos().attributes[owner], store.videos().label[owner]
    train = np.isin(owner, store.split_indices("train"))

    def attribute_ap(values: torch.Tensor) -> float:
        x = values.numpy()
        scores = []
        for a in range(attributes.shape[1]):
            attacker = LogisticRegression(max_iter=2000).fit(x[train], attributes[train, a])
            scores.append(average_precision_score(attributes[~train, a], attacker.decision_function(x[~train])))
        return float(np.mean(scores))

    def action_accuracy(values: torch.Tensor) -> float:
        x = values.numpy()
        return float(LogisticRegression(max_iter=2000).fit(x[train], labels[train]).score(x[~train], labels[~train]))

    def move(anonymized: torch.Tensor, raw: torch.Tensor) -> float:
        return float((anonymized - raw).norm(dim=1).mean() / raw.std(0).norm())

    return {"ap": attribute_ap(anonymized_clips), "raw_ap": attribute_ap(clips),
            "accuracy": action_accuracy(anonymized_clips), "raw_accuracy": action_accuracy(clips),
            "move_clips": move(anonymized_clips, clips), "move_static": move(anonymized_static, static)}


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return planted_store(tmp_path_factory.mktemp("planted") / "planted.zarr")


@pytest.fixture(scope="module")
def planted_runs(planted, tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("planted_runs")
    results = {}
    for name, (mode, budget_clips) in PLANTED_RUNS.items():
        config = planted_config(planted, root / name, mode, budget_clips)
        trainer = Trainer(config)
        trainer.run()
        config.save(root / name / "config.json")  # what `train` writes beside the checkpoint: the run can be exported
        results[name] = {**measure(trainer), "run": root / name}
    return results


# ---------------------------------------------------------------------------------------------- registry


def test_registry_lists_every_mode_and_which_read_attribute_labels():
    assert budget_modes() == ["direct", "adversarial", "supervised", "none", "cross-view", "bottleneck",
                              "supervised-clips", "independence"]
    assert {mode for mode in budget_modes() if budget_class(mode).supervised} == {"supervised", "supervised-clips"}
    for mode in ("cross-view", "independence"):
        assert budget_class(mode).static_inputs == "raw" and budget_class(mode).uses_clips
    assert budget_class("supervised-clips").static_inputs == "none"
    for name in ("magic", "Direct"):
        with pytest.raises(FeatstoreError, match="budget mode must be one of") as error:
            budget_class(name)
        assert "\n" not in str(error.value)


def test_config_validation_of_the_new_fields_is_one_line(array_store, tmp_path):
    cases = [({"budget_mode": "magic"}, "budget mode"), ({"critic_hidden": 0}, "critic sizes"),
             ({"critic_temperature": 0.0}, "critic temperature"), ({"critic_objective": "win"}, "critic objective"),
             ({"bottleneck_noise": 0.0}, "bottleneck noise"), ({"adversary_ensemble": 0}, "adversary ensemble"),
             ({"independence_estimator": "jackknife"}, "independence estimator"),
             ({"independence_estimator": "unbiased", "independence_given": "labels"}, "per class"),
             ({"budget_mode": "cross-view", "budget_inputs": "static+clips"}, "does not read them"),
             ({"budget_mode": "bottleneck", "budget_inputs": "static+clips"}, "does not read them")]
    for bad, match in cases:
        with pytest.raises(FeatstoreError, match=match) as error:
            small_config(array_store, tmp_path / "x", **bad)
        assert "\n" not in str(error.value)
    small_config(array_store, tmp_path / "x", budget_mode="bottleneck", bottleneck_with_ntxent=True,
                 budget_inputs="static+clips")


def test_supervised_modes_need_attribute_labels(tmp_path):
    rng = np.random.default_rng(0)
    store = write_array_store(tmp_path / "plain.zarr", [rng.normal(size=(3, 8)) for _ in range(6)],
                              [rng.normal(size=(2, 8)) for _ in range(6)], ["train"] * 6, [0, 1] * 3,
                              np.zeros((6, 0), dtype=int), ["a", "b"], [])
    for mode in ("supervised", "supervised-clips"):
        with pytest.raises(FeatstoreError, match=f"the {mode} budget needs them"):
            Trainer(small_config(store, tmp_path / mode, budget_mode=mode))


def test_train_command_saves_the_new_options(array_store, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", [
        "anonymize", "train", "--store", str(array_store), "--out", str(run), "--budget-mode", "cross-view",
        "--critic-hidden", "8", "--critic-proj", "4", "--critic-temperature", "0.2", "--critic-objective", "maximize",
        "--bottleneck-noise", "0.3", "--bottleneck-with-ntxent", "--adversary-ensemble", "2", "--budget-clips",
        "video-mean", "--utility-target", "raw-head", "--independence-estimator", "unbiased", "--epochs", "1",
        "--batch-size", "8", "--aam-layers", "1", "--identity-init", "zero", "--head-init-epochs", "1",
        "--validate-every", "0", "--device", "cpu", "--no-progress"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0, capsys.readouterr().err
    saved = json.loads((run / "config.json").read_text())
    assert {key: saved[key] for key in ("budget_mode", "critic_hidden", "critic_proj", "critic_temperature",
                                        "critic_objective", "bottleneck_noise", "bottleneck_with_ntxent",
                                        "adversary_ensemble", "budget_clips", "utility_target",
                                        "independence_estimator")} == {
        "budget_mode": "cross-view", "critic_hidden": 8, "critic_proj": 4, "critic_temperature": 0.2,
        "critic_objective": "maximize", "bottleneck_noise": 0.3, "bottleneck_with_ntxent": True,
        "adversary_ensemble": 2, "budget_clips": "video-mean", "utility_target": "raw-head",
        "independence_estimator": "unbiased"}
    info = json.loads((run / "checkpoint.json").read_text())
    assert info["parameters"]["critic"] == 2 * (16 * 8 + 8 + 8 * 4 + 4)
    objective = run_summary(run)["overview"]["objective"]
    assert "utility(raw-head)" in objective and "clips video-mean" in objective, objective


# ---------------------------------------------------------------------------------------------- loss terms


def test_info_nce_confusion_is_zero_at_chance_and_positive_otherwise():
    torch.manual_seed(0)
    assert float(info_nce_confusion(torch.zeros(5, 5))) == pytest.approx(0.0, abs=1e-6)
    logits = matching_logits(torch.randn(6, 4), torch.randn(6, 4), 0.1)
    assert float(info_nce_confusion(logits)) > 0
    expected = -torch.log_softmax(logits, 1).mean(1).mean() - math.log(6)  # CE(uniform, softmax) - log N
    torch.testing.assert_close(info_nce_confusion(logits), expected)
    perfect = matching_logits(torch.eye(4), torch.eye(4), 0.01)
    assert float(info_nce(perfect)) < 1e-6 < float(info_nce(torch.zeros(4, 4))) == pytest.approx(math.log(4))


def test_gaussian_channel_capacity_and_the_bottleneck_noise(array_store, tmp_path):
    outputs = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])  # variances 8/3 and 0
    capacity = gaussian_channel_capacity(outputs, torch.tensor([2.0, 1.0]))
    assert float(capacity) == pytest.approx(math.log(1 + (8 / 3) / 4))
    trainer = Trainer(small_config(array_store, tmp_path / "b", budget_mode="bottleneck", bottleneck_noise=0.5))
    std = train_split_std(Store.open(array_store), "clips")
    torch.testing.assert_close(trainer.budget.noise_std, 0.5 * std)
    trainer.budget.on_epoch_start(0)
    out = torch.zeros(20000, std.shape[0])
    noisy = trainer.budget.utility_input(out)
    torch.testing.assert_close(noisy.std(0), 0.5 * std, rtol=0.05, atol=0.0)


# ---------------------------------------------------------------------------------------------- full-clip budgets


def test_full_clip_budgets_lower_full_clip_attribute_leakage_and_keep_actions(planted_runs):
    none, cross_view, supervised_clips, independence, video_mean = (
        planted_runs[m] for m in ("none", "cross-view", "supervised-clips", "independence", "independence-video-mean"))
    assert none["raw_ap"] > 0.97 and none["raw_accuracy"] > 0.95
    assert none["ap"] > none["raw_ap"] - 0.02  # without a budget the AAM leaks as much as the raw clips
    assert cross_view["ap"] < none["ap"] - 0.2, planted_runs
    assert supervised_clips["ap"] < none["ap"] - 0.1, planted_runs
    assert independence["ap"] < none["ap"] - 0.2, planted_runs
    assert video_mean["ap"] < none["ap"] - 0.2, planted_runs
    for result in (cross_view, supervised_clips, independence, video_mean):
        assert result["accuracy"] >= result["raw_accuracy"] - 0.05


def test_worst_case_full_clip_leakage_falls_under_the_full_clip_modes(planted, planted_runs, tmp_path):
    """The headline measure: the vp protocol's worst case over every attacker on the exported full clips."""
    settings = vp.VPConfig(epochs=30, device="cpu")
    raw = vp.run(Store.open(planted), settings)
    assert raw["worst_case"]["cmap"] > 0.95
    worst = {}
    for mode in ("none", "independence", "independence-video-mean", "cross-view"):
        export_store(planted_runs[mode]["run"], planted, tmp_path / f"{mode}.zarr", device="cpu")
        joined = dataclasses.replace(settings, labels_from=str(planted))  # the export drops the private labels
        worst[mode] = vp.run(Store.open(tmp_path / f"{mode}.zarr"), joined)["worst_case"]["cmap"]
    removed = {mode: leakage_removed(raw["worst_case"]["cmap"], value, raw["chance_cmap"])
               for mode, value in worst.items()}
    assert removed["none"] < 0.1, (worst, removed)
    assert removed["independence"] > 0.5 and removed["cross-view"] > 0.25, (worst, removed)
    assert removed["independence-video-mean"] > 0.5, (worst, removed)


def test_direct_budget_takes_the_static_shortcut_and_cross_view_does_not(planted, planted_runs):
    static_clip_separability = _static_vs_clip_accuracy(Store.open(planted))
    assert static_clip_separability > 0.99
    none, direct = planted_runs["none"], planted_runs["direct"]
    # direct moves static clips far more than the clips users consume, and the clips keep leaking
    assert direct["move_static"] > 2.0 * direct["move_clips"]
    assert direct["move_static"] - none["move_static"] > 4.0 * (direct["move_clips"] - none["move_clips"])
    assert direct["ap"] > none["ap"] - 0.03
    # the full-clip modes move the clips (at least as much as the static clips) and the clips' leakage falls
    cross_view = planted_runs["cross-view"]
    assert cross_view["move_clips"] >= cross_view["move_static"] and cross_view["ap"] < direct["ap"] - 0.2, cross_view
    # independence never runs static clips through the AAM for its term (the scrambler test below); where
    # the static clips land is a side effect of the clips' map, and the clips' leakage falls
    assert planted_runs["independence"]["ap"] < direct["ap"] - 0.2, planted_runs["independence"]


class StaticScrambler(nn.Module):
    """The AAM, except that rows carrying the static offset come out shifted by 100 (and are counted)."""

    def __init__(self, aam: nn.Module):
        super().__init__()
        self.inner = aam
        self.static_rows_seen = 0

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.inner(x, mask)
        is_static = x[..., OFFSET_DIMS].mean(-1, keepdim=True) > STATIC_OFFSET / 2
        self.static_rows_seen += int(is_static.sum())
        return torch.where(is_static, out + 100.0, out)


@pytest.mark.parametrize("mode, budget_clips", [("cross-view", "one"), ("independence", "one"),
                                                 ("independence", "video-mean"), ("direct", "one")])
def test_cross_view_term_does_not_depend_on_what_the_aam_does_to_static_clips(planted, tmp_path, mode, budget_clips):
    config = planted_config(planted, tmp_path / "run", mode, budget_clips)
    plain, scrambled = Trainer(config), Trainer(config)
    scrambled.aam = StaticScrambler(scrambled.aam)
    plain_record, scrambled_record = plain.train_epoch(0), scrambled.train_epoch(0)
    same_weights = all(torch.equal(a, b) for a, b in zip(plain.aam.state_dict().values(),
                                                         scrambled.aam.inner.state_dict().values()))
    if mode in ("cross-view", "independence"):  # AAM(static) is never computed: scrambling it changes nothing
        assert scrambled.aam.static_rows_seen == 0
        assert plain_record["privacy"] == scrambled_record["privacy"] and same_weights
    else:  # the static-pair budget is exactly what the scrambling changes
        assert scrambled.aam.static_rows_seen > 0
        assert plain_record["privacy"] != scrambled_record["privacy"] and not same_weights


def _static_vs_clip_accuracy(store: Store) -> float:
    clips, static = store.load_embeddings("clips").astype(np.float32), store.load_embeddings("static").astype(np.float32)
    x = np.concatenate([clips, static])
    y = np.concatenate([np.zeros(len(clips)), np.ones(len(static))])
    order = np.random.default_rng(0).permutation(len(x))
    half = len(x) // 2
    probe = LogisticRegression(max_iter=2000).fit(x[order[:half]], y[order[:half]])
    return float(probe.score(x[order[half:]], y[order[half:]]))


def test_kernel_alignment_is_one_for_the_same_batch_small_for_independent_ones_and_ignores_linear_maps():
    from anonymize.budgets.independence import kernel_alignment

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=generator)
    independent = torch.randn(200, 8, generator=generator)
    mixed = x @ torch.randn(8, 8, generator=generator) + 3.0  # an invertible linear map and a shift
    scaled = x * torch.tensor([10.0, 1, 1, 1, 1, 1, 1, 0.1])  # one direction blown up, one squashed
    for kernel in ("gaussian", "linear"):
        assert float(kernel_alignment(x, x, kernel, 1e-6, "biased")) == pytest.approx(1.0, abs=1e-4)
        assert float(kernel_alignment(independent, x, kernel, 1e-6, "biased")) < 0.2
        # whitened: a linear map of the anonymized side changes nothing (up to the shrinkage)
        for transformed in (mixed, scaled):
            assert float(kernel_alignment(transformed, x, kernel, 1e-6, "biased")) == pytest.approx(
                float(kernel_alignment(x, x, kernel, 1e-6, "biased")), abs=1e-3)


def test_unbiased_hsic_is_the_u_statistic_over_distinct_quadruples_of_rows():
    """Song et al. 2012: HSIC_u = 1/(n)_4 sum over distinct (i, j, q, r) of k_ij l_ij + k_ij l_qr - 2 k_ij l_iq."""
    from itertools import permutations

    from anonymize.budgets.independence import gaussian_kernel, hsic_unbiased, linear_kernel

    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 3, generator=generator, dtype=torch.float64), torch.randn(7, 2, generator=generator,
                                                                                   dtype=torch.float64)
    k, l = gaussian_kernel(x), linear_kernel(y)
    quadruples = list(permutations(range(7), 4))
    expected = sum(float(k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q])
                   for i, j, q, r in quadruples) / len(quadruples)
    assert float(hsic_unbiased(k, l)) == pytest.approx(expected, rel=1e-10)


def test_the_biased_alignment_grows_with_the_output_rank_and_the_unbiased_one_reads_only_dependence():
    """With fewer rows than dimensions the whitened batches' biased alignment rewards a low output rank: an output
    independent of the static clips reads more at rank 60 than at rank 2. The unbiased one reads about 0 at both
    ranks and more for an output that shares directions with the static clips."""
    from anonymize.budgets.independence import dependence

    generator = torch.Generator().manual_seed(0)
    rows, dims = 100, 128
    static = torch.randn(rows, dims, generator=generator) * torch.linspace(3.0, 0.1, dims)

    def output(shared: int, rank: int) -> torch.Tensor:
        codes = torch.cat([static[:, :shared], torch.randn(rows, rank - shared, generator=generator)], dim=1)
        return codes @ torch.randn(rank, dims, generator=generator)

    low, high, leaky = output(0, 2), output(0, 60), output(4, 6)
    biased = {name: float(dependence(out, static, None, "gaussian+linear", 0.05, "biased"))
              for name, out in (("low", low), ("high", high), ("leaky", leaky))}
    unbiased = {name: float(dependence(out, static, None, "gaussian+linear", 0.05, "unbiased"))
                for name, out in (("low", low), ("high", high), ("leaky", leaky))}
    assert biased["high"] > biased["low"] + 0.3 and biased["high"] > biased["leaky"] + 0.3, biased
    assert max(unbiased["low"], unbiased["high"]) < 0.05, unbiased
    assert unbiased["leaky"] > max(unbiased["low"], unbiased["high"]) + 0.05, unbiased


def test_the_shrinkage_follows_the_mean_variance_so_an_extreme_blow_up_still_hides_a_squashed_direction():
    """The documented limit of the whitening: its ridge is shrinkage x the batch's mean variance, so a
    direction blown up by 1000 raises the ridge above a direction squashed by 1000, which then counts less."""
    from anonymize.budgets.independence import kernel_alignment

    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    extreme = x * torch.tensor([1000.0, 1, 1, 1, 1, 1, 1, 0.001])
    assert float(kernel_alignment(extreme, x, "linear", 1e-6, "biased")) < 0.95


def test_the_output_floor_at_the_shrinkage_drops_every_direction_the_whitening_counts_under_half():
    """Why the demo's floor equals the term's shrinkage: the ridge is shrinkage x the mean eigenvalue m, so the
    whitening keeps lambda / (lambda + shrinkage m) of a direction's variance, and the floor keeps exactly the
    directions with lambda >= shrinkage m. A direction a blow-up pushes under the ridge (the limit above) leaves the
    exports; one the exports keep counts at least half in the term, however large the blow-up."""
    from anonymize.budgets.independence import whiten
    from anonymize.model import OutputProjection

    shrinkage = 0.05
    generator = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator, dtype=torch.float64))
    for blow_up, squash, expected_kept in ((1.0, 1.0, 8), (3.0, 0.2, 7), (30.0, 0.2, 1), (1000.0, 0.001, 1)):
        scales = torch.tensor([blow_up, 1, 1, 1, 1, 1, 1, squash], dtype=torch.float64)
        outputs = (torch.randn(300, 8, generator=generator, dtype=torch.float64) * scales) @ rotation
        counted = torch.linalg.eigvalsh(torch.cov(whiten(outputs, shrinkage).T))
        kept = OutputProjection(8, centre=False).fit(outputs.mean(0), torch.cov(outputs.T), shrinkage)
        assert kept == expected_kept == int((counted >= 0.5).sum()), (blow_up, squash, kept, counted)


def test_independence_given_labels_ignores_what_both_say_about_the_class_and_still_sees_the_rest():
    from anonymize.budgets.independence import centre_per_group, dependence

    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 5
    class_codes = torch.randn(5, 8, generator=generator) * 3
    # clip and frame share only their class (a pose that shows the action)...
    clips = class_codes[labels] + torch.randn(200, 8, generator=generator)
    frames = class_codes[labels] + torch.randn(200, 8, generator=generator)
    # ...or also an attribute that varies within every class
    attribute = torch.randn(200, 8, generator=generator)
    leaky_clips, leaky_frames = clips + 2 * attribute, frames + 2 * attribute
    for kernels in ("gaussian", "gaussian+linear"):
        assert float(dependence(clips, frames, None, kernels, 0.05, "biased")) > 0.5
        assert float(dependence(clips, frames, labels, kernels, 0.05, "biased")) < 0.2
        assert float(dependence(leaky_clips, leaky_frames, labels, kernels, 0.05, "biased")) > 0.5
    centred = centre_per_group(clips, labels)
    for label in range(5):
        assert torch.allclose(centred[labels == label].mean(0), torch.zeros(8), atol=1e-5)
    # a class with a single row in the batch is not centred away: it joins the unknown group
    singles = torch.arange(6)  # six classes of one row each, the rest unknown
    mixed = torch.cat([singles, torch.full((194,), -1)])
    assert float(dependence(leaky_clips, leaky_frames, mixed, "gaussian+linear", 0.05, "biased")) == pytest.approx(
        float(dependence(leaky_clips, leaky_frames, torch.full((200,), -1), "gaussian+linear", 0.05, "biased")))
    # within a class the differences between rows stay as they were
    same = labels == 3
    assert torch.allclose(centred[same][1:] - centred[same][:-1], clips[same][1:] - clips[same][:-1], atol=1e-5)


def test_the_trainer_hands_the_budget_the_labels_of_the_videos_its_clips_come_from(array_store, tmp_path, monkeypatch):
    from anonymize.budgets import independence

    seen = []
    original = independence.dependence

    def recording(anonymized, raw_static, labels, kernels, shrinkage, estimator):
        seen.append((raw_static.detach().clone(), labels.clone()))
        return original(anonymized, raw_static, labels, kernels, shrinkage, estimator)

    monkeypatch.setattr(independence, "dependence", recording)
    trainer = Trainer(small_config(array_store, tmp_path / "run", budget_mode="independence", independence_given="labels",
                                   batch_size=16, lr_reference_batch=16, epochs=1))
    trainer.train_epoch(0)
    assert seen
    store = Store.open(array_store)
    static, offsets = np.asarray(store.static_embeddings[:]), store.static_offsets()
    labels = np.asarray(store.array(VIDEO_LABELS)[:])
    for raw_static, batch_labels in seen:
        for row, label in zip(raw_static.numpy(), batch_labels.tolist()):
            # the video whose static clip this row is (static clips enter unaugmented here)
            match = int(np.argmin(np.abs(static - row).sum(1)))
            assert np.allclose(static[match], row, atol=1e-5)
            video = int(np.searchsorted(offsets, match, side="right") - 1)
            assert label == labels[video]


def test_independence_drops_only_a_trailing_batch_not_a_store_smaller_than_one_batch(array_store, tmp_path, monkeypatch):
    from anonymize.budgets import independence

    rows = []
    original = independence.dependence

    def recording(anonymized, raw_static, labels, kernels, shrinkage, estimator):
        rows.append(len(anonymized))
        return original(anonymized, raw_static, labels, kernels, shrinkage, estimator)

    monkeypatch.setattr(independence, "dependence", recording)
    store = Store.open(array_store)
    train_videos = len(store.split_indices("train"))
    # every training video in one batch of a batch size more than twice the store: the term is computed
    trainer = Trainer(small_config(array_store, tmp_path / "one-batch", budget_mode="independence",
                                   batch_size=4 * train_videos, lr_reference_batch=4 * train_videos, epochs=1))
    trainer.train_epoch(0)
    assert rows == [train_videos]
    # a batch size that leaves a trailing batch under half of it: that batch adds no term, the full ones do
    rows.clear()
    batch = train_videos - INDEPENDENCE_MIN_ROWS + 1
    assert train_videos - batch < batch // 2
    trainer = Trainer(small_config(array_store, tmp_path / "trailing", budget_mode="independence",
                                   batch_size=batch, lr_reference_batch=batch, epochs=1))
    trainer.train_epoch(0)
    assert rows == [batch]


def test_the_independence_term_is_the_configured_estimators_absolute_alignment(array_store, tmp_path, monkeypatch):
    from anonymize.budgets import independence

    terms = []
    original = independence.dependence

    def recording(anonymized, raw_static, labels, kernels, shrinkage, estimator):
        term = original(anonymized, raw_static, labels, kernels, shrinkage, estimator)
        alignments = [independence.kernel_alignment(anonymized, raw_static, kernel, shrinkage, estimator)
                      for kernel in kernels.split("+")]
        terms.append((estimator, float(term.detach()), [float(a.detach()) for a in alignments]))
        return term

    monkeypatch.setattr(independence, "dependence", recording)
    for estimator in ("biased", "unbiased"):
        trainer = Trainer(small_config(array_store, tmp_path / estimator, budget_mode="independence", batch_size=16,
                                       lr_reference_batch=16, epochs=1, independence_estimator=estimator))
        trainer.train_epoch(0)
    assert {estimator for estimator, _, _ in terms} == {"biased", "unbiased"}
    for estimator, term, alignments in terms:
        expected = [abs(a) for a in alignments] if estimator == "unbiased" else alignments
        assert term == pytest.approx(sum(expected) / len(expected), abs=1e-6)


@pytest.mark.parametrize("aam", [AAMConfig(layers=1, heads=2), AAMConfig(mode="temporal", layers=1, heads=2, window=1)],
                         ids=["clip", "temporal"])
def test_video_mean_budget_clips_are_the_means_of_every_clip_and_of_their_aam_outputs(array_store, tmp_path, aam):
    """--budget-clips video-mean: each video of the budget batch is the mean of all its clips, and its anonymized row
    the mean of the AAM outputs of all of them (each clip with its own window in the temporal mode)."""
    trainer = Trainer(small_config(array_store, tmp_path / "run", budget_mode="independence", batch_size=16,
                                   budget_clips="video-mean", aam=aam))
    store = Store.open(array_store)
    offsets = store.clip_offsets()
    videos = store.split_indices("train")[:10]
    attributes = torch.from_numpy(store.videos().attributes[videos].astype(np.float32))
    clips = trainer._budget_clips(videos, [], attributes, torch.Generator().manual_seed(0))
    assert clips.raw_static is None and clips.aam_rows == int(sum(offsets[v + 1] - offsets[v] for v in videos))
    trainer.aam.eval()
    all_clips = torch.from_numpy(store.load_embeddings("clips").astype(np.float32))
    with torch.no_grad():
        if aam.mode == "temporal":
            rows = np.arange(len(all_clips))
            owners = np.searchsorted(offsets, rows, side="right") - 1
            window, valid = window_rows(offsets, owners, rows, 1)
            anonymized = trainer.aam(all_clips[torch.from_numpy(window)], torch.from_numpy(valid))[:, 1]
        else:
            anonymized = trainer.aam(all_clips)
        for row, video in enumerate(videos):
            own = slice(offsets[video], offsets[video + 1])
            assert torch.allclose(clips.raw[row], all_clips[own].mean(0), atol=1e-6)
            assert torch.allclose(clips.anonymized[row], anonymized[own].mean(0), atol=1e-5)


def test_video_mean_is_for_the_modes_that_read_full_clips(array_store, tmp_path):
    with pytest.raises(FeatstoreError, match="budget clips 'video-mean' is for the modes that read full clips"):
        small_config(array_store, tmp_path / "x", budget_mode="direct", budget_clips="video-mean")
    with pytest.raises(FeatstoreError, match="budget clips must be one of"):
        small_config(array_store, tmp_path / "x", budget_mode="bottleneck", budget_clips="all")


def test_independence_given_labels_needs_a_store_with_labels(array_store, tmp_path):
    rng = np.random.default_rng(0)
    store = write_array_store(tmp_path / "unlabelled.zarr", [rng.normal(size=(3, 16)) for _ in range(20)],
                              [rng.normal(size=(2, 16)) for _ in range(20)], ["train"] * 20, [-1] * 20,
                              np.zeros((20, 0), dtype=int), ["a", "b"], [])
    # the utility task reads another (labelled) store; the budget's store has no label to condition on
    with pytest.raises(FeatstoreError, match="has no utility labels: independence given labels needs them"):
        Trainer(small_config(store, tmp_path / "run", budget_mode="independence", independence_given="labels",
                             batch_size=16, lr_reference_batch=16, tasks=[{"name": "action", "store": str(array_store)}]))
