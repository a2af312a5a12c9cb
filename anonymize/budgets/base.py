"""The interface between the trainer and a budget mode (the privacy term of Eq. 7), and what they share.

A budget mode is a ``BudgetMode`` subclass registered under its ``name`` (``anonymize.budgets.registry``).
The trainer builds it once from a ``BudgetContext`` (after the AAM and the task heads, so the global
torch random stream is the same as before the modes were classes) and then, per epoch and per step:

``on_epoch_start(epoch)``
    Before the epoch's random streams are seeded: re-initialize adversaries (``budget_restart_every``)
    and seed the mode's own per-epoch generators with ``generator_for(config.seed, epoch, stream)``.
``privacy_term(step) -> (term, adversary_inputs)``
    The signed privacy term that the anonymizer *minimizes* (the trainer adds ``w_B * term`` to the
    total), computed on the ``BudgetStep`` (static pairs: raw and, when the mode asks, AAM outputs;
    one full clip of each video of the budget batch when the mode asks), plus whatever the
    adversary's update needs (detached).
``utility_input(anonymized) -> Tensor``
    What the task heads read instead of the AAM output (identity, except the bottleneck's noise).
``adversary_step(adversary_inputs) -> float``
    ``budget_steps`` updates of the mode's adversary after the anonymizer's update; NaN without one.
``modules()`` / ``optimizers()``
    The mode's state for checkpoints (``--resume`` restores it bit-exactly).

Class attributes tell the trainer what to compute: ``static_inputs`` ("anonymized": the static pairs go
through the AAM; "raw": the mode reads only the raw static clips; "none") and ``uses_clips`` (draw one
full clip per video of the budget batch and run the AAM on it); ``supervised`` says the mode reads
attribute labels.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from anonymize.losses import nt_xent, nt_xent_to_uniform
from data_manifests.errors import FeatstoreError
from featstore.store import VIDEO_ATTRIBUTES, Store

if TYPE_CHECKING:
    from anonymize.config import TrainConfig

# Streams of the per-epoch random generators (any distinct constants).
STREAM_BUDGET, STREAM_AUGMENT, STREAM_TORCH, STREAM_RESTART, STREAM_INIT = 1, 2, 3, 4, 5
STREAM_BUDGET_CLIPS, STREAM_BOTTLENECK_NOISE = 6, 7
STREAM_TASK0 = 100

STATIC_INPUTS = ("anonymized", "raw", "none")


def derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def generator_for(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(*parts))


def train_split_std(store: Store, kind: str) -> torch.Tensor:
    """Per-dimension std (float32, CPU) of the train-split rows of ``kind`` ("clips" or "static"), in one
    streaming pass over the store's array."""
    offsets = store.clip_offsets() if kind == "clips" else store.static_offsets()
    array = store.clip_embeddings if kind == "clips" else store.static_embeddings
    videos = store.split_indices("train")
    train = np.zeros(array.shape[0], dtype=bool)
    for video in videos:
        train[offsets[video] : offsets[video + 1]] = True
    total = np.zeros(array.shape[1])
    squares = np.zeros(array.shape[1])
    for start, block in store.iter_blocks(array):
        picked = block[train[start : start + len(block)]].astype(np.float64)
        total += picked.sum(0)
        squares += (picked ** 2).sum(0)
    count = max(1, int(train.sum()))
    variance = np.maximum(squares / count - (total / count) ** 2, 0.0)
    return torch.from_numpy(np.sqrt(variance).astype(np.float32))


def group_means(values: torch.Tensor, index: torch.Tensor, groups: int) -> torch.Tensor:
    """(groups, D): the mean of the rows of each group (``index``: (n,) the group of each row, 0..groups-1; every
    group has a row)."""
    sums = values.new_zeros(groups, values.shape[-1]).index_add(0, index, values)
    return sums / torch.bincount(index, minlength=groups).to(values.dtype).unsqueeze(1)


def attribute_count(store: Store, mode: str) -> int:
    """The number of attribute labels of ``store``; an error for a supervised mode when there are none."""
    n_attributes = store.array(VIDEO_ATTRIBUTES).shape[1]
    if n_attributes == 0:
        raise FeatstoreError(f"{store.path} has no attribute labels: the {mode} budget needs them")
    return int(n_attributes)


@dataclass
class BudgetContext:
    """What a budget mode is built from."""

    dim: int
    device: torch.device
    config: TrainConfig
    store: Store
    epoch_videos: int  # the videos one epoch covers (the training videos with static clips)


