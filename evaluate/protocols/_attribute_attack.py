"""The attribute attackers shared by the privacy protocols (``privacy``: static clips, ``vp``: clips).

Every attacker trains on the training split and is scored on the test split of the same store; the
protocols report each one by name and, per attribute, the worst case (the highest test AP) over them.

The MLP attackers are Linear(d, h)-ReLU-Linear(h, A) (h = d; ``mlp-wide``: 4 x d) trained with binary
cross-entropy (unknown targets left out) and AdamW; ``standard`` and ``mlp`` with the protocol's weight decay (0 by
default) and the learning rate reduced by the plateau factor when the mean training loss stops improving (the
paper's recipe), ``authors`` with the authors' code's optimizer settings:

- ``standard``: plain logits; a validation split (``validation_split``: ``val_fraction`` of the
  training *videos* drawn with the seed, or with ``val_unit`` subject whole subjects) is held out of
  training and the epoch with the best validation cMAP is evaluated on the test split once.
- ``authors``: the authors' code: the MLP output is L2-normalized before the loss (and is the score),
  trained on all training videos with AdamW weight decay ``AUTHORS_WEIGHT_DECAY`` and a constant
  learning rate (no plateau scheduler); the test cMAP is measured every ``AUTHORS_SELECT_EVERY`` epochs
  (epochs 5, 10, ...) and the best of those epochs is reported (the last epoch when ``epochs`` < 5).
  Selecting on the test set is optimistic: it reports the maximum of ``epochs // 5`` test
  measurements. The only attacker that looks at the test set before its final evaluation
  (``test_selected``).
- ``mlp``: the standard attacker on per-dimension standardized inputs (mean / std of the fit rows),
  trained with seeds ``seed``, ``seed + 1``, ``seed + 2`` on the same validation split; the seed with
  the best validation cMAP (at its selected epoch) is reported, every seed's test cMAP is listed.

The scikit-learn attackers fit the *fit rows* of the training videos (``AttackSetup.fit_rows``), on
inputs standardized with those rows' mean / std, one attribute at a time (unknown targets left out):

- ``logreg``: ``LogisticRegression`` (lbfgs), C chosen per attribute from ``LOGREG_C`` by the
  validation AP (with ``val_folds`` k >= 2: its mean over k cross-validation folds, ``validation_folds``;
  the same for the other scikit-learn attackers), then refit on all training videos' rows with the chosen C.
- ``knn``: k nearest fit rows (scikit-learn's brute-force neighbour search, the one
  ``KNeighborsClassifier`` uses); the score is the fraction of positives among the neighbours whose
  target is known (the attribute's positive rate if none is). The metric (euclidean / cosine) and k
  (``KNN_K``, capped by the number of fit rows) are chosen per attribute by the validation AP; the
  final index holds all training rows.

``mlp-whitened`` and ``knn-whitened`` are ``mlp`` and ``knn`` on whitened inputs instead of standardized ones:
the fit rows' covariance C, shrunk to C + ``WHITEN_SHRINKAGE`` x its mean variance x I, maps each input x to
(x - mean) C^-1/2, so every direction of the fit rows has (about) unit variance, not only every axis. Why: an
anonymizer can scale an attribute direction down under a few large ones, where standardized inputs leave it
to the noise of the large directions (the k-NN distances, the MLP's first layer) while it stays as separable
as before; an attacker holding the anonymized store alone can whiten it. On the default AAM's anonymized demo
clips the suite with them reads worst-case full-clip cMAP 0.740 where the five others read 0.660 (3 training
seeds; docs/anonymize.md).

``svm-whitened``: an RBF support vector machine (scikit-learn's ``SVC``) on whitened inputs, one attribute at a
time; C (``SVM_C``) and the kernel width (``SVM_GAMMA`` x scikit-learn's ``gamma="scale"`` of the fit rows)
chosen per attribute by the validation AP, then refit on all training videos' rows; the score is the SVM's
decision value.
Its fit rows are capped at ``SVM_MAX_ROWS`` (drawn with the seed): the fit grows with their square.

``mlp-wide``: ``mlp`` with ``WIDE_HIDDEN`` x d hidden units instead of d (a helper's search found a wider MLP the
strongest single attacker on the default AAM's demo export; in the suite it raised the mean worst case over three
training seeds by under 0.001 on each store, docs/anonymize.md).

``quadratic``: logistic regression on degree-2 features, one attribute at a time: the standardized fit rows' top k
principal components (only those whose variance is above ``WHITEN_SHRINKAGE`` x the mean variance, so k or fewer:
``used_components``), each scaled to unit variance (z), expanded to [z_i] and [z_i z_j, i <= j] and standardized
(``QuadraticFeatures``); k (``QUADRATIC_COMPONENTS``, capped by the dimension) and C (``QUADRATIC_C``) chosen per
attribute by the validation AP (ties: the smaller k, then the smaller C), then refit on all training videos. It
reads what is linear in products of directions (an attribute carried by a sign agreement or a variance); a helper's
rank ensemble had degree-2 features among its members. In the suite it raised the mean worst case over the default
AAM's three training seeds on both tuning stores, by 0.002 to 0.006 (docs/anonymize.md).

``boosting`` (not in ``all``, in ``thorough``): scikit-learn's ``HistGradientBoostingClassifier`` on the fit rows,
one attribute at a time, ``BOOSTING_ITERATIONS`` iterations without early stopping; learning rate
(``BOOSTING_LEARNING_RATE``) and leaves per tree (``BOOSTING_LEAVES``) chosen per attribute by the validation AP,
then refit on all training videos; the score is its log-odds. It reads a few thousandths of cMAP above the rest
of the suite on the default AAM's exports, at about the time of all of them together (docs/anonymize.md).

``ensemble``: no training of its own and no selection: the mean over ``ENSEMBLE_MEMBERS`` (the validation-selected
attackers of ``all`` except ``standard``, which ``mlp`` extends, and ``mlp-wide``, with which it read no more on the
demo store; with ``quadratic`` it read more on both tuning stores) of each member's score mapped to its quantile
among that member's scores on the rows the test evaluation scores (per attribute: its rank there; no label read), as
a logit. It reads what several members each read a little of (a helper's rank ensemble of other models - boosting,
a wider MLP, degree-2 features among them - read 0.02 cMAP more than the suite's worst case on the default AAM's
demo export; docs/anonymize.md). Asked for alone it trains its members without reporting them.

Every attacker but ``authors`` selects on the same validation split only (training videos); the test set
is scored once. All attackers output logits (the kNN fraction p as log(p / (1 - p)), clipped), so the
protocols may average sigmoid probabilities over a video's clips.

The attackers' settings and names are ``evaluate.settings.AttackerSettings`` and ``ATTACKERS``; the scoring of
clips at evenly spaced positions (``position_aggregates``) is ``vp``'s, used by the inversion attack too.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from pathlib import Path

import numpy as np
import torch
from torch import nn

from data_manifests.errors import FeatstoreError
from evaluate.data import StoreData
from evaluate.metrics import mean_defined, per_attribute_ap, positive_rates
from evaluate.settings import ATTACKER_GROUPS, AttackerSettings, TrainSettings
from evaluate.training import (
    EpochSampler,
    TrainOutcome,
    carve_validation,
    masked_bce,
    mlp_head,
    predict,
    seeded_module,
    train_head,
)

TEST_SELECTED = frozenset({"authors"})
AUTHORS_WEIGHT_DECAY = 0.01  # AdamW's own default, which the authors' code keeps; constant learning rate
AUTHORS_SELECT_EVERY = 5  # the authors' code measures the test cMAP every 5th epoch
MLP_SEEDS = 3
LOGREG_C = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e2)
LOGREG_MAX_ITER = 200
KNN_K = (5, 15, 45)
KNN_METRICS = ("euclidean", "cosine")
# the whitened attackers' covariance shrinkage, x the mean variance: small enough that a direction scaled down
# to a fraction of a percent of the mean variance is still whitened, and the inverse stays finite
WHITEN_SHRINKAGE = 1e-3
LOGIT_CLIP = 1e-6  # a kNN fraction or an ensemble's mean quantile: clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP]
SVM_C = (1.0, 10.0, 100.0)
# x scikit-learn's gamma="scale", 1 / (D x the variance of the fit inputs' entries): 1 / k on whitened inputs with k
# directions of unit variance, which an anonymizer that squeezes all but k of the D directions leaves (1 / D would
# make the kernel nearly flat there)
SVM_GAMMA = (0.3, 1.0, 3.0, 10.0, 30.0)
SVM_MAX_ROWS = 4000
WIDE_HIDDEN = 4  # mlp-wide's hidden units, x the input dimension
BOOSTING_LEARNING_RATE = (0.05, 0.2)
BOOSTING_LEAVES = (7, 31)
BOOSTING_ITERATIONS = 200
QUADRATIC_COMPONENTS = (8, 16, 32)  # quadratic's k: principal components expanded to degree 2
QUADRATIC_C = (1e-2, 1e-1, 1.0)
SKLEARN_ATTACKERS = ("logreg", "knn", "knn-whitened", "svm-whitened", "boosting", "quadratic")
CAP_STREAM = 1  # the row cap's random stream under the seed (carve_validation draws from the seed's own)
# seven of the validation-selected attackers (authors selects on the test set; standard is mlp's MLP on raw inputs, one
# seed; mlp-wide: the module docstring's ``ensemble``)
ENSEMBLE_MEMBERS = ("mlp", "logreg", "knn", "mlp-whitened", "knn-whitened", "svm-whitened", "quadratic")
SELECTED_BY = {
    "standard": "best validation cMAP ({split})",
    "authors": "best test cMAP at every {every}th epoch (optimistic: selected on the test set); AdamW weight "
               "decay {decay:g}, constant learning rate",
    "mlp": "standardized inputs; per seed ({seeds}) the epoch with the best validation cMAP, then the seed with "
           "the best validation cMAP ({split})",
    "logreg": "standardized inputs; C per attribute from {grid} by validation AP ({split}), refit on all training "
              "videos",
    "knn": "standardized inputs; metric {metrics} and k {grid} per attribute by validation AP ({split}), refit on "
           "all training videos",
}
SELECTED_BY["svm-whitened"] = ("whitened inputs (shrinkage {shrink:g}); RBF kernel, C {svm_c} and gamma {svm_gamma} "
                                "x scikit-learn's scale per attribute by validation AP ({split}), refit on all "
                                "training videos (at most {svm_rows} rows)")
SELECTED_BY["ensemble"] = ("no selection: the mean of the quantiles of {members}'s scores (each among its scores on "
                           "the scored rows, no label read)")
SELECTED_BY["mlp-whitened"] = SELECTED_BY["mlp"].replace("standardized inputs", "whitened inputs (shrinkage {shrink:g})")
SELECTED_BY["knn-whitened"] = SELECTED_BY["knn"].replace("standardized inputs", "whitened inputs (shrinkage {shrink:g})")
SELECTED_BY["mlp-wide"] = SELECTED_BY["mlp"].replace("standardized inputs",
                                                     "standardized inputs, {wide} x d hidden units")
SELECTED_BY["quadratic"] = ("standardized inputs; logistic regression on degree-2 features of the top k principal "
                             "components (each scaled to unit variance; only those above {shrink:g} x the mean "
                             "variance); k {components} and C {quadratic_c} per attribute by validation AP ({split}), "
                             "refit on all training videos")
SELECTED_BY["boosting"] = ("gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier, {iterations} "
                           "iterations); learning rate {rates} and leaves {leaves} per attribute by validation AP "
                           "({split}), refit on all training videos")

Evaluation = dict  # {"cmap": float, "per_attribute": np.ndarray (A,), ...}


class L2NormalizedOutput(nn.Module):
    """The authors' attacker: the head's output vector scaled to unit L2 norm."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head(x), dim=-1)


