"""The seeded head-training loop the protocols share, its epoch samplers, prediction and run timing.

An epoch is a shuffled index tensor cut into batches (no per-sample Python loops): the features stay a
tensor on the compute device and each batch is gathered from it (``StoreData`` in ``evaluate.data``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from data_manifests.errors import FeatstoreError
from evaluate.settings import TrainSettings
from evaluate.tables import err_console
from featstore.device import resolve_device

PREDICT_BATCH = 8192


# ---------------------------------------------------------------------------------------------- sampling
class EpochSampler(Protocol):
    """One epoch of training samples, already shuffled: (feature rows, target indices), CPU int64."""

    def __len__(self) -> int: ...

    def __call__(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class AllRows:
    """Every row once per epoch, in a fresh random order; ``targets[i]`` is row i's target index."""

    rows: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.rows)

    def __call__(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        order = torch.randperm(len(self.rows), generator=generator)
        return self.rows[order], self.targets[order]

    @classmethod
    def of(cls, rows: np.ndarray, targets: np.ndarray) -> AllRows:
        return cls(torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(targets, dtype=torch.int64))


@dataclass
class OneRowPerGroup:
    """One uniformly drawn row of each group per epoch (the "random clip of each video" convention).

    Group g owns rows ``starts[g] : starts[g] + counts[g]`` (counts > 0); its target index is ``targets[g]``.
    """

    starts: torch.Tensor
    counts: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.starts)

    def __call__(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = (torch.rand(len(self.starts), generator=generator, dtype=torch.float64) * self.counts).long()
        order = torch.randperm(len(self.starts), generator=generator)
        return (self.starts + offsets)[order], self.targets[order]

    @classmethod
    def of(cls, starts: np.ndarray, counts: np.ndarray, targets: np.ndarray) -> OneRowPerGroup:
        if (np.asarray(counts) <= 0).any():
            raise ValueError("every group needs at least one row")
        return cls(*(torch.as_tensor(a, dtype=torch.int64) for a in (starts, counts, targets)))


# ---------------------------------------------------------------------------------------------- training
@dataclass
class TrainOutcome:
    """What happened in the loop; ``model`` holds the selected epoch's weights after training."""

    losses: list[float]
    selected_epoch: int  # 1-based; the last epoch when nothing selects
    selection_scores: list[float] = field(default_factory=list)
    loop_seconds: float = 0.0  # the whole epoch loop, selection included
    selection_seconds: float = 0.0  # per-epoch model selection (evaluation) inside the loop
    batch_seconds: float = 0.0  # gathering batches (index + cast) inside the loop


def seeded_module(build: Callable[[], nn.Module], seed: int, device: torch.device) -> nn.Module:
    """Build a module with weights drawn from ``seed`` (on the CPU, so CPU and GPU runs start equal),
    without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
    return module.to(device)


def linear_head(dim: int, n_classes: int) -> Callable[[], nn.Module]:
    return lambda: nn.Linear(dim, n_classes)


def mlp_head(dim: int, n_outputs: int, hidden: int | None = None) -> Callable[[], nn.Module]:
    """The privacy protocols' attacker: Linear(d, h) - ReLU - Linear(h, A), h = ``hidden`` (d when not given)."""
    width = dim if hidden is None else hidden
    return lambda: nn.Sequential(nn.Linear(dim, width), nn.ReLU(), nn.Linear(width, n_outputs))


def progress_bar(enabled: bool, info_prefix: str = "") -> Progress:
    """A transient bar on stderr: description, bar, done/total, ``info_prefix`` + the task's ``info``, times."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn(info_prefix + "{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err_console, disable=not enabled, transient=True,
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_head(
    model: nn.Module,
    features: torch.Tensor,
    targets: torch.Tensor,
    sampler: EpochSampler,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    settings: TrainSettings,
    select: Callable[[nn.Module], float] | None = None,
    description: str = "train",
    show_progress: bool = False,
) -> TrainOutcome:
    """Train ``model`` on ``features[rows]`` -> ``targets[target_index]`` batches drawn by ``sampler``.

    ``select(model)`` (model in eval mode, no grad), when given, scores the model after every
    epoch; the weights of the best-scoring epoch (the earliest on ties; nan counts as worst) are
    loaded back at the end. Without it the last epoch is kept. Seeded: the same inputs and
    settings give the same weights.
    """
    device = features.device
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = None
    if settings.plateau_factor is not None:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=settings.plateau_factor, patience=settings.plateau_patience
        )
    outcome = TrainOutcome(losses=[], selected_epoch=settings.epochs)
    best_score, best_state = -math.inf, None
    batch_buffer = features.new_empty((settings.batch_size, *features.shape[1:]))
    started = time.perf_counter()
    with progress_bar(show_progress, "epochs ") as progress:
        task = progress.add_task(description, total=settings.epochs, info="")
        for epoch in range(1, settings.epochs + 1):
            model.train()
            rows, target_index = sampler(generator)
            rows, target_index = rows.to(device), target_index.to(device)
            loss_sum = torch.zeros((), device=device)
            for start in range(0, len(rows), settings.batch_size):
                gathered = time.perf_counter()
                batch_rows = rows[start : start + settings.batch_size]
                # index_select is ~2x faster than features[rows] on the CPU, into a reused buffer faster still;
                # the buffer is free again once the step is done (nothing keeps the previous batch)
                if len(batch_rows) == settings.batch_size:
                    inputs = torch.index_select(features, 0, batch_rows, out=batch_buffer).float()
                else:
                    inputs = torch.index_select(features, 0, batch_rows).float()
                batch_targets = targets[target_index[start : start + settings.batch_size]]
                outcome.batch_seconds += time.perf_counter() - gathered
                loss = loss_fn(model(inputs), batch_targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(batch_rows)
            epoch_loss = float(loss_sum) / max(1, len(rows))  # one device sync per epoch
            outcome.losses.append(epoch_loss)
            if scheduler is not None:
                scheduler.step(epoch_loss)
            info = f"loss {epoch_loss:.4f}"
            if select is not None:
                selecting = time.perf_counter()
                model.eval()
                with torch.no_grad():
                    score = float(select(model))
                outcome.selection_scores.append(score)
                if not math.isnan(score) and score > best_score:
                    best_score, outcome.selected_epoch = score, epoch
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                outcome.selection_seconds += time.perf_counter() - selecting
                info += f"  select {score:.4f} (best {best_score:.4f} @ {outcome.selected_epoch})"
            progress.update(task, advance=1, info=info)
    _synchronize(device)
    outcome.loop_seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return outcome


@torch.no_grad()
def predict(model: nn.Module, features: torch.Tensor, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Model outputs for ``features[rows]``, any shape of ``rows``: result shape rows.shape + (out,)."""
    rows = torch.as_tensor(rows, dtype=torch.int64, device=features.device)
    flat = rows.reshape(-1)
    model.eval()
    outputs = [model(features[flat[start : start + PREDICT_BATCH]].float()) for start in range(0, len(flat), PREDICT_BATCH)]
    if not outputs:
        return torch.zeros((*rows.shape, 0), device=features.device)
    out = torch.cat(outputs)
    return out.reshape(*rows.shape, out.shape[-1])


def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over the known targets only (-1 = unknown does not count)."""
    known = (targets >= 0).float()
    losses = nn.functional.binary_cross_entropy_with_logits(logits, targets.clamp_min(0).float(), reduction="none")
    return (losses * known).sum() / known.sum().clamp_min(1.0)


def carve_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of positions 0..n-1 into (train, validation); validation gets round(fraction*n), >= 1."""
    n_val = min(n - 1, max(1, int(round(fraction * n))))
    if n_val < 1:
        raise FeatstoreError(f"cannot carve a validation split out of {n} training videos")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# ---------------------------------------------------------------------------------------------- timing
def device_of(requested: str) -> torch.device:
    return resolve_device(requested)


class Stopwatch:
    """Wall time of a whole protocol run, for the timing block of the metrics."""

    def __init__(self, device: torch.device):
        self.device = device
        self.started = time.perf_counter()

    def seconds(self) -> float:
        _synchronize(self.device)
        return time.perf_counter() - self.started


def timing_block(total_seconds: float, outcomes: list[TrainOutcome]) -> dict:
    """Where the time went: inside the training loops (optimizer steps, batch gathering, per-epoch
    selection) versus outside them (loading, tensor building, final metrics)."""
    loop = sum(o.loop_seconds for o in outcomes)
    return {
        "total_s": total_seconds,
        "training_loop_s": loop,
        "batch_gather_s": sum(o.batch_seconds for o in outcomes),
        "selection_s": sum(o.selection_seconds for o in outcomes),
        "outside_loop_s": total_seconds - loop,
        "outside_loop_share": (total_seconds - loop) / total_seconds if total_seconds > 0 else math.nan,
    }
