"""The linear action classifier shared by ``ar`` and ``bias``: training on clip embeddings and the
5-clip video-level prediction (softmax probabilities averaged over evenly spaced clips)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from evaluate.common import StoreData, TrainOutcome, TrainSettings, check, check_choice, check_training, linear_head, predict, seeded_module, train_head
from evaluate.metrics import video_probabilities
from data_manifests.errors import FeatstoreError

CLIP_SAMPLING = ("random", "all")


@dataclass
class LinearProbeSettings:
    """The official linear-probe preset: AdamW lr 1e-3, batch 1024, 250 epochs (authors' code)."""

    epochs: int = 250
    lr: float = 1e-3
    batch_size: int = 1024
    weight_decay: float = 0.01  # AdamW's default; the authors' code does not change it
    clip_sampling: str = "random"  # random: one random clip of each video per epoch (paper); all: every clip
    eval_clips: int = 5
    seed: int = 0

    def validate(self) -> None:
        check_training(self.epochs, self.lr, self.batch_size, self.weight_decay)
        check_choice("clip_sampling", self.clip_sampling, CLIP_SAMPLING)
        check(self.eval_clips >= 1, f"eval_clips must be >= 1, got {self.eval_clips}")

    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                             weight_decay=self.weight_decay, seed=self.seed)


def labelled_videos(data: StoreData, split: str) -> np.ndarray:
    """Videos of ``split`` with clips and a label; an error when there are none."""
    videos = data.split_videos(split, "clips")
    videos = videos[data.videos.label[videos] >= 0]
    if len(videos) == 0:
        raise FeatstoreError(f"{data.store.path}: no labelled {split!r} videos with clips")
    return videos


def n_classes_of(data: StoreData) -> int:
    n_classes = len(data.class_names)
    if n_classes < 2:
        raise FeatstoreError(f"{data.store.path}: dataset {data.header.get('name')!r} has {n_classes} classes; "
                             "a classifier needs at least 2")
    if data.videos.label.max(initial=-1) >= n_classes:
        raise FeatstoreError(f"{data.store.path}: a label is >= the number of class names ({n_classes})")
    return n_classes


def train_linear_classifier(data: StoreData, train_videos: np.ndarray, settings: LinearProbeSettings,
                            show_progress: bool = False, description: str = "linear probe") -> tuple[nn.Module, TrainOutcome]:
    n_classes = n_classes_of(data)
    features = data.embeddings["clips"]
    model = seeded_module(linear_head(features.shape[1], n_classes), settings.seed, data.device)
    if settings.clip_sampling == "random":
        sampler = data.random_row_sampler(train_videos, "clips")
    else:
        sampler = data.all_rows_sampler(train_videos, "clips")
    labels = data.tensor(data.videos.label.astype(np.int64))
    outcome = train_head(model, features, labels, sampler, nn.functional.cross_entropy, settings.train_settings(),
                         description=description, show_progress=show_progress)
    return model, outcome


def video_class_probabilities(model: nn.Module, data: StoreData, videos: np.ndarray, k: int) -> np.ndarray:
    """(len(videos), C): softmax probabilities averaged over each video's k evenly spaced clips."""
    rows = data.evenly_spaced_rows(videos, k)
    with torch.no_grad():
        logits = predict(model, data.embeddings["clips"], rows).float().cpu().numpy()
    return video_probabilities(logits)
