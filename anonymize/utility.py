"""Utility tasks: the pluggable terms of L_utility = sum_t w_t * L_t (paper Eq. 4).

A utility task is everything the anonymizer trainer needs to keep one downstream task working:

==================  =====================================================================================
``name``            unique key ("action", "tad", "ad"); also the head's key in checkpoints
``weight``          w_t inside L_utility (the trainer multiplies the sum by w_T)
``head``            an ``nn.Module`` trained jointly with the AAM. Keep every piece of state that must
                    survive a resume in its parameters or buffers (e.g. an EMA counter as a buffer): the
                    checkpoint saves ``head.state_dict()`` and nothing else of the task.
``input_kind``      ``"clip"``: one embedding per sample, ``batch.embeddings`` is (B, D).
                    ``"sequence"``: a video's clips in order, ``batch.embeddings`` is (B, T, D) with
                    ``batch.mask`` (B, T) bool (True = a real clip, False = padding).
``prefers_temporal`` True when the task consumes sequences and benefits from the AAM's temporal mode
                    (attention across a video's own neighbouring clips). Informational: the trainer
                    reports it, and ``anonymize train --aam-mode temporal`` turns the mode on.
``batch_size``      samples (videos) per step, or None to use the trainer's batch size
``head_lr``         None = the AAM's learning rate; ``head_weight_decay`` likewise (AD uses 1e-3 / 5e-4)
``grad_clip``       max gradient norm for this head's parameters (TriDet uses 1.0), None = off
==================  =====================================================================================

and three methods:

``epoch_batches(batch_size, generator, context_window) -> Iterator[TaskBatch]``
    One pass over the task's training data. Every random choice must come from ``generator`` (the
    trainer seeds it from (seed, epoch, task), which is what makes ``--resume`` exact). Embeddings are
    the *raw* (non-anonymized) float32 rows; the trainer moves the batch to the device and applies the
    AAM. ``context_window`` is the AAM's temporal window (0 in the default per-clip mode): a ``"clip"``
    task whose clips should see their neighbours returns (B, 2w+1, D) windows with a mask and
    ``centre=w`` (see ``ActionRecognitionTask``); a ``"sequence"`` task ignores it.

``loss(anonymized, batch) -> Tensor``
    The scalar task loss (to be minimized) on the AAM output, which has the shape of
    ``batch.embeddings``. Called with ``anonymized = batch.embeddings`` to pretrain the head on raw
    features ("each head is first trained on non-anonymized features").

``validate(apply_aam, device, context_window) -> dict[str, float]``  (optional)
    Held-out metrics for the progress log, e.g. ``{"top1": 0.8}``. ``apply_aam(embeddings, mask)``
    maps raw embeddings (on ``device``) to anonymized ones (identity when validating the raw head);
    ``context_window`` as in ``epoch_batches``.

and three optional ones for how the head starts and what the term fits:

``pretrain_head(device, seed) -> dict | None``
    Train the head on raw features with the task's own recipe (TAD: TriDet's schedule) and return a
    record for the run's history; the default (None) leaves it to the trainer's generic head init
    (``head_init_epochs`` of AdamW at ``head_init_lr`` on ``loss``). All randomness from ``seed``.

``use_trained_head(path)``
    Start from a saved head instead (``build_task(..., head=path)``; TAD: ``anonymize train --tad-head``);
    refuse one that does not fit the task's store. The default refuses every head.

``keep_raw_head()``
    ``anonymize train --utility-target raw-head``: called once the head has its raw-feature start (after its
    init, or loaded on a resume); from then on the head stays frozen and ``loss`` is the distance between its
    outputs on the anonymized and on the raw embeddings. ``keeps_raw_head`` says whether a task can; the
    default cannot (the trainer refuses the option before writing anything).

Where the batches come from: a task is built from a store by a factory registered under its name,
``register_task("tad", factory)``, where ``factory(store, weight, source, cache_chunks)`` returns the
task; ``source`` is "memory" (load the rows) or "stream" (read Zarr chunks through an LRU cache of
``cache_chunks`` chunks, visiting videos in block-shuffled order); ``anonymize.data.open_rows``
gives either. ``anonymize train --tad-store X`` looks up
the factory named "tad" (``anonymize.utility_tasks.build_task``, which imports every task module) and calls it
with ``Store.open(X)``. This module ships "action"; ``utility_tad`` and ``utility_ad`` ship "tad" and "ad".

The generic head pretraining and the joint training loop live in ``anonymize.train``; a task defines
data, head and loss (and, optionally, its head's own pretraining recipe).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from anonymize.data import buffer_chunks, epoch_order, open_rows, random_row_in, storage_groups, window_rows
from data_manifests.errors import FeatstoreError
from featstore.store import Store

INPUT_KINDS = ("clip", "sequence")


def _move(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {key: _move(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(item, device) for item in value)
    return value


@dataclass
class TaskBatch:
    """One step of a task's data: raw embeddings, their mask, and whatever the loss needs as targets."""

    embeddings: torch.Tensor  # (B, D) | (B, T, D) float32, raw (non-anonymized)
    targets: Any  # a tensor, or a dict / list of tensors (moved to the device with the batch)
    mask: torch.Tensor | None = None  # (B, T) bool for windows and sequences
    centre: int | None = None  # for a "clip" task given windows: the index of the sampled clip
    info: dict = field(default_factory=dict)  # task-private extras that stay on the CPU

    def to(self, device: torch.device) -> TaskBatch:
        mask = None if self.mask is None else self.mask.to(device, non_blocking=True)
        return TaskBatch(self.embeddings.to(device, non_blocking=True), _move(self.targets, device), mask,
                         self.centre, self.info)

    def clips(self, values: torch.Tensor) -> torch.Tensor:
        """(B, D): the sampled clip of each sample, whether ``values`` are clips or centred windows."""
        return values if self.centre is None else values[:, self.centre]


