"""Static private-attribute protocol (VISPR-style): how well an attacker MLP reads the private
attributes from embeddings. Lower cMAP = better privacy; chance = the mean positive rate.

Samples: ``kind="static"`` (default) uses every static clip (one frame tiled to a clip) of the
training and test videos, each labelled with its video's attributes; an image store has one static
clip per image. ``kind="clips"`` uses every full clip instead. Each sample is scored on its own
(image-level AP, as VISPR); see ``vp`` for the 5-clip video-level variant.

The attackers (``standard``, ``authors``, ``mlp``, ``logreg``, ``knn``) are defined in
``_attribute_attack``; ``attacker="all"`` (default) trains every one, ``"both"`` the standard and the
authors' MLPs (the authors' attacker with its code's optimizer settings and test selection every 5th
epoch, see ``_attribute_attack``). Each is reported by name under ``attackers``; the headline ``cmap`` /
``per_attribute`` are the worst case (``worst_case``: per attribute the highest test AP over the
attackers) when more than one attacker ran, else the one attacker's.
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
from evaluate.metrics import mean_defined, per_attribute_ap, positive_rates
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
from data_manifests.errors import FeatstoreError
from featstore.store import Store

KINDS = ("static", "clips")


@dataclass
class PrivacyConfig:
    attacker: str = "all"  # all | both (standard + authors) | standard | authors | mlp | logreg | knn
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 512
    weight_decay: float = 0.0  # standard and mlp; the authors' attacker keeps its code's (AUTHORS_WEIGHT_DECAY)
    plateau_factor: float = 0.2  # the paper: learning rate to 1/5 on a loss plateau (the authors' code: none)
    plateau_patience: int = 10
    val_fraction: float = 0.1  # standard attacker: share of training videos held out for selection
    seed: int = 0
    kind: str = "static"  # static | clips
    train_split: str = "train"
    test_split: str = "test"
    device: str = "auto"
    labels_from: Optional[str] = None  # the raw store of an export without private labels (joined by video id)

    def __post_init__(self):
        check_choice("attacker", self.attacker, ATTACKER_CHOICES)
        check_choice("kind", self.kind, KINDS)
        check_training(self.epochs, self.lr, self.batch_size, self.weight_decay)
        check(0 < self.plateau_factor < 1, f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        check(self.plateau_patience >= 0, f"plateau_patience must be >= 0, got {self.plateau_patience}")
        check(0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}")
        check(self.train_split != self.test_split, "train_split and test_split must differ")

    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, weight_decay=self.weight_decay,
                             seed=self.seed, plateau_factor=self.plateau_factor, plateau_patience=self.plateau_patience)


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


def run(store: Store, config: PrivacyConfig, *, show_progress: bool = False) -> dict:
    """Train the attacker(s) and return cMAP, per-attribute AP and the chance level (see module docs)."""
    watch = Stopwatch(device_of(config.device))
    device = watch.device
    data = StoreData(store, device, kinds=(config.kind,), labels_from=config.labels_from, needs_private_labels=True)
    names = attribute_names_of(data)
    train_videos = data.split_videos(config.train_split, config.kind)
    test_videos = data.split_videos(config.test_split, config.kind)
    attributes = data.videos.attributes.astype(np.int64)
    features = data.embeddings[config.kind]

    def make_evaluator(videos: np.ndarray):
        rows, owner = data.rows_of(videos, config.kind)
        rows = torch.from_numpy(rows).to(device)
        sample_targets = attributes[videos[owner]]

        def evaluate(model: nn.Module) -> dict:
            scores = predict(model, features, rows).float().cpu().numpy()
            ap = per_attribute_ap(scores, sample_targets)
            return {"cmap": mean_defined(ap), "per_attribute": ap}

        return evaluate

    test_rows, test_owner = data.rows_of(test_videos, config.kind)
    rates = check_test_positives(attributes[test_videos[test_owner]], names, store.path)
    def fit_rows(videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, owner = data.rows_of(videos, config.kind)
        return rows, videos[owner]

    setup = AttackSetup(
        features=features, targets=data.tensor(attributes), train_videos=train_videos, test_videos=test_videos,
        make_sampler=lambda videos: data.all_rows_sampler(videos, config.kind), make_evaluator=make_evaluator,
        fit_rows=fit_rows,
    )
    results, outcomes = {}, []
    for attacker in attackers_of(config.attacker):
        evaluation, attacker_outcomes = run_attacker(setup, attacker, config.train_settings(), config.val_fraction,
                                                     show_progress)
        results[attacker] = name_attributes(evaluation, names)
        outcomes.extend(attacker_outcomes)
    worst = worst_case([(a, [r["per_attribute"][n] for n in names]) for a, r in results.items()], names)
    primary = primary_attacker(config.attacker)
    headline = worst if len(results) > 1 else results[primary]
    return {
        "cmap": headline["cmap"],
        "per_attribute": headline["per_attribute"],
        "headline": "worst_case" if len(results) > 1 else primary,
        "attacker": primary,
        "worst_case": worst,
        "chance_cmap": mean_defined(rates),
        "positive_rate": named(rates, names),
        "kind": config.kind,
        "n_train_videos": int(len(train_videos)),
        "n_test_videos": int(len(test_videos)),
        "n_test_samples": int(len(test_rows)),
        "attackers": results,
        "timing": timing_block(watch.seconds(), outcomes),
    }


def attacker_label(name: str, result: dict) -> str:
    return f"{name} (test-selected)" if result.get("test_selected") else name


def selection_summary(result: dict, names: list[str]) -> str:
    """How an attacker's reported model was chosen, in a few characters (for the tables)."""
    if "selected_c" in result:
        return "C " + ", ".join(f"{result['selected_c'][n]:g}" for n in names)
    if "selected_k" in result:
        return "k " + ", ".join(f"{result['selected_k'][n]}/{result['selected_metric'][n][:3]}" for n in names)
    if "selected_seed" in result:
        return f"seed {result['selected_seed']} epoch {result['selected_epoch']}"
    return f"epoch {result.get('selected_epoch', '')}"