class MappedInputs(nn.Module):
    """``head((x - mean) / scale)`` (standardized: ``scale`` the per-dimension std) or, ``whitened``,
    ``head((x - mean) @ scale)`` (``scale`` the whitening matrix), with fixed (non-trained) statistics."""

    def __init__(self, head: nn.Module, mean: torch.Tensor, scale: torch.Tensor, whitened: bool):
        super().__init__()
        self.head = head
        self.whitened = whitened
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - self.mean
        return self.head(centred @ self.scale if self.whitened else centred / self.scale)


class ArrayScorer(nn.Module):
    """A numpy scorer ((N, D) float64 inputs -> (N, A) logits) as a module the protocols' evaluators can call."""

    def __init__(self, score: Callable[[np.ndarray], np.ndarray]):
        super().__init__()
        self.score = score

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.score(x.detach().cpu().numpy().astype(np.float64))
        return torch.from_numpy(np.asarray(scores, dtype=np.float32)).to(x.device)


@dataclass
class AttackSetup:
    """What a protocol hands the attacker engine (targets are indexed by store video index)."""

    features: torch.Tensor  # (N, D) rows on the compute device
    targets: torch.Tensor  # (V, A) int64 in {0, 1, -1}
    train_videos: np.ndarray
    test_videos: np.ndarray
    make_sampler: Callable[[np.ndarray], EpochSampler]  # training videos -> epoch sampler
    make_evaluator: Callable[[np.ndarray], Callable[[nn.Module], Evaluation]]  # videos -> model -> scores
    # videos -> (feature rows, store video index of each row): what the scikit-learn attackers fit on and the
    # standardization statistics come from
    fit_rows: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    selection_key: str = "cmap"  # the evaluation entry the validation-selected MLP attackers select on
    authors_selection_key: str = "cmap"  # ... and the authors' attacker (on the test set)
    attribute_selection_key: str = "per_attribute"  # per-attribute AP the scikit-learn attackers select on
    # one id per training video that the validation split keeps whole (its subject; see validation_groups); None:
    # each video is its own
    train_groups: np.ndarray | None = None


