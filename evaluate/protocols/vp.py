"""Temporal private-attribute protocol (VP-HMDB51 / VP-UCF101-style): the attackers of ``privacy`` on
full clip embeddings, scored per video at its 5 evenly spaced clips.

Train: one random clip of each training video per epoch (``clip_sampling="all"``: every clip), labelled
with the video's attributes (the scikit-learn attackers fit the 5 evenly spaced clips of each training
video). Test: each attacker scores each test video's 5 evenly spaced clips (``positions``: bin
``centres``, the default, or the authors' ``linspace``, see ``featstore.sampling.POSITION_RULES``); AP
is computed separately at each clip position (position p = the p-th evenly spaced clip of every test
video), giving a (5, A) table. The aggregations, all reported per attacker (``AGGREGATE_RULES``):

- ``cmap_mean``: per attribute, the mean AP over the 5 positions; then the mean over attributes
  (what a single clip at a random position leaks).
- ``cmap_max``: the authors' rule: each position's cMAP (``per_position_cmap``), then the max over the
  positions (``cmap_max_position``, 0-based); ``per_attribute_max`` are that position's APs. Optimistic
  for the attacker: the position is chosen on the test set.
- ``cmap_max_per_attribute`` (not the authors'): per attribute the max AP over the positions, then the
  mean over attributes; >= ``cmap_max``, more so on small test sets (each attribute picks its own best
  position).
- ``cmap_video``: per video, the sigmoid probabilities of its 5 clips averaged; AP over the videos.

Each attacker's ``per_attribute`` is the max of its ``per_attribute_mean`` and ``per_attribute_video``
(``cmap`` their mean); the worst case per attribute is the max of that over the attackers: a
deliberately pessimistic bound, but neither max over positions is a candidate (the best position is
chosen on the test set). The headline ``cmap`` is the worst case when more than one attacker ran, else
the one attacker's ``cmap_mean``; ``cmap_mean`` / ``cmap_max`` / ``cmap_max_per_attribute`` /
``cmap_video`` at the top are the reference attacker's (``attacker``: ``standard`` for a group). The
validation-selected attackers select on validation ``cmap_mean`` (per attribute: ``per_attribute_mean``);
the authors' attacker on test ``cmap_max``. Attributes without a positive test video are excluded from
the means (reported null).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from torch import nn

from evaluate.common import (
    StoreData,
    Stopwatch,
    TrainSettings,
    check,
    check_choice,
    check_training,
    device_of,
    device_option,
    finish,
    labels_from_option,
    open_store,
    out_option,
    predict,
    print_columns,
    progress_option,
    seed_option,
    store_option,
    timing_block,
)
from evaluate.metrics import mean_defined, per_attribute_ap
from evaluate.protocols._attribute_attack import (
    ATTACKER_CHOICES,
    AttackSetup,
    attackers_of,
    name_attributes,
    named,
    primary_attacker,
    run_attacker,
    worst_case,
)
from evaluate.protocols._classifier import CLIP_SAMPLING
from evaluate.protocols.privacy import attacker_label, attribute_names_of, check_test_positives, selection_summary
from featstore.sampling import POSITION_RULES
from featstore.store import Store

AGGREGATE_RULES = {
    "cmap_mean": "per attribute the mean AP over the clip positions, then the mean over attributes",
    "cmap_max": "the authors': per position the cMAP, then the max over positions (chosen on the test set)",
    "cmap_max_per_attribute": "not the authors': per attribute the max AP over positions, then the mean over "
                              "attributes (>= cmap_max)",
    "cmap_video": "per video the sigmoid probabilities averaged over its clips, then AP over videos and the mean "
                  "over attributes",
    "worst_case": "per attribute the max over attackers of the mean and video APs (no max over positions), "
                  "then the mean over attributes",
}


@dataclass
class VPConfig:
    attacker: str = "all"  # all | both (standard + authors) | standard | authors | mlp | logreg | knn
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 512
    weight_decay: float = 0.0  # standard and mlp; the authors' attacker keeps its code's (AUTHORS_WEIGHT_DECAY)
    plateau_factor: float = 0.2  # the paper: learning rate to 1/5 on a loss plateau (the authors' code: none)
    plateau_patience: int = 10
    val_fraction: float = 0.1
    clip_sampling: str = "random"  # random: one clip per video per epoch | all
    eval_clips: int = 5
    positions: str = "centres"  # where the evaluation clips sit: centres | linspace (the authors')
    seed: int = 0
    train_split: str = "train"
    test_split: str = "test"
    device: str = "auto"
    labels_from: Optional[str] = None  # the raw store of an export without private labels (joined by video id)

    def __post_init__(self):
        check_choice("attacker", self.attacker, ATTACKER_CHOICES)
        check_choice("clip_sampling", self.clip_sampling, CLIP_SAMPLING)
        check_training(self.epochs, self.lr, self.batch_size, self.weight_decay)
        check(0 < self.plateau_factor < 1, f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        check(self.plateau_patience >= 0, f"plateau_patience must be >= 0, got {self.plateau_patience}")
        check(0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}")
        check(self.eval_clips >= 1, f"eval_clips must be >= 1, got {self.eval_clips}")
        check_choice("positions", self.positions, POSITION_RULES)
        check(self.train_split != self.test_split, "train_split and test_split must differ")

    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, weight_decay=self.weight_decay,
                             seed=self.seed, plateau_factor=self.plateau_factor, plateau_patience=self.plateau_patience)


def position_aggregates(scores: np.ndarray, targets: np.ndarray) -> dict:
    """scores (V, K, A) logits, targets (V, A) -> the aggregates of the per-position AP table (K, A) over
    positions (``AGGREGATE_RULES``), and the video-level AP of the sigmoid probabilities averaged over each
    video's K clips."""
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


