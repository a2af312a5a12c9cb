"""The attribute attacker shared by the privacy protocols (``privacy``: static clips, ``vp``: clips).

An attacker is the 2-layer MLP Linear(d, d)-ReLU-Linear(d, A) trained with binary cross-entropy
(unknown targets left out), AdamW (no weight decay), learning rate reduced by the plateau factor when
the mean training loss stops improving. Two attackers, always reported by name:

- ``standard``: plain logits; a validation split (``val_fraction`` of the training *videos*, drawn
  with the seed) is held out of training and the epoch with the best validation cMAP is evaluated
  on the test split once.
- ``authors``: the authors' code: the MLP output is L2-normalized before the loss (and is the score),
  trained on all training videos, and the epoch with the best *test* cMAP is reported. Selecting on
  the test set is optimistic: it reports the maximum of ``epochs`` test measurements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from evaluate.common import (
    EpochSampler,
    TrainOutcome,
    TrainSettings,
    carve_validation,
    masked_bce,
    mlp_head,
    seeded_module,
    train_head,
)

ATTACKERS = ("standard", "authors")
ATTACKER_CHOICES = ("both", *ATTACKERS)
SELECTED_BY = {
    "standard": "best validation cMAP ({fraction:.0%} of the training videos, seed {seed})",
    "authors": "best test cMAP over epochs (optimistic: selected on the test set)",
}

Evaluation = dict  # {"cmap": float, "per_attribute": np.ndarray (A,), ...}


class L2NormalizedOutput(nn.Module):
    """The authors' attacker: the head's output vector scaled to unit L2 norm."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head(x), dim=-1)


@dataclass
class AttackSetup:
    """What a protocol hands the attacker engine (targets are indexed by store video index)."""

    features: torch.Tensor  # (N, D) rows on the compute device
    targets: torch.Tensor  # (V, A) int64 in {0, 1, -1}
    train_videos: np.ndarray
    test_videos: np.ndarray
    make_sampler: Callable[[np.ndarray], EpochSampler]  # training videos -> epoch sampler
    make_evaluator: Callable[[np.ndarray], Callable[[nn.Module], Evaluation]]  # videos -> model -> scores
    selection_key: str = "cmap"  # the evaluation entry the standard attacker selects on
    authors_selection_key: str = "cmap"  # ... and the authors' attacker (on the test set)


def run_attacker(setup: AttackSetup, attacker: str, settings: TrainSettings, val_fraction: float,
                 show_progress: bool = False) -> tuple[Evaluation, TrainOutcome]:
    """Train one attacker and return its test evaluation (of the selected epoch) and the loop record."""
    dim, n_attributes = setup.features.shape[1], setup.targets.shape[1]
    head = seeded_module(mlp_head(dim, n_attributes), settings.seed, setup.features.device)
    if attacker == "authors":
        model = L2NormalizedOutput(head)
        train_videos = setup.train_videos
        test_evaluator = setup.make_evaluator(setup.test_videos)

        def select(m: nn.Module) -> float:
            return test_evaluator(m)[setup.authors_selection_key]
    elif attacker == "standard":
        model = head
        fit_positions, val_positions = carve_validation(len(setup.train_videos), val_fraction, settings.seed)
        train_videos = setup.train_videos[fit_positions]
        val_evaluator = setup.make_evaluator(setup.train_videos[val_positions])
        test_evaluator = setup.make_evaluator(setup.test_videos)

        def select(m: nn.Module) -> float:
            return val_evaluator(m)[setup.selection_key]
    else:
        raise ValueError(f"unknown attacker {attacker!r}")
    outcome = train_head(model, setup.features, setup.targets, setup.make_sampler(train_videos), masked_bce, settings,
                         select=select, description=f"attacker {attacker}", show_progress=show_progress)
    with torch.no_grad():
        evaluation = test_evaluator(model)
    evaluation["selected_epoch"] = outcome.selected_epoch
    evaluation["selected_by"] = SELECTED_BY[attacker].format(fraction=val_fraction, seed=settings.seed)
    evaluation["n_fit_videos"] = int(len(train_videos))
    evaluation["final_train_loss"] = outcome.losses[-1]
    return evaluation, outcome


def attackers_of(choice: str) -> tuple[str, ...]:
    return ATTACKERS if choice == "both" else (choice,)


def primary_attacker(choice: str) -> str:
    """The attacker whose numbers are the protocol's headline: the one asked for; ``standard`` for both."""
    return "standard" if choice == "both" else choice


def named(values: np.ndarray, names: list[str]) -> dict[str, float]:
    return {name: float(value) for name, value in zip(names, values)}