@dataclass(frozen=True)
class ValidationSplit:
    """The validation-selected attackers' split of the training videos (positions in ``AttackSetup.train_videos``)."""

    fit: np.ndarray
    val: np.ndarray
    unit: str  # what it holds out whole: "subject" or "video"
    rule: str  # in words, for ``selected_by``


def validation_groups(subjects: np.ndarray, train_videos: np.ndarray, unit: str) -> np.ndarray | None:
    """``AttackSetup.train_groups`` for ``val_unit``: the training videos' subjects when ``unit`` is "subject" and
    every training video names one (on a test split of unseen subjects, held-out videos of subjects the attacker
    fits on could favour what memorizes a subject); otherwise None (videos)."""
    groups = np.asarray(subjects)[train_videos]
    if unit == "video" or len(groups) == 0 or (groups == "").any():
        return None
    return groups


def validation_split(train_videos: np.ndarray, targets: torch.Tensor, groups: np.ndarray | None, fraction: float,
                     seed: int) -> ValidationSplit:
    """The split of ``train_videos`` (``targets``: (V, A) by store video index; ``groups``: ``train_groups``).
    Videos: ``carve_validation``'s seeded ``fraction`` of them. Subjects: whole subjects in a seeded order until
    the held-out videos reach ``fraction`` of the training videos; then, for each value (0 / 1) of an attribute
    that the held-out videos lack, the next subject in that order that has it, unless the fit would lose its
    last video with it (without both values an attribute's validation AP is undefined and its selection falls
    to the first candidate)."""
    n = len(train_videos)
    if groups is None:
        fit, val = carve_validation(n, fraction, seed)
        return ValidationSplit(fit, val, "video", f"{fraction:.0%} of the training videos, seed {seed}")
    subjects, of_video = np.unique(groups, return_inverse=True)
    if len(subjects) < 2:
        raise FeatstoreError(f"cannot hold out whole subjects: the {n} training videos belong to one subject "
                             "(use --val-unit video)")
    labels = targets[torch.as_tensor(train_videos, device=targets.device)].cpu().numpy()
    # (subjects, A, 2): how many of a subject's videos have value 0 / 1 of each attribute
    counts = np.stack([np.stack([np.bincount(of_video, weights=labels[:, a] == value, minlength=len(subjects))
                                 for a in range(labels.shape[1])], axis=1) for value in (0, 1)], axis=2)
    order = np.random.default_rng(seed).permutation(len(subjects))
    held = np.zeros(len(subjects), dtype=bool)
    sizes = np.bincount(of_video, minlength=len(subjects))
    wanted = max(1, int(round(fraction * n)))
    for subject in order[:-1]:  # at least one subject stays to fit on
        if sizes[held].sum() >= wanted:
            break
        held[subject] = True
    for_fraction = int(held.sum())
    for attribute, value in np.ndindex(counts.shape[1:]):
        if counts[held, attribute, value].sum() > 0:  # the held-out videos have it already
            continue
        for subject in order:
            if held[subject] or counts[subject, attribute, value] == 0:
                continue
            if counts[~held, attribute, value].sum() > counts[subject, attribute, value] and (~held).sum() > 1:
                held[subject] = True
            break
    val = np.flatnonzero(held[of_video])
    return ValidationSplit(np.flatnonzero(~held[of_video]), val, "subject",
                           f"{int(held.sum())} of {len(subjects)} training subjects held out whole, {len(val)} videos "
                           f"({for_fraction} for {fraction:.0%} of the training videos, {int(held.sum()) - for_fraction} "
                           f"more for attribute values they lacked), seed {seed}")


def validation_folds(train_videos: np.ndarray, groups: np.ndarray | None, folds: int,
                     seed: int) -> list[ValidationSplit]:
    """``folds`` splits of ``train_videos`` for cross-validation: whole videos (``groups`` None) or whole subjects in
    an order drawn with the seed, cut into ``folds`` near-equal parts; each part is held out once."""
    unit = "video" if groups is None else "subject"
    units, of_video = (np.arange(len(train_videos)),) * 2 if groups is None else np.unique(groups, return_inverse=True)
    if folds > len(units):
        raise FeatstoreError(f"cannot cut {folds} validation folds out of {len(units)} training {unit}s")
    rule = (f"{folds}-fold cross-validation over the training {unit}s (whole {unit}s, drawn with seed {seed}), the AP "
            "averaged over the folds")
    parts = np.array_split(np.random.default_rng(seed).permutation(len(units)), folds)
    return [ValidationSplit(np.flatnonzero(~np.isin(of_video, part)), np.flatnonzero(np.isin(of_video, part)), unit,
                            rule) for part in parts]


