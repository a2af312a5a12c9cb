"""The linear action classifier shared by ``ar`` and ``bias``: training on clip embeddings and the
5-clip video-level prediction (softmax probabilities averaged over evenly spaced clips)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from data_manifests.errors import FeatstoreError
from evaluate.data import StoreData
from evaluate.metrics import video_probabilities
from evaluate.settings import LinearProbeSettings
from evaluate.training import TrainOutcome, linear_head, predict, seeded_module, train_head


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