def run(store: Store, config: VPConfig, *, show_progress: bool = False) -> dict:
    watch = Stopwatch(device_of(config.device))
    device = watch.device
    data = StoreData(store, device, kinds=("clips",), labels_from=config.labels_from, needs_private_labels=True)
    names = attribute_names_of(data)
    train_videos = data.split_videos(config.train_split, "clips")
    test_videos = data.split_videos(config.test_split, "clips")
    attributes = data.videos.attributes.astype(np.int64)
    features = data.embeddings["clips"]

    def evaluation_rows(videos: np.ndarray) -> np.ndarray:
        # every video here has clips (split_videos(..., "clips")), so no row is -1
        return store.evenly_spaced_clip_rows(config.eval_clips, config.positions)[videos]

    def make_evaluator(videos: np.ndarray):
        rows = torch.from_numpy(evaluation_rows(videos)).to(device)
        video_targets = attributes[videos]

        def evaluate(model: nn.Module) -> dict:
            return position_aggregates(predict(model, features, rows).float().cpu().numpy(), video_targets)

        return evaluate

    rates = check_test_positives(attributes[test_videos], names, store.path)

    def make_sampler(videos: np.ndarray):
        if config.clip_sampling == "random":
            return data.random_row_sampler(videos, "clips")
        return data.all_rows_sampler(videos, "clips")

    def fit_rows(videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = evaluation_rows(videos)
        return rows.reshape(-1), np.repeat(videos, rows.shape[1])

    setup = AttackSetup(features=features, targets=data.tensor(attributes), train_videos=train_videos,
                        test_videos=test_videos, make_sampler=make_sampler, make_evaluator=make_evaluator,
                        fit_rows=fit_rows, selection_key="cmap_mean", authors_selection_key="cmap_max",
                        attribute_selection_key="per_attribute_mean")
    results, outcomes = {}, []
    for attacker in attackers_of(config.attacker):
        evaluation, attacker_outcomes = run_attacker(setup, attacker, config.train_settings(), config.val_fraction,
                                                     show_progress)
        name_attributes(evaluation, names)
        attacker_worst(evaluation, names)
        results[attacker] = evaluation
        outcomes.extend(attacker_outcomes)
    worst = worst_case([(f"{a}/{agg}", [r[f"per_attribute_{agg}"][n] for n in names])
                        for a, r in results.items() for agg in WORST_CASE_AGGREGATES], names)
    primary = primary_attacker(config.attacker)
    return {
        "cmap": worst["cmap"] if len(results) > 1 else results[primary]["cmap_mean"],
        "headline": "worst_case" if len(results) > 1 else f"{primary}/mean",
        "cmap_mean": results[primary]["cmap_mean"],
        "cmap_max": results[primary]["cmap_max"],
        "cmap_max_per_attribute": results[primary]["cmap_max_per_attribute"],
        "cmap_video": results[primary]["cmap_video"],
        "attacker": primary,
        "worst_case": worst,
        "aggregate_rules": AGGREGATE_RULES,
        "chance_cmap": mean_defined(rates),
        "positive_rate": named(rates, names),
        "n_train_videos": int(len(train_videos)),
        "n_test_videos": int(len(test_videos)),
        "eval_clips": config.eval_clips,
        "positions": config.positions,
        "attackers": results,
        "timing": timing_block(watch.seconds(), outcomes),
    }


def print_vp_table(title: str, metrics: dict) -> None:
    """Attributes x attackers (AP mean / max / video over the clip positions), the worst case, the chance level."""
    attackers = metrics["attackers"]
    names = list(metrics["positive_rate"])
    worst = metrics["worst_case"]

    def triple(values: list) -> str:
        return " / ".join("n/a" if v is None or v != v else f"{v:.4f}" for v in values)

    aggregates = ("mean", "max", "video")
    rows = [[name, *(triple([attackers[a][f"per_attribute_{agg}"][name] for agg in aggregates]) for a in attackers),
             worst["per_attribute"][name], worst["source"][name] or "", metrics["positive_rate"][name]]
            for name in names]
    rows.append(["[bold]cmap[/]", *(triple([attackers[a][f"cmap_{agg}"] for agg in aggregates]) for a in attackers),
                 worst["cmap"], "", metrics["chance_cmap"]])
    rows.append(["max per attribute", *(triple([attackers[a]["cmap_max_per_attribute"]]) for a in attackers),
                 "", "", ""])
    rows.append(["selected", *(selection_summary(attackers[a], names) for a in attackers), "", "", ""])
    columns = ["attribute", *(f"AP {attacker_label(a, attackers[a])}" for a in attackers), "worst case", "from",
               "chance"]
    print_columns(title + f"  (AP mean / max / video over {metrics['eval_clips']} clips at {metrics['positions']}; "
                  "max = the authors': the position with the best cMAP; max per attribute = each attribute's best "
                  "position, not the authors'; worst case over mean and video)", columns, rows)


def register(app: typer.Typer) -> None:
    @app.command("vp")
    def vp_command(
        store: str = store_option(),
        out: Optional[Path] = out_option(),
        attacker: str = typer.Option("all", help="all (every attacker; cmap = the worst case), both (standard + "
                                     "authors), standard, authors, mlp, logreg or knn (see docs/evaluate.md)."),
        epochs: int = typer.Option(100, help="Training epochs."),
        lr: float = typer.Option(1e-3, help="AdamW learning rate."),
        batch_size: int = typer.Option(512, help="Clips per step."),
        clip_sampling: str = typer.Option("random", help="random (one clip per video per epoch) or all."),
        eval_clips: int = typer.Option(5, help="Evenly spaced test clips per video."),
        positions: str = typer.Option("centres", help="Where the evaluation clips sit: centres (of equal bins) or "
                                      "linspace (the authors': np.linspace(0, n - 1, k) truncated)."),
        val_fraction: float = typer.Option(0.1, help="Validation-selected attackers: share of training videos held "
                                                     "out for selection."),
        seed: int = seed_option(),
        device: str = device_option(),
        labels_from: Optional[str] = labels_from_option(),
        progress: bool = progress_option(),
    ) -> None:
        """Temporal private-attribute attack on clip embeddings: worst-case cMAP over the attackers and the
        5-clip aggregates (lower = more private)."""
        config = VPConfig(attacker=attacker, epochs=epochs, lr=lr, batch_size=batch_size, clip_sampling=clip_sampling,
                          eval_clips=eval_clips, positions=positions, val_fraction=val_fraction, seed=seed,
                          device=device, labels_from=labels_from)
        opened = open_store(store)
        metrics = run(opened, config, show_progress=progress)
        finish("vp", config, metrics, opened, out, printer=lambda: print_vp_table(f"vp: {opened.path}", metrics))