def _selected_by(attacker: str, settings: TrainSettings, split: ValidationSplit) -> str:
    seeds = ", ".join(str(settings.seed + i) for i in range(MLP_SEEDS))
    grid = ", ".join(f"{c:g}" for c in LOGREG_C) if attacker == "logreg" else ", ".join(map(str, KNN_K))
    return SELECTED_BY[attacker].format(split=split.rule, seeds=seeds, grid="{" + grid + "}",
                                        metrics="{" + ", ".join(KNN_METRICS) + "}", every=AUTHORS_SELECT_EVERY,
                                        decay=AUTHORS_WEIGHT_DECAY, shrink=WHITEN_SHRINKAGE, svm_c=_braced(SVM_C),
                                        svm_gamma=_braced(SVM_GAMMA), svm_rows=SVM_MAX_ROWS,
                                        members=", ".join(ENSEMBLE_MEMBERS), wide=WIDE_HIDDEN,
                                        iterations=BOOSTING_ITERATIONS, rates=_braced(BOOSTING_LEARNING_RATE),
                                        leaves=_braced(BOOSTING_LEAVES), components=_braced(QUADRATIC_COMPONENTS),
                                        quadratic_c=_braced(QUADRATIC_C))


def _braced(values: tuple[float, ...]) -> str:
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def run_attacker(setup: AttackSetup, attacker: str, settings: TrainSettings, split: ValidationSplit,
                 show_progress: bool = False, members: dict[str, nn.Module] | None = None,
                 folds: list[ValidationSplit] | None = None) -> tuple[Evaluation, list[TrainOutcome], nn.Module]:
    """Train one attacker; return its test evaluation (of the selected model), the training records and the selected
    model. The validation-selected attackers select on ``split`` (the scikit-learn ones on ``folds`` when given);
    ``ensemble`` combines ``members`` (the trained ``ENSEMBLE_MEMBERS``)."""
    started = time.perf_counter()
    if attacker in ("standard", "authors"):
        evaluation, outcomes, model = _run_plain_mlp(setup, attacker, settings, split, show_progress)
    elif attacker in ("mlp", "mlp-whitened", "mlp-wide"):
        evaluation, outcomes, model = _run_mlp_seeds(setup, attacker, settings, split, show_progress)
    elif attacker in SKLEARN_ATTACKERS:
        selection = folds or [split]
        evaluation, outcomes, model = _run_sklearn(setup, attacker, settings, selection)
        split = selection[0]  # what selected_by describes (the folds share their rule)
    elif attacker == "ensemble":
        evaluation, outcomes, model = _run_ensemble(setup, members or {})
    else:
        raise ValueError(f"unknown attacker {attacker!r}")
    evaluation["selected_by"] = _selected_by(attacker, settings, split)
    if attacker not in TEST_SELECTED and attacker != "ensemble":
        evaluation["validation_unit"] = split.unit
    evaluation["test_selected"] = attacker in TEST_SELECTED
    evaluation["seconds"] = time.perf_counter() - started
    return evaluation, outcomes, model


def run_attackers(setup: AttackSetup, settings: AttackerSettings, names: list[str],
                  show_progress: bool = False) -> tuple[dict[str, Evaluation], list[TrainOutcome]]:
    """Train every attacker ``settings.attacker`` names: {attacker: test evaluation, per-attribute entries by
    attribute name} and every training record. ``ensemble`` comes last; members it needs that were not asked for
    are trained for it and not reported."""
    asked = attackers_of(settings.attacker)
    needed = [a for a in asked if a != "ensemble"]
    if "ensemble" in asked:
        needed += [a for a in ENSEMBLE_MEMBERS if a not in needed]
    results, outcomes, members = {}, [], {}
    split = validation_split(setup.train_videos, setup.targets, setup.train_groups, settings.val_fraction, settings.seed)
    folds = (validation_folds(setup.train_videos, setup.train_groups, settings.val_folds, settings.seed)
             if settings.val_folds > 1 else None)
    for attacker in [*needed, *(["ensemble"] if "ensemble" in asked else [])]:
        evaluation, attacker_outcomes, model = run_attacker(setup, attacker, settings.train_settings(),
                                                            split, show_progress, members, folds)
        if "ensemble" in asked and attacker in ENSEMBLE_MEMBERS:
            members[attacker] = model
        outcomes.extend(attacker_outcomes)
        if attacker in asked:
            results[attacker] = name_attributes(evaluation, names)
    return {a: results[a] for a in asked}, outcomes


def _run_plain_mlp(setup: AttackSetup, attacker: str, settings: TrainSettings, split: ValidationSplit,
                   show_progress: bool) -> tuple[Evaluation, list[TrainOutcome], nn.Module]:
    dim, n_attributes = setup.features.shape[1], setup.targets.shape[1]
    head = seeded_module(mlp_head(dim, n_attributes), settings.seed, setup.features.device)
    test_evaluator = setup.make_evaluator(setup.test_videos)
    if attacker == "authors":
        model = L2NormalizedOutput(head)
        train_videos = setup.train_videos
        settings = replace(settings, weight_decay=AUTHORS_WEIGHT_DECAY, plateau_factor=None)
        select = every_nth_epoch(lambda m: test_evaluator(m)[setup.authors_selection_key], AUTHORS_SELECT_EVERY)
    else:
        model = head
        train_videos = setup.train_videos[split.fit]
        val_evaluator = setup.make_evaluator(setup.train_videos[split.val])

        def select(m: nn.Module) -> float:
            return val_evaluator(m)[setup.selection_key]
    outcome = train_head(model, setup.features, setup.targets, setup.make_sampler(train_videos), masked_bce, settings,
                         select=select, description=f"attacker {attacker}", show_progress=show_progress)
    with torch.no_grad():
        evaluation = test_evaluator(model)
    evaluation["selected_epoch"] = outcome.selected_epoch
    evaluation["n_fit_videos"] = int(len(train_videos))
    evaluation["final_train_loss"] = outcome.losses[-1]
    return evaluation, [outcome], model