@dataclass
class BudgetPair:
    """Two rows of each video of the budget batch (``kind`` "static": two static clips; "clips": two clips
    with ``budget_inputs="static+clips"``), each (B, D) (the centre row in the temporal mode)."""

    kind: str
    raw: tuple[torch.Tensor, torch.Tensor]  # after the latent augmentation of static clips
    anonymized: tuple[torch.Tensor, torch.Tensor] | None  # AAM outputs; None unless static_inputs == "anonymized"
    attributes: torch.Tensor  # (B, A) float, -1 unknown


@dataclass
class VideoClips:
    """One random full clip of each video of the budget batch that has clips (B' <= B rows), or the mean over each
    one's clips (``budget_clips="video-mean"``)."""

    raw: torch.Tensor  # (B', D)
    anonymized: torch.Tensor  # (B', D): the AAM output (with gradient)
    raw_static: torch.Tensor | None  # (B', D): the first raw static clip of the same videos; None when no
    #                                     mode or latent-consistency setting reads the static pairs
    attributes: torch.Tensor  # (B', A)
    labels: torch.Tensor  # (B',) the videos' utility labels (action class), -1 unknown
    aam_rows: int  # the clips the AAM processed for them (B' for one clip per video)


@dataclass
class BudgetStep:
    pairs: list[BudgetPair]  # empty when static_inputs == "none" and latent consistency skips static clips
    clips: VideoClips | None  # None unless uses_clips


class BudgetMode(ABC):
    """One budget mode. See the module docstring for the protocol the trainer follows."""

    name: ClassVar[str] = ""
    supervised: ClassVar[bool] = False
    static_inputs: ClassVar[str] = "anonymized"
    uses_clips: ClassVar[bool] = False

    def __init__(self, context: BudgetContext):
        self.context = context
        self.config = context.config
        self.device = context.device

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def on_epoch_start(self, epoch: int) -> None:
        """Called before the epoch's random streams are seeded."""

    @abstractmethod
    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        """(the term the anonymizer minimizes, detached inputs for ``adversary_step``)."""

    def utility_input(self, anonymized: torch.Tensor) -> torch.Tensor:
        return anonymized

    def adversary_step(self, adversary_inputs: list) -> float:
        return math.nan


class AdversaryBudget(BudgetMode):
    """A mode with a trained adversary (``adversary``): AdamW at ``budget_lr`` (default: the AAM's lr),
    ``budget_steps`` updates per anonymizer step on the detached inputs, re-initialized every
    ``budget_restart_every`` epochs (its Linear layers reset from the (seed, epoch) restart stream, and
    a fresh optimizer)."""

    component: ClassVar[str] = "adversary"  # its key in checkpoints and parameter counts

    def __init__(self, context: BudgetContext):
        super().__init__(context)
        self.adversary = self.build_adversary().to(self.device)
        self.optimizer = self._new_optimizer()

    @abstractmethod
    def build_adversary(self) -> nn.Module:
        """The adversary, built from the global torch random stream."""

    @abstractmethod
    def adversary_loss(self, adversary_inputs: list) -> torch.Tensor:
        """The loss the adversary minimizes on the detached inputs of one step."""

    def _new_optimizer(self) -> torch.optim.Optimizer:
        lr = self.config.budget_lr or self.config.scaled_lr
        return torch.optim.AdamW(self.adversary.parameters(), lr=lr, weight_decay=self.config.weight_decay)

    def modules(self) -> dict[str, nn.Module]:
        return {self.component: self.adversary}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {self.component: self.optimizer}

    def on_epoch_start(self, epoch: int) -> None:
        every = self.config.budget_restart_every
        if every > 0 and epoch > 0 and epoch % every == 0:
            self.restart(epoch)

    def restart(self, epoch: int) -> None:
        torch.manual_seed(derived_seed(self.config.seed, epoch, STREAM_RESTART))
        for module in self.adversary.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
        self.optimizer = self._new_optimizer()

    def adversary_step(self, adversary_inputs: list) -> float:
        if not adversary_inputs:
            return math.nan
        total = 0.0
        for _ in range(self.config.budget_steps):
            loss = self.adversary_loss(adversary_inputs)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
        return total / self.config.budget_steps


def ntxent_privacy(pairs: list[BudgetPair], project, config: TrainConfig, device: torch.device) -> torch.Tensor:
    """The NT-Xent budget over the step's pairs of AAM outputs, each passed through ``project``: minus
    NT-Xent (``maximize``, the paper) or the centred NT-Xent's squared distance from its uniform value
    (``to-uniform``); averaged over the pairs."""
    privacy = torch.zeros((), device=device)
    for pair in pairs:
        first, second = (project(output) for output in pair.anonymized)
        if config.ntxent_objective == "maximize":
            privacy = privacy - nt_xent(first, second, config.temperature)
        else:
            privacy = privacy + nt_xent_to_uniform(first, second, config.temperature)
    return privacy / len(pairs)
