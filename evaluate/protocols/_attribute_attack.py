"""The attribute attackers shared by the privacy protocols (``privacy``: static clips, ``vp``: clips).

Every attacker trains on the training split and is scored on the test split of the same store; the
protocols report each one by name and, per attribute, the worst case (the highest test AP) over them.

The MLP attackers are Linear(d, d)-ReLU-Linear(d, A) trained with binary cross-entropy (unknown
targets left out) and AdamW; ``standard`` and ``mlp`` with the protocol's weight decay (0 by default) and
the learning rate reduced by the plateau factor when the mean training loss stops improving (the
paper's recipe), ``authors`` with the authors' code's optimizer settings:

- ``standard``: plain logits; a validation split (``val_fraction`` of the training *videos*, drawn
  with the seed) is held out of training and the epoch with the best validation cMAP is evaluated
  on the test split once.
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
  validation AP, then refit on all training videos' rows with the chosen C.
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

Every attacker but ``authors`` selects on the validation split only (training videos); the test set is
scored once. All attackers output logits (the kNN fraction p as log(p / (1 - p)), clipped), so the
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
KNN_CLIP = 1e-6  # the kNN fraction is clipped to [KNN_CLIP, 1 - KNN_CLIP] before the logit
SELECTED_BY = {
    "standard": "best validation cMAP ({fraction:.0%} of the training videos, seed {seed})",
    "authors": "best test cMAP at every {every}th epoch (optimistic: selected on the test set); AdamW weight "
               "decay {decay:g}, constant learning rate",
    "mlp": "standardized inputs; per seed ({seeds}) the epoch with the best validation cMAP, then the seed with "
           "the best validation cMAP ({fraction:.0%} of the training videos, split seed {seed})",
    "logreg": "standardized inputs; C per attribute from {grid} by validation AP ({fraction:.0%} of the training "
              "videos, seed {seed}), refit on all training videos",
    "knn": "standardized inputs; metric {metrics} and k {grid} per attribute by validation AP ({fraction:.0%} of "
           "the training videos, seed {seed}), refit on all training videos",
}
SELECTED_BY["mlp-whitened"] = SELECTED_BY["mlp"].replace("standardized inputs", "whitened inputs (shrinkage {shrink:g})")
SELECTED_BY["knn-whitened"] = SELECTED_BY["knn"].replace("standardized inputs", "whitened inputs (shrinkage {shrink:g})")

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


def _selected_by(attacker: str, settings: TrainSettings, val_fraction: float) -> str:
    seeds = ", ".join(str(settings.seed + i) for i in range(MLP_SEEDS))
    grid = ", ".join(f"{c:g}" for c in LOGREG_C) if attacker == "logreg" else ", ".join(map(str, KNN_K))
    return SELECTED_BY[attacker].format(fraction=val_fraction, seed=settings.seed, seeds=seeds, grid="{" + grid + "}",
                                        metrics="{" + ", ".join(KNN_METRICS) + "}", every=AUTHORS_SELECT_EVERY,
                                        decay=AUTHORS_WEIGHT_DECAY, shrink=WHITEN_SHRINKAGE)


def run_attacker(setup: AttackSetup, attacker: str, settings: TrainSettings, val_fraction: float,
                 show_progress: bool = False) -> tuple[Evaluation, list[TrainOutcome]]:
    """Train one attacker; return its test evaluation (of the selected model) and the training records."""
    started = time.perf_counter()
    if attacker in ("standard", "authors"):
        evaluation, outcomes = _run_plain_mlp(setup, attacker, settings, val_fraction, show_progress)
    elif attacker in ("mlp", "mlp-whitened"):
        evaluation, outcomes = _run_mlp_seeds(setup, attacker, settings, val_fraction, show_progress)
    elif attacker in ("logreg", "knn", "knn-whitened"):
        evaluation, outcomes = _run_sklearn(setup, attacker, settings, val_fraction)
    else:
        raise ValueError(f"unknown attacker {attacker!r}")
    evaluation["selected_by"] = _selected_by(attacker, settings, val_fraction)
    evaluation["test_selected"] = attacker in TEST_SELECTED
    evaluation["seconds"] = time.perf_counter() - started
    return evaluation, outcomes


def run_attackers(setup: AttackSetup, settings: AttackerSettings, names: list[str],
                  show_progress: bool = False) -> tuple[dict[str, Evaluation], list[TrainOutcome]]:
    """Train every attacker ``settings.attacker`` names: {attacker: test evaluation, per-attribute entries by
    attribute name} and every training record."""
    results, outcomes = {}, []
    for attacker in attackers_of(settings.attacker):
        evaluation, attacker_outcomes = run_attacker(setup, attacker, settings.train_settings(), settings.val_fraction,
                                                     show_progress)
        results[attacker] = name_attributes(evaluation, names)
        outcomes.extend(attacker_outcomes)
    return results, outcomes


def _run_plain_mlp(setup: AttackSetup, attacker: str, settings: TrainSettings, val_fraction: float,
                   show_progress: bool) -> tuple[Evaluation, list[TrainOutcome]]:
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
        fit_positions, val_positions = carve_validation(len(setup.train_videos), val_fraction, settings.seed)
        train_videos = setup.train_videos[fit_positions]
        val_evaluator = setup.make_evaluator(setup.train_videos[val_positions])

        def select(m: nn.Module) -> float:
            return val_evaluator(m)[setup.selection_key]
    outcome = train_head(model, setup.features, setup.targets, setup.make_sampler(train_videos), masked_bce, settings,
                         select=select, description=f"attacker {attacker}", show_progress=show_progress)
    with torch.no_grad():
        evaluation = test_evaluator(model)
    evaluation["selected_epoch"] = outcome.selected_epoch
    evaluation["n_fit_videos"] = int(len(train_videos))
    evaluation["final_train_loss"] = outcome.losses[-1]
    return evaluation, [outcome]


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


def _run_mlp_seeds(setup: AttackSetup, attacker: str, settings: TrainSettings, val_fraction: float,
                   show_progress: bool) -> tuple[Evaluation, list[TrainOutcome]]:
    device = setup.features.device
    dim, n_attributes = setup.features.shape[1], setup.targets.shape[1]
    fit_positions, val_positions = carve_validation(len(setup.train_videos), val_fraction, settings.seed)
    fit_videos = setup.train_videos[fit_positions]
    val_evaluator = setup.make_evaluator(setup.train_videos[val_positions])
    test_evaluator = setup.make_evaluator(setup.test_videos)
    whitened = attacker == "mlp-whitened"
    statistics = input_statistics(setup.features, _fit_rows(setup, fit_videos)[0], whitened)
    runs, outcomes = [], []
    for offset in range(MLP_SEEDS):
        seed = settings.seed + offset
        model = MappedInputs(seeded_module(mlp_head(dim, n_attributes), seed, device), *statistics, whitened).to(device)
        outcome = train_head(model, setup.features, setup.targets, setup.make_sampler(fit_videos), masked_bce,
                             replace(settings, seed=seed), select=lambda m: val_evaluator(m)[setup.selection_key],
                             description=f"attacker {attacker} (seed {seed})", show_progress=show_progress)
        with torch.no_grad():
            evaluation = test_evaluator(model)
        scores = [s for s in outcome.selection_scores if not math.isnan(s)]
        runs.append((seed, max(scores) if scores else math.nan, outcome, evaluation))
        outcomes.append(outcome)
    best = max(range(len(runs)), key=lambda i: (-math.inf if math.isnan(runs[i][1]) else runs[i][1], -i))
    seed, _, outcome, evaluation = runs[best]
    evaluation = dict(evaluation)
    evaluation["selected_seed"] = seed
    evaluation["selected_epoch"] = outcome.selected_epoch
    evaluation["n_fit_videos"] = int(len(fit_videos))
    evaluation["final_train_loss"] = outcome.losses[-1]
    evaluation["seeds"] = [{"seed": s, "selected_epoch": o.selected_epoch, "validation_cmap": v,
                            "test_cmap": e[setup.selection_key]} for s, v, o, e in runs]
    return evaluation, outcomes


# ---------------------------------------------------------------------------------------------- scikit-learn
def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, KNN_CLIP, 1.0 - KNN_CLIP)
    return np.log(p / (1.0 - p))


class _Rows:
    """Standardized (``whitened``: whitened) fit rows (float64 numpy) and their targets, with the statistics that
    map queries the same way."""

    def __init__(self, setup: AttackSetup, videos: np.ndarray, targets: np.ndarray, whitened: bool):
        rows, owners = _fit_rows(setup, videos)
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


def _run_sklearn(setup: AttackSetup, attacker: str, settings: TrainSettings,
                 val_fraction: float) -> tuple[Evaluation, list[TrainOutcome]]:
    """``logreg``, ``knn`` or ``knn-whitened``."""
    started = time.perf_counter()
    targets = setup.targets.cpu().numpy()
    fit_positions, val_positions = carve_validation(len(setup.train_videos), val_fraction, settings.seed)
    whitened = attacker == "knn-whitened"
    fit = _Rows(setup, setup.train_videos[fit_positions], targets, whitened)
    val_evaluator = setup.make_evaluator(setup.train_videos[val_positions])
    n_attributes = targets.shape[1]

    def validation_ap(model: nn.Module) -> np.ndarray:
        with torch.no_grad():
            return np.asarray(val_evaluator(model)[setup.attribute_selection_key], dtype=np.float64)

    if attacker == "logreg":
        candidates = list(LOGREG_C)
        scores = [validation_ap(_logreg_scorer(fit, [c] * n_attributes)) for c in candidates]
    else:
        ks = sorted({min(k, len(fit.x)) for k in KNN_K})
        candidates = [(metric, k) for metric in KNN_METRICS for k in ks]
        scores = [validation_ap(_knn_scorer(fit, [c] * n_attributes)) for c in candidates]
    chosen = _pick(candidates, scores)
    full = _Rows(setup, setup.train_videos, targets, whitened)
    model = _logreg_scorer(full, chosen) if attacker == "logreg" else _knn_scorer(full, chosen)
    with torch.no_grad():
        evaluation = setup.make_evaluator(setup.test_videos)(model)
    if attacker == "logreg":
        evaluation["selected_c"] = [float(c) for c in chosen]
    else:
        evaluation["selected_metric"] = [m for m, _ in chosen]
        evaluation["selected_k"] = [int(k) for _, k in chosen]
    evaluation["validation_ap"] = np.max(np.stack(scores), axis=0)  # the chosen candidate's, per attribute
    evaluation["n_fit_videos"] = int(len(setup.train_videos))
    evaluation["n_validation_videos"] = int(len(val_positions))
    outcome = TrainOutcome(losses=[], selected_epoch=0, loop_seconds=time.perf_counter() - started)
    return evaluation, [outcome]


# ---------------------------------------------------------------------------------------------- reporting
def attackers_of(choice: str) -> tuple[str, ...]:
    return ATTACKER_GROUPS.get(choice, (choice,))


def primary_attacker(choice: str) -> str:
    """The reference attacker: the one asked for; ``standard`` for a group."""
    return "standard" if choice in ATTACKER_GROUPS else choice


def named(values: np.ndarray, names: list[str]) -> dict[str, float]:
    return {name: float(value) for name, value in zip(names, values)}


PER_ATTRIBUTE_KEYS = ("per_attribute", "per_attribute_mean", "per_attribute_max", "per_attribute_video",
                      "validation_ap", "selected_c", "selected_k", "selected_metric")


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