def every_nth_epoch(select: Callable[[nn.Module], float], n: int) -> Callable[[nn.Module], float]:
    """``select`` for ``train_head`` (which calls it once after every epoch) scoring epochs n, 2n, ... only;
    the other epochs score nan, which is never selected."""
    epoch = 0

    def on_epoch(model: nn.Module) -> float:
        nonlocal epoch
        epoch += 1
        return select(model) if epoch % n == 0 else math.nan

    return on_epoch


def _fit_rows(setup: AttackSetup, videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if setup.fit_rows is None:
        raise ValueError("this attacker needs AttackSetup.fit_rows")
    return setup.fit_rows(videos)


def _statistics(features: torch.Tensor, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std (population) of ``features[rows]``; a constant dimension gets std 1."""
    values = features[torch.as_tensor(rows, dtype=torch.int64, device=features.device)].double()
    mean = values.mean(dim=0)
    std = values.std(dim=0, correction=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return mean.float(), std.float()


def whitening(features: torch.Tensor, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and symmetric whitening matrix C_s^-1/2 of ``features[rows]``, C_s = C + WHITEN_SHRINKAGE x its mean
    variance x I (C: the population covariance); a store whose rows are all equal gets the identity."""
    values = features[torch.as_tensor(rows, dtype=torch.int64, device=features.device)].double()
    mean = values.mean(dim=0)
    centred = values - mean
    covariance = centred.T @ centred / len(values)
    ridge = WHITEN_SHRINKAGE * covariance.diagonal().mean()
    if ridge == 0:  # every row the same
        return mean.float(), torch.eye(values.shape[1], device=features.device)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance + ridge * torch.eye(values.shape[1], dtype=torch.float64,
                                                                                  device=features.device))
    matrix = (eigenvectors * eigenvalues.clamp_min(ridge).rsqrt()) @ eigenvectors.T
    return mean.float(), matrix.float()


def input_statistics(features: torch.Tensor, rows: np.ndarray, whitened: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """What maps an attacker's inputs (``MappedInputs``, ``_Rows``): mean and whitening matrix, or mean and std."""
    return whitening(features, rows) if whitened else _statistics(features, rows)


def _run_mlp_seeds(setup: AttackSetup, attacker: str, settings: TrainSettings, split: ValidationSplit,
                   show_progress: bool) -> tuple[Evaluation, list[TrainOutcome], nn.Module]:
    device = setup.features.device
    dim, n_attributes = setup.features.shape[1], setup.targets.shape[1]
    fit_videos = setup.train_videos[split.fit]
    val_evaluator = setup.make_evaluator(setup.train_videos[split.val])
    test_evaluator = setup.make_evaluator(setup.test_videos)
    whitened = attacker == "mlp-whitened"
    hidden = WIDE_HIDDEN * dim if attacker == "mlp-wide" else None
    statistics = input_statistics(setup.features, _fit_rows(setup, fit_videos)[0], whitened)
    runs, outcomes, models = [], [], []
    for offset in range(MLP_SEEDS):
        seed = settings.seed + offset
        model = MappedInputs(seeded_module(mlp_head(dim, n_attributes, hidden), seed, device), *statistics,
                             whitened).to(device)
        outcome = train_head(model, setup.features, setup.targets, setup.make_sampler(fit_videos), masked_bce,
                             replace(settings, seed=seed), select=lambda m: val_evaluator(m)[setup.selection_key],
                             description=f"attacker {attacker} (seed {seed})", show_progress=show_progress)
        with torch.no_grad():
            evaluation = test_evaluator(model)
        scores = [s for s in outcome.selection_scores if not math.isnan(s)]
        runs.append((seed, max(scores) if scores else math.nan, outcome, evaluation))
        outcomes.append(outcome)
        models.append(model)
    best = max(range(len(runs)), key=lambda i: (-math.inf if math.isnan(runs[i][1]) else runs[i][1], -i))
    seed, _, outcome, evaluation = runs[best]
    evaluation = dict(evaluation)
    evaluation["selected_seed"] = seed
    evaluation["selected_epoch"] = outcome.selected_epoch
    evaluation["n_fit_videos"] = int(len(fit_videos))
    evaluation["final_train_loss"] = outcome.losses[-1]
    evaluation["seeds"] = [{"seed": s, "selected_epoch": o.selected_epoch, "validation_cmap": v,
                            "test_cmap": e[setup.selection_key]} for s, v, o, e in runs]
    return evaluation, outcomes, models[best]


# ---------------------------------------------------------------------------------------------- scikit-learn
def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p / (1.0 - p))


class _Rows:
    """Standardized (``whitened``: whitened) fit rows (float64 numpy) and their targets, with the statistics that
    map queries the same way."""

    def __init__(self, setup: AttackSetup, videos: np.ndarray, targets: np.ndarray, whitened: bool,
                 max_rows: int | None, seed: int):
        rows, owners = _fit_rows(setup, videos)
        if max_rows is not None and len(rows) > max_rows:  # drawn with the seed, kept in row order
            keep = np.sort(np.random.default_rng([seed, CAP_STREAM]).choice(len(rows), max_rows, replace=False))
            rows, owners = rows[keep], owners[keep]
        mean, scale = input_statistics(setup.features, rows, whitened)
        self.mean, self.scale = mean.double().cpu().numpy(), scale.double().cpu().numpy()
        self.whitened = whitened
        values = setup.features[torch.as_tensor(rows, dtype=torch.int64, device=setup.features.device)]
        self.x = self.inputs(values.double().cpu().numpy())
        self.y = targets[owners]

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Queries mapped as the fit rows: standardized, or whitened (``scale`` is then the whitening matrix)."""
        return (x - self.mean) @ self.scale if self.whitened else (x - self.mean) / self.scale


def _fit_logreg(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Weights (D,) and bias of one attribute's logistic regression; a constant scorer on one class."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    known = y >= 0
    labels = y[known]
    if labels.size == 0 or labels.min() == labels.max():
        rate = float(labels.mean()) if labels.size else 0.5
        return np.zeros(x.shape[1]), float(_logit(np.array(rate)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=c, solver="lbfgs", max_iter=LOGREG_MAX_ITER).fit(x[known], labels)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def _logreg_scorer(fit: _Rows, cs: list[float]) -> nn.Module:
    weights, biases = zip(*(_fit_logreg(fit.x, fit.y[:, a], c) for a, c in enumerate(cs)))
    w, b = np.stack(weights, axis=1), np.asarray(biases)
    return ArrayScorer(lambda x: fit.inputs(x) @ w + b)


def _knn_fractions(fit: _Rows, queries: np.ndarray, metric: str, k: int) -> np.ndarray:
    """(N, A) fraction of positives among the k nearest fit rows whose target is known."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(fit.x)
    neighbours = index.kneighbors(fit.inputs(queries), return_distance=False)  # (N, k), nearest first
    labels = fit.y[neighbours]  # (N, k, A)
    known = (labels >= 0).sum(axis=1)
    positive = (labels == 1).sum(axis=1)
    known_rows = fit.y >= 0
    rates = np.where(known_rows.any(axis=0), (fit.y == 1).sum(axis=0) / np.maximum(known_rows.sum(axis=0), 1), 0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known > 0, positive / np.maximum(known, 1), rates[None, :])


def _knn_scorer(fit: _Rows, choices: list[tuple[str, int]]) -> nn.Module:
    """Attribute a scored with its own (metric, k); one neighbour search per distinct choice."""

    def score(x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), len(choices)))
        for choice in dict.fromkeys(choices):
            columns = [a for a, c in enumerate(choices) if c == choice]
            out[:, columns] = _knn_fractions(fit, x, *choice)[:, columns]
        return _logit(out)

    return ArrayScorer(score)


