"""Temporal private-attribute protocol (VP-HMDB51 / VP-UCF101-style): the attacker MLP of ``privacy``
on full clip embeddings, scored per video at its 5 evenly spaced clips.

Train: one random clip of each training video per epoch (``clip_sampling="all"``: every clip), labelled
with the video's attributes. Test: the MLP scores each test video's 5 evenly spaced clips; AP is
computed separately at each clip position (position p = the p-th evenly spaced clip of every test
video), giving a (5, A) table. Two aggregations over the positions, both reported:

- ``cmap_mean``: per attribute, the mean AP over the 5 positions; then the mean over attributes.
  This is the headline ``cmap`` (what a single clip at a random position leaks).
- ``cmap_max``: per attribute, the max AP over the 5 positions (the authors' choice; optimistic
  for the attacker, i.e. a higher privacy score); then the mean over attributes.

The standard attacker selects its epoch on validation ``cmap_mean``; the authors' attacker on test
``cmap_max``. Attributes without a positive test video are excluded from both means (reported null).
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
from evaluate.protocols._attribute_attack import ATTACKER_CHOICES, AttackSetup, attackers_of, named, primary_attacker, run_attacker
from evaluate.protocols._classifier import CLIP_SAMPLING
from evaluate.protocols.privacy import attribute_names_of, check_test_positives
from featstore.store import Store


@dataclass
class VPConfig:
    attacker: str = "both"  # standard | authors | both
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 512
    weight_decay: float = 0.0
    plateau_factor: float = 0.2
    plateau_patience: int = 10
    val_fraction: float = 0.1
    clip_sampling: str = "random"  # random: one clip per video per epoch | all
    eval_clips: int = 5
    seed: int = 0
    train_split: str = "train"
    test_split: str = "test"
    device: str = "auto"

    def __post_init__(self):
        check_choice("attacker", self.attacker, ATTACKER_CHOICES)
        check_choice("clip_sampling", self.clip_sampling, CLIP_SAMPLING)
        check_training(self.epochs, self.lr, self.batch_size, self.weight_decay)
        check(0 < self.plateau_factor < 1, f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        check(self.plateau_patience >= 0, f"plateau_patience must be >= 0, got {self.plateau_patience}")
        check(0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}")
        check(self.eval_clips >= 1, f"eval_clips must be >= 1, got {self.eval_clips}")
        check(self.train_split != self.test_split, "train_split and test_split must differ")

    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, weight_decay=self.weight_decay,
                             seed=self.seed, plateau_factor=self.plateau_factor, plateau_patience=self.plateau_patience)


def position_aggregates(scores: np.ndarray, targets: np.ndarray) -> dict:
    """scores (V, K, A), targets (V, A) -> per-position AP (K, A) and its mean / max over positions."""
    per_position = np.stack([per_attribute_ap(scores[:, p], targets) for p in range(scores.shape[1])])
    undefined = np.isnan(per_position).all(axis=0)  # no positive: the same at every position
    with np.errstate(invalid="ignore"):
        mean_ap = np.where(undefined, np.nan, np.nanmean(np.where(undefined, 0.0, per_position), axis=0))
        max_ap = np.where(undefined, np.nan, np.nanmax(np.where(undefined, 0.0, per_position), axis=0))
    return {"cmap_mean": mean_defined(mean_ap), "cmap_max": mean_defined(max_ap), "per_attribute_mean": mean_ap,
            "per_attribute_max": max_ap, "per_position_cmap": [mean_defined(row) for row in per_position]}


def run(store: Store, config: VPConfig, *, show_progress: bool = False) -> dict:
    watch = Stopwatch(device_of(config.device))
    device = watch.device
    data = StoreData(store, device, kinds=("clips",))
    names = attribute_names_of(data)
    train_videos = data.split_videos(config.train_split, "clips")
    test_videos = data.split_videos(config.test_split, "clips")
    attributes = data.videos.attributes.astype(np.int64)
    features = data.embeddings["clips"]

    def make_evaluator(videos: np.ndarray):
        rows = torch.from_numpy(data.evenly_spaced_rows(videos, config.eval_clips)).to(device)
        video_targets = attributes[videos]

        def evaluate(model: nn.Module) -> dict:
            return position_aggregates(predict(model, features, rows).float().cpu().numpy(), video_targets)

        return evaluate

    rates = check_test_positives(attributes[test_videos], names, store.path)

    def make_sampler(videos: np.ndarray):
        if config.clip_sampling == "random":
            return data.random_row_sampler(videos, "clips")
        return data.all_rows_sampler(videos, "clips")

    setup = AttackSetup(features=features, targets=data.tensor(attributes), train_videos=train_videos,
                        test_videos=test_videos, make_sampler=make_sampler, make_evaluator=make_evaluator,
                        selection_key="cmap_mean", authors_selection_key="cmap_max")
    results, outcomes = {}, []
    for attacker in attackers_of(config.attacker):
        evaluation, outcome = run_attacker(setup, attacker, config.train_settings(), config.val_fraction, show_progress)
        for key in ("per_attribute_mean", "per_attribute_max"):
            evaluation[key] = named(evaluation[key], names)
        results[attacker] = evaluation
        outcomes.append(outcome)
    primary = primary_attacker(config.attacker)
    return {
        "cmap": results[primary]["cmap_mean"],
        "cmap_mean": results[primary]["cmap_mean"],
        "cmap_max": results[primary]["cmap_max"],
        "attacker": primary,
        "chance_cmap": mean_defined(rates),
        "positive_rate": named(rates, names),
        "n_train_videos": int(len(train_videos)),
        "n_test_videos": int(len(test_videos)),
        "eval_clips": config.eval_clips,
        "attackers": results,
        "timing": timing_block(watch.seconds(), outcomes),
    }


def print_vp_table(title: str, metrics: dict) -> None:
    attackers = list(metrics["attackers"])
    columns = ["attribute"] + [f"AP {a} {agg}" for a in attackers for agg in ("mean", "max")] + ["chance"]
    rows = []
    for name in metrics["positive_rate"]:
        rows.append([name] + [metrics["attackers"][a][f"per_attribute_{agg}"][name] for a in attackers
                              for agg in ("mean", "max")] + [metrics["positive_rate"][name]])
    rows.append(["[bold]cmap[/]"] + [metrics["attackers"][a][f"cmap_{agg}"] for a in attackers for agg in ("mean", "max")]
                + [metrics["chance_cmap"]])
    rows.append(["selected epoch"] + [str(metrics["attackers"][a]["selected_epoch"]) for a in attackers for _ in (0, 1)]
                + [""])
    print_columns(title + "  (mean / max of AP over the clip positions; max = the authors')", columns, rows)


def register(app: typer.Typer) -> None:
    @app.command("vp")
    def vp_command(
        store: str = store_option(),
        out: Optional[Path] = out_option(),
        attacker: str = typer.Option("both", help="standard, authors or both (see docs/evaluate.md)."),
        epochs: int = typer.Option(100, help="Training epochs."),
        lr: float = typer.Option(1e-3, help="AdamW learning rate."),
        batch_size: int = typer.Option(512, help="Clips per step."),
        clip_sampling: str = typer.Option("random", help="random (one clip per video per epoch) or all."),
        eval_clips: int = typer.Option(5, help="Evenly spaced test clips per video."),
        val_fraction: float = typer.Option(0.1, help="Standard attacker: share of training videos for selection."),
        seed: int = seed_option(),
        device: str = device_option(),
        progress: bool = progress_option(),
    ) -> None:
        """Temporal private-attribute attack on clip embeddings: cMAP over 5 clips (mean and max)."""
        config = VPConfig(attacker=attacker, epochs=epochs, lr=lr, batch_size=batch_size, clip_sampling=clip_sampling,
                          eval_clips=eval_clips, val_fraction=val_fraction, seed=seed, device=device)
        opened = open_store(store)
        metrics = run(opened, config, show_progress=progress)
        finish("vp", config, metrics, opened, out, printer=lambda: print_vp_table(f"vp: {opened.path}", metrics))