class UtilityTask(ABC):
    """A downstream task whose loss the anonymizer must keep low. See the module docstring."""

    name: str = ""
    input_kind: str = "clip"
    prefers_temporal: bool = False
    keeps_raw_head: bool = False

    def __init__(self, weight: float, head: nn.Module, batch_size: int | None = None, head_lr: float | None = None,
                 head_weight_decay: float | None = None, grad_clip: float | None = None):
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}")
        if weight < 0:
            raise FeatstoreError(f"task {self.name!r}: weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.head = head
        self.batch_size = batch_size
        self.head_lr = head_lr
        self.head_weight_decay = head_weight_decay
        self.grad_clip = grad_clip

    @abstractmethod
    def n_train_items(self) -> int:
        """Samples (videos) in one pass over the training data."""

    @abstractmethod
    def epoch_batches(self, batch_size: int, generator: torch.Generator, context_window: int = 0) -> Iterator[TaskBatch]:
        """One pass over the training data, in random order drawn from ``generator``."""

    @abstractmethod
    def loss(self, anonymized: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """The scalar loss of the head on (anonymized or raw) embeddings shaped like ``batch.embeddings``."""

    def validate(self, apply_aam: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
                 device: torch.device, context_window: int = 0) -> dict[str, float]:
        """Held-out metrics for the training log; none by default."""
        return {}

    def pretrain_head(self, device: torch.device, seed: int) -> dict | None:
        """Train the head with the task's own recipe (a history record), or None: the trainer's generic init."""
        return None

    def use_trained_head(self, path: str) -> None:
        """Start from the head saved at ``path``; only tasks that know a saved-head format accept one."""
        raise FeatstoreError(f"task {self.name!r} cannot start from a saved head ({path})")

    def keep_raw_head(self) -> None:
        """Freeze the (raw-trained) head; ``loss`` then keeps its outputs. Only tasks with ``keeps_raw_head``."""
        raise FeatstoreError(f"task {self.name!r} cannot keep a raw head's outputs (utility target raw-head)")


TaskFactory = Callable[[Store, float, str, int], UtilityTask]
# name -> factory, filled by register_task as each task's module is imported (anonymize.utility_tasks builds from it)
TASK_FACTORIES: dict[str, TaskFactory] = {}


def register_task(name: str, factory: TaskFactory) -> None:
    """Make a task buildable by name (``anonymize train`` uses "action", "tad", "ad")."""
    TASK_FACTORIES[name] = factory


# ---------------------------------------------------------------------------------------------- action


class ActionRecognitionTask(UtilityTask):
    """Action recognition: a linear head with cross-entropy on one random clip per video per step.

    Validation follows the evaluation convention: softmax averaged over 5 evenly spaced clips per test
    video, top-1. In the temporal AAM mode each sampled clip arrives with its +-w neighbouring clips of
    the same video and the loss reads the centre output. After ``keep_raw_head`` the head is frozen and the
    loss is the MSE between its logits on the anonymized and on the raw clip: the AAM must keep the linear
    read-out that generalized on raw features, instead of refitting the labels of the training videos.
    """

    name = "action"
    input_kind = "clip"
    keeps_raw_head = True

    def __init__(self, store: Store, weight: float = 1.0, source: str = "memory", cache_chunks: int = 64,
                 split: str = "train", val_split: str = "test"):
        table = store.videos()
        n_classes = len(store.class_names)
        if n_classes < 2:
            raise FeatstoreError(f"{store.path}: action recognition needs a store with class names (task action); "
                                 f"this one has {n_classes} classes")
        offsets = store.clip_offsets()
        counts = np.diff(offsets)
        videos = store.split_indices(split)
        videos = videos[(counts[videos] > 0) & (table.label[videos] >= 0)]
        if len(videos) == 0:
            raise FeatstoreError(f"{store.path}: no labelled {split} videos with clips for action recognition")
        super().__init__(weight, nn.Linear(store.dim, n_classes))
        self.store = store
        self.n_classes = n_classes
        self.offsets = offsets
        self.labels = torch.from_numpy(table.label.astype(np.int64))
        self.videos = videos
        self.rows = open_rows(store, "clips", source, cache_chunks)
        val = store.split_indices(val_split)
        self.val_videos = val[(counts[val] > 0) & (table.label[val] >= 0)]
        self.raw_head_kept = False

    def n_train_items(self) -> int:
        return len(self.videos)

    def epoch_batches(self, batch_size: int, generator: torch.Generator, context_window: int = 0) -> Iterator[TaskBatch]:
        groups = storage_groups(self.rows, self.offsets, self.videos)
        for picked in epoch_order(len(self.videos), batch_size, generator, groups, buffer_chunks(self.rows)):
            videos = self.videos[picked]
            rows = random_row_in(self.offsets, videos, generator)
            labels = self.labels[videos]
            info = {"videos": videos, "rows": rows}
            if context_window <= 0:
                yield TaskBatch(self.rows.take(rows), labels, info=info)
                continue
            window, valid = window_rows(self.offsets, videos, rows, context_window)
            values = self.rows.take(window.reshape(-1)).reshape(*window.shape, -1)
            yield TaskBatch(values, labels, mask=torch.from_numpy(valid), centre=context_window,
                            info=dict(info, window_rows=window))

    def keep_raw_head(self) -> None:
        self.head.requires_grad_(False)
        self.raw_head_kept = True

    def loss(self, anonymized: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        logits = self.head(batch.clips(anonymized))
        if not self.raw_head_kept:
            return nn.functional.cross_entropy(logits, batch.targets)
        with torch.no_grad():
            raw_logits = self.head(batch.clips(batch.embeddings))
        return nn.functional.mse_loss(logits, raw_logits)

    @torch.no_grad()
    def validate(self, apply_aam, device: torch.device, context_window: int = 0) -> dict[str, float]:
        if len(self.val_videos) == 0:
            return {}
        rows = self.store.evenly_spaced_clip_rows(5)[self.val_videos]  # (V, 5)
        flat = rows.reshape(-1)
        owners = np.repeat(self.val_videos, rows.shape[1])
        if context_window > 0:
            window, valid = window_rows(self.offsets, owners, flat, context_window)
            values = self.rows.take(window.reshape(-1)).reshape(*window.shape, -1).to(device)
            out = apply_aam(values, torch.from_numpy(valid).to(device))[:, context_window]
        else:
            out = apply_aam(self.rows.take(flat).to(device), None)
        was_training = self.head.training
        self.head.eval()
        probs = self.head(out).softmax(-1).reshape(len(self.val_videos), rows.shape[1], -1).mean(1)
        self.head.train(was_training)
        correct = (probs.argmax(-1).cpu() == self.labels[self.val_videos]).float().mean()
        return {"top1": float(correct)}


register_task("action", ActionRecognitionTask)