def _pick(candidates: list, per_attribute: list[np.ndarray]) -> list:
    """Per attribute, the candidate with the highest validation AP (the first on ties; nan counts as worst)."""
    table = np.stack([np.where(np.isnan(ap), -np.inf, ap) for ap in per_attribute])  # (candidates, A)
    return [candidates[int(i)] for i in np.argmax(table, axis=0)]


def _fit_or_rate(make_model: Callable[[], object], x: np.ndarray, y: np.ndarray):
    """One attribute's ``make_model()`` fitted on the rows whose target is known, or (one class known) its positive
    rate as a constant score."""
    known = y >= 0
    labels = y[known]
    if labels.size == 0 or labels.min() == labels.max():
        return float(labels.mean()) if labels.size else 0.5
    return make_model().fit(x[known], labels)


def _decision_scorer(fit: _Rows, models: list) -> nn.Module:
    """Attribute a scored by ``models[a]``'s decision value on the mapped inputs; a constant scorer scores its rate's
    logit."""

    def score(x: np.ndarray) -> np.ndarray:
        inputs = fit.inputs(x)
        return np.stack([np.full(len(x), float(_logit(np.array(m)))) if isinstance(m, float)
                         else m.decision_function(inputs) for m in models], axis=1)

    return ArrayScorer(score)


def _svm_scorer(fit: _Rows, choices: list[tuple[float, float]]) -> nn.Module:
    """Attribute a scored by its own RBF SVM (C, gamma x scikit-learn's "scale" of the fit rows)."""
    from sklearn.svm import SVC

    spread = float(fit.x.var())
    gamma_unit = 1.0 / (fit.x.shape[1] * spread) if spread > 0 else 1.0
    return _decision_scorer(fit, [_fit_or_rate(partial(SVC, C=c, kernel="rbf", gamma=g * gamma_unit), fit.x,
                                               fit.y[:, a]) for a, (c, g) in enumerate(choices)])