def print_attribute_table(title: str, metrics: dict, cmap_keys: tuple[str, ...] = ("cmap",)) -> None:
    """Attributes x attackers AP table, the worst case over the attackers, the cMAP row(s), the chance level."""
    attackers = metrics["attackers"]
    names = list(metrics["positive_rate"])
    worst = metrics["worst_case"]
    rows = [[name, *(attackers[a]["per_attribute"][name] for a in attackers), worst["per_attribute"][name],
             worst["source"][name] or "", metrics["positive_rate"][name]] for name in names]
    for key in cmap_keys:
        rows.append([f"[bold]{key}[/]", *(attackers[a][key] for a in attackers), worst["cmap"], "",
                     metrics["chance_cmap"]])
    rows.append(["selected", *(selection_summary(attackers[a], names) for a in attackers), "", "", ""])
    columns = ["attribute", *(f"AP {attacker_label(a, attackers[a])}" for a in attackers), "worst case", "from",
               "chance (positive rate)"]
    print_columns(title, columns, rows)


def register(app: typer.Typer) -> None:
    @app.command("privacy")
    def privacy_command(
        store: str = store_option(),
        out: Optional[Path] = out_option(),
        attacker: str = typer.Option("all", help="all (every attacker; cmap = the worst case), both (standard + "
                                     "authors), standard, authors, mlp, logreg or knn (see docs/evaluate.md)."),
        kind: str = typer.Option("static", help="static (static clips, VISPR-style) or clips (full clips)."),
        epochs: int = typer.Option(100, help="Training epochs."),
        lr: float = typer.Option(1e-3, help="AdamW learning rate."),
        batch_size: int = typer.Option(512, help="Samples per step."),
        val_fraction: float = typer.Option(0.1, help="Validation-selected attackers: share of training videos held "
                                                     "out for selection."),
        seed: int = seed_option(),
        device: str = device_option(),
        labels_from: Optional[str] = labels_from_option(),
        progress: bool = progress_option(),
    ) -> None:
        """Static private-attribute attack on static-clip embeddings: worst-case cMAP over the attackers
        (lower = more private)."""
        config = PrivacyConfig(attacker=attacker, kind=kind, epochs=epochs, lr=lr, batch_size=batch_size,
                               val_fraction=val_fraction, seed=seed, device=device, labels_from=labels_from)
        opened = open_store(store)
        metrics = run(opened, config, show_progress=progress)
        finish("privacy", config, metrics, opened, out,
               printer=lambda: print_attribute_table(f"privacy ({config.kind}): {opened.path}", metrics))