def _boosting_scorer(fit: _Rows, choices: list[tuple[float, int]], seed: int) -> nn.Module:
    """Attribute a scored by its own gradient-boosted trees (learning rate, leaves), as log-odds."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return _decision_scorer(fit, [_fit_or_rate(partial(HistGradientBoostingClassifier, learning_rate=rate,
                                                       max_leaf_nodes=leaves, max_iter=BOOSTING_ITERATIONS,
                                                       early_stopping=False, random_state=seed),
                                               fit.x, fit.y[:, a]) for a, (rate, leaves) in enumerate(choices)])


class QuadraticFeatures:
    """Degree-2 features of mapped inputs: their top ``k`` principal components over the fit rows, each scaled to
    unit variance (z), then [z_i] and [z_i z_j, i <= j], standardized with the fit rows' statistics. Only components
    whose variance is above ``WHITEN_SHRINKAGE`` x the mean variance count (at least one): scaled to unit variance,
    the directions a low-rank store (an output floor keeps about 10 of 192) has no variance in would turn rounding
    noise into features."""

    def __init__(self, x: np.ndarray, k: int):
        covariance = np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        above = int((eigenvalues > WHITEN_SHRINKAGE * max(float(eigenvalues.mean()), 0.0)).sum())
        top = order[:max(1, min(k, above))]
        floor = max(float(eigenvalues.max()), 1.0) * 1e-12  # rows without any variance: the one component stays finite
        self.mean = x.mean(axis=0)
        self.basis = eigenvectors[:, top] / np.sqrt(np.maximum(eigenvalues[top], floor))
        self.pairs = np.triu_indices(len(top))
        expanded = self._expand(x)
        self.feature_mean = expanded.mean(axis=0)
        spread = expanded.std(axis=0)
        self.feature_scale = np.where(spread > 1e-8, spread, 1.0)
        self.fit_features = (expanded - self.feature_mean) / self.feature_scale  # what the regressions fit

    def _expand(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) @ self.basis
        return np.concatenate([z, z[:, self.pairs[0]] * z[:, self.pairs[1]]], axis=1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (self._expand(x) - self.feature_mean) / self.feature_scale


def _quadratic_scorer(fit: _Rows, choices: list[tuple[int, float]]) -> nn.Module:
    """Attribute a scored by a logistic regression (C) on the degree-2 features of k components; one feature map
    per distinct k."""
    maps = {k: QuadraticFeatures(fit.x, k) for k in dict.fromkeys(k for k, _ in choices)}
    fitted = [(k, *_fit_logreg(maps[k].fit_features, fit.y[:, a], c)) for a, (k, c) in enumerate(choices)]

    def score(x: np.ndarray) -> np.ndarray:
        inputs = fit.inputs(x)
        features = {k: feature_map(inputs) for k, feature_map in maps.items()}
        return np.stack([features[k] @ weights + bias for k, weights, bias in fitted], axis=1)

    scorer = ArrayScorer(score)
    scorer.used_components = [maps[k].basis.shape[1] for k, _ in choices]  # k, or fewer on a low-rank store
    return scorer


def _run_sklearn(setup: AttackSetup, attacker: str, settings: TrainSettings,
                 selection: list[ValidationSplit]) -> tuple[Evaluation, list[TrainOutcome], nn.Module]:
    """``logreg``, ``knn``, ``knn-whitened``, ``svm-whitened``, ``boosting`` or ``quadratic``; each candidate's
    validation AP per attribute is its mean over the ``selection`` splits (one validation split, or the
    cross-validation folds)."""
    started = time.perf_counter()
    targets = setup.targets.cpu().numpy()
    whitened = attacker in ("knn-whitened", "svm-whitened")
    max_rows = SVM_MAX_ROWS if attacker == "svm-whitened" else None
    fits = [_Rows(setup, setup.train_videos[split.fit], targets, whitened, max_rows, settings.seed)
            for split in selection]
    val_evaluators = [setup.make_evaluator(setup.train_videos[split.val]) for split in selection]
    n_attributes = targets.shape[1]
    if attacker == "logreg":
        candidates, scorer = list(LOGREG_C), _logreg_scorer
    elif attacker == "svm-whitened":
        candidates, scorer = [(c, g) for c in SVM_C for g in SVM_GAMMA], _svm_scorer
    elif attacker == "boosting":
        candidates = [(rate, leaves) for rate in BOOSTING_LEARNING_RATE for leaves in BOOSTING_LEAVES]
        scorer = partial(_boosting_scorer, seed=settings.seed)
    elif attacker == "quadratic":
        dim = setup.features.shape[1]
        ks = sorted({min(k, dim) for k in QUADRATIC_COMPONENTS})
        candidates, scorer = [(k, c) for k in ks for c in QUADRATIC_C], _quadratic_scorer
    else:
        ks = sorted({min(k, min(len(fit.x) for fit in fits)) for k in KNN_K})
        candidates, scorer = [(metric, k) for metric in KNN_METRICS for k in ks], _knn_scorer

    def validation_ap(candidate) -> np.ndarray:
        with torch.no_grad():
            per_split = np.stack([np.asarray(evaluate(scorer(fit, [candidate] * n_attributes))[
                setup.attribute_selection_key], dtype=np.float64) for fit, evaluate in zip(fits, val_evaluators)])
        with warnings.catch_warnings():  # an attribute no split defines stays nan
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(per_split, axis=0)

    scores = [validation_ap(candidate) for candidate in candidates]
    chosen = _pick(candidates, scores)
    full = _Rows(setup, setup.train_videos, targets, whitened, max_rows, settings.seed)
    model = scorer(full, chosen)
    with torch.no_grad():
        evaluation = setup.make_evaluator(setup.test_videos)(model)
    if attacker == "logreg":
        evaluation["selected_c"] = [float(c) for c in chosen]
    elif attacker == "svm-whitened":
        evaluation["selected_c"] = [float(c) for c, _ in chosen]
        evaluation["selected_gamma"] = [float(g) for _, g in chosen]
    elif attacker == "boosting":
        evaluation["selected_learning_rate"] = [float(r) for r, _ in chosen]
        evaluation["selected_leaves"] = [int(n) for _, n in chosen]
    elif attacker == "quadratic":
        evaluation["selected_components"] = [int(k) for k, _ in chosen]
        evaluation["used_components"] = [int(n) for n in model.used_components]
        evaluation["selected_c"] = [float(c) for _, c in chosen]
    else:
        evaluation["selected_metric"] = [m for m, _ in chosen]
        evaluation["selected_k"] = [int(k) for _, k in chosen]
    evaluation["validation_ap"] = np.max(np.stack(scores), axis=0)  # the chosen candidate's, per attribute
    evaluation["n_fit_videos"] = int(len(setup.train_videos))
    evaluation["n_fit_rows"] = int(len(full.x))
    evaluation["n_validation_videos"] = int(sum(len(split.val) for split in selection))
    evaluation["validation_folds"] = len(selection)
    outcome = TrainOutcome(losses=[], selected_epoch=0, loop_seconds=time.perf_counter() - started)
    return evaluation, [outcome], model


class QuantileEnsemble(nn.Module):
    """The mean over members of each member's score mapped to its quantile among ``references`` (per member (A, R)
    sorted per attribute: its scores on the scored rows), as a logit."""

    def __init__(self, members: list[nn.Module], references: list[torch.Tensor]):
        super().__init__()
        self.members = nn.ModuleList(members)
        for index, reference in enumerate(references):
            self.register_buffer(f"reference_{index}", reference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        quantiles = []
        for index, member in enumerate(self.members):
            reference = getattr(self, f"reference_{index}")
            scores = member(x).T.contiguous().to(reference.dtype)  # (A, N)
            below = torch.searchsorted(reference, scores, right=False)
            at_most = torch.searchsorted(reference, scores, right=True)
            quantiles.append(((below + at_most).double() / (2 * reference.shape[1])).T)  # ties: the middle
        mean = torch.stack(quantiles).mean(dim=0).clamp(LOGIT_CLIP, 1.0 - LOGIT_CLIP)
        return torch.log(mean / (1.0 - mean)).float()


def _run_ensemble(setup: AttackSetup, members: dict[str, nn.Module]) -> tuple[Evaluation, list[TrainOutcome],
                                                                              nn.Module]:
    started = time.perf_counter()
    missing = [a for a in ENSEMBLE_MEMBERS if a not in members]
    if missing:
        raise ValueError(f"the ensemble needs its members trained first; missing {missing}")
    # the rows the test evaluation scores, no label read: a member's quantile among them is its rank there, which
    # members fitted on the training rows (a k-NN counting each row as its own neighbour) cannot skew
    rows = torch.as_tensor(_fit_rows(setup, setup.test_videos)[0], device=setup.features.device)
    with torch.no_grad():
        references = [predict(members[a], setup.features, rows).double().T.sort(dim=1).values.contiguous()
                      for a in ENSEMBLE_MEMBERS]
        model = QuantileEnsemble([members[a] for a in ENSEMBLE_MEMBERS], references)
        evaluation = setup.make_evaluator(setup.test_videos)(model)
    evaluation["members"] = list(ENSEMBLE_MEMBERS)
    outcome = TrainOutcome(losses=[], selected_epoch=0, loop_seconds=time.perf_counter() - started)
    return evaluation, [outcome], model


# ---------------------------------------------------------------------------------------------- reporting
def attackers_of(choice: str) -> tuple[str, ...]:
    return ATTACKER_GROUPS.get(choice, (choice,))


def primary_attacker(choice: str) -> str:
    """The reference attacker: the one asked for; ``standard`` for a group."""
    return "standard" if choice in ATTACKER_GROUPS else choice


def named(values: np.ndarray, names: list[str]) -> dict[str, float]:
    return {name: float(value) for name, value in zip(names, values)}


PER_ATTRIBUTE_KEYS = ("per_attribute", "per_attribute_mean", "per_attribute_max", "per_attribute_video",
                      "validation_ap", "selected_c", "selected_gamma", "selected_k", "selected_metric",
                      "selected_learning_rate", "selected_leaves", "selected_components", "used_components")


def name_attributes(evaluation: Evaluation, names: list[str]) -> Evaluation:
    """The per-attribute entries of an attacker's evaluation as {attribute name: value} (in place)."""
    for key in PER_ATTRIBUTE_KEYS:
        if key in evaluation:
            values = evaluation[key]
            if isinstance(values, np.ndarray):
                values = [float(v) for v in values]
            evaluation[key] = dict(zip(names, values))
    return evaluation


def worst_case(candidates: list[tuple[str, np.ndarray]], names: list[str]) -> dict:
    """Per attribute the highest AP over ``(source, per-attribute AP)`` candidates (the first on ties;
    nan where no candidate has one) and its source; cMAP = the mean over the defined attributes."""
    table = np.stack([np.asarray(ap, dtype=np.float64) for _, ap in candidates])  # (sources, A)
    defined = ~np.isnan(table)
    best = np.argmax(np.where(defined, table, -np.inf), axis=0)
    values = np.where(defined.any(axis=0), table[best, np.arange(table.shape[1])], np.nan)
    sources = {name: (candidates[int(i)][0] if defined[:, a].any() else None)
               for a, (name, i) in enumerate(zip(names, best))}
    return {"cmap": mean_defined(values), "per_attribute": named(values, names), "source": sources}


# ---------------------------------------------------------------------------------------------- targets
def attribute_names_of(data: StoreData) -> list[str]:
    names = data.attribute_names
    if not names or data.videos.attributes.shape[1] == 0:
        raise FeatstoreError(f"{data.store.path} has no private attributes to attack (dataset "
                             f"{data.header.get('name')!r})")
    return names


def check_test_positives(attributes: np.ndarray, names: list[str], store_path: Path) -> np.ndarray:
    """Positive rates of the test targets; an error when no attribute has a positive (cMAP undefined)."""
    rates = positive_rates(attributes)
    if np.all(np.isnan(rates) | (rates == 0)):
        raise FeatstoreError(f"{store_path}: no private attribute has a positive test sample, so cMAP is undefined")
    return rates


# ---------------------------------------------------------------------------------------------- clip positions
def position_aggregates(scores: np.ndarray, targets: np.ndarray) -> dict:
    """scores (V, K, A) logits, targets (V, A) -> the aggregates of the per-position AP table (K, A) over
    positions (``evaluate.protocols.vp.AGGREGATE_RULES``), and the video-level AP of the sigmoid probabilities
    averaged over each video's K clips."""
    per_position = np.stack([per_attribute_ap(scores[:, p], targets) for p in range(scores.shape[1])])
    undefined = np.isnan(per_position).all(axis=0)  # no positive: the same at every position
    with np.errstate(invalid="ignore"):
        mean_ap = np.where(undefined, np.nan, np.nanmean(np.where(undefined, 0.0, per_position), axis=0))
        max_ap = np.where(undefined, np.nan, np.nanmax(np.where(undefined, 0.0, per_position), axis=0))
    per_position_cmap = np.array([mean_defined(row) for row in per_position])
    # the authors' max: the position with the best cMAP (the first on ties); none when no attribute is defined
    best = None if np.isnan(per_position_cmap).all() else int(np.nanargmax(per_position_cmap))
    with np.errstate(over="ignore"):
        probabilities = 1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))
    video_ap = per_attribute_ap(probabilities.mean(axis=1), targets)
    return {"cmap_mean": mean_defined(mean_ap),
            "cmap_max": float("nan") if best is None else float(per_position_cmap[best]),
            "cmap_max_per_attribute": mean_defined(max_ap), "cmap_video": mean_defined(video_ap),
            "cmap_max_position": best, "per_attribute_mean": mean_ap,
            "per_attribute_max": np.full(len(undefined), np.nan) if best is None else per_position[best],
            "per_attribute_video": video_ap, "per_position_cmap": [float(c) for c in per_position_cmap]}


WORST_CASE_AGGREGATES = ("mean", "video")  # cmap_max (the best position, chosen on the test set) is not one


def attacker_worst(evaluation: dict, names: list[str]) -> None:
    """An attacker's ``per_attribute`` = max over its mean and video aggregates; ``cmap`` their mean (in place)."""
    table = np.array([[evaluation[f"per_attribute_{agg}"][n] for n in names] for agg in WORST_CASE_AGGREGATES])
    defined = ~np.isnan(table)
    best = np.where(defined.any(axis=0), np.where(defined, table, -np.inf).max(axis=0), np.nan)
    evaluation["per_attribute"] = named(best, names)
    evaluation["cmap"] = mean_defined(best)
