"""Temporal action detection on a store, shared by ``evaluate tad`` and the anonymizer's TAD task: a store's
videos as feature sequences on their clips' time grid, TriDet's training recipe, detection, and the chance and
class-agnostic references (the protocol is described in ``evaluate.protocols.tad``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from data_manifests.errors import FeatstoreError
from evaluate.data import videos_with_clips
from evaluate.heads.training import ModelEMA, parameter_groups, warmup_cosine
from evaluate.heads.tridet import WEIGHT_DECAYED, TadTarget, TriDet, pad_batch, random_crop, soft_nms
from evaluate.heads.tridet_config import TriDetConfig, TriDetTrainConfig
from evaluate.tad_metrics import Segments
from evaluate.training import progress_bar
from featstore.store import CLIP_TIMES, Store

CHANCE_SEGMENTS_PER_VIDEO = 100


# ---------------------------------------------------------------------------------------------- data
class FeatureGrid:
    """Seconds <-> feature index of one video, from the centres of its clips' recorded times.

    Uniformly spaced centres (every extraction with a fixed stride) give an exact affine map; otherwise
    the map is piecewise linear through the centres. Outside the first/last centre it extrapolates
    with the end steps, as the THUMOS formula does (so segments starting before the first clip centre
    get small negative indices, which TriDet expects).
    """

    def __init__(self, centres: np.ndarray, duration: float):
        centres = np.asarray(centres, dtype=np.float64)
        if len(centres) == 0:
            raise FeatstoreError("a video without clips has no feature grid")
        self.centres = centres
        self.duration = float(duration)
        steps = np.diff(centres)
        if len(centres) == 1:
            self.origin, self.step, self.uniform = float(centres[0]), 1.0, True
        else:
            if np.any(steps <= 0):
                raise FeatstoreError("clip times are not increasing within a video")
            self.origin, self.step = float(centres[0]), float(np.mean(steps))
            self.uniform = bool(np.allclose(steps, self.step, rtol=1e-6, atol=1e-9))

    @classmethod
    def of_clip_times(cls, times: np.ndarray, duration: float) -> FeatureGrid:
        return cls(0.5 * (times[:, 0] + times[:, 1]), duration)

    def to_index(self, seconds: np.ndarray) -> np.ndarray:
        seconds = np.asarray(seconds, dtype=np.float64)
        if self.uniform:
            return (seconds - self.origin) / self.step
        index = np.arange(len(self.centres), dtype=np.float64)
        inside = np.interp(seconds, self.centres, index)
        before = (seconds - self.centres[0]) / (self.centres[1] - self.centres[0])
        after = len(self.centres) - 1 + (seconds - self.centres[-1]) / (self.centres[-1] - self.centres[-2])
        return np.where(seconds < self.centres[0], before, np.where(seconds > self.centres[-1], after, inside))

    def to_seconds(self, index: np.ndarray) -> np.ndarray:
        """Feature index -> seconds, clipped to [0, duration] (TriDet's post-processing)."""
        index = np.asarray(index, dtype=np.float64)
        if self.uniform:
            seconds = self.origin + index * self.step
        else:
            positions = np.arange(len(self.centres), dtype=np.float64)
            inside = np.interp(index, positions, self.centres)
            before = self.centres[0] + index * (self.centres[1] - self.centres[0])
            after = self.centres[-1] + (index - (len(self.centres) - 1)) * (self.centres[-1] - self.centres[-2])
            seconds = np.where(index < 0, before, np.where(index > len(self.centres) - 1, after, inside))
        return np.clip(seconds, 0.0, self.duration)


@dataclass
class TadVideo:
    """One video of a TAD split: its feature sequence and annotations (seconds and feature grid)."""

    index: int  # row of the store's video table
    video_id: str
    features: np.ndarray  # (T, C), the stored dtype
    rows: np.ndarray  # (T,) clip rows in the store
    segments: np.ndarray  # (N, 2) seconds
    labels: np.ndarray  # (N,) int
    grid: FeatureGrid

    @property
    def grid_segments(self) -> np.ndarray:
        return self.grid.to_index(self.segments).astype(np.float32).reshape(-1, 2)


def tad_classes(store: Store) -> list[str]:
    names = store.class_names
    if not names:
        raise FeatstoreError(f"{store.path}: temporal action detection needs a store with class names "
                             f"(an untrimmed dataset with annotated segments, task 'tad')")
    return names


def _annotations(store: Store, table, video: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) seconds and (N,) labels of one video's annotated segments; an error on a label out of range."""
    segments = table.segments[video]
    labels = segments[:, 2].astype(np.int64) if len(segments) else np.zeros(0, np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise FeatstoreError(f"{store.path}: video {table.video_id[video]} has a segment label outside 0..{n_classes - 1}")
    return segments[:, :2].reshape(-1, 2), labels


def load_tad_videos(store: Store, split: str, with_features: bool = True) -> list[TadVideo]:
    """Every ``split`` video with clips, as sequences; an error when there are none."""
    table = store.videos()
    n_classes = len(tad_classes(store))
    offsets = store.clip_offsets()
    times = store.array(CLIP_TIMES)
    videos = videos_with_clips(store, split)
    embeddings = store.clip_embeddings
    out = []
    for v in videos.tolist():
        rows = np.arange(offsets[v], offsets[v + 1])
        segments, labels = _annotations(store, table, v, n_classes)
        features = embeddings[offsets[v]:offsets[v + 1]] if with_features else np.zeros((0, store.dim), np.float32)
        out.append(TadVideo(v, str(table.video_id[v]), features, rows, segments, labels,
                            FeatureGrid.of_clip_times(times[rows], float(table.duration[v]))))
    return out


@dataclass
class ClipLessVideos:
    """The ``split`` videos without clips (e.g. failed decoding): nothing can be detected in them, so their
    annotated segments stay in the ground truth and count as missed (leaving them out would raise recall)."""

    video_ids: list[str]
    segments: Segments  # their annotated segments (seconds), ground truth

    @classmethod
    def of(cls, store: Store, split: str) -> ClipLessVideos:
        table = store.videos()
        n_classes = len(tad_classes(store))
        videos = np.flatnonzero((np.asarray(table.split) == split) & (np.diff(store.clip_offsets()) == 0))
        ids, starts, ends, labels = [], [], [], []
        for v in videos.tolist():
            segments, video_labels = _annotations(store, table, v, n_classes)
            ids += [str(table.video_id[v])] * len(segments)
            starts.append(segments[:, 0])
            ends.append(segments[:, 1])
            labels.append(video_labels)
        return cls([str(table.video_id[v]) for v in videos], Segments(
            np.array(ids, dtype=str), np.concatenate(starts or [np.zeros(0)]), np.concatenate(ends or [np.zeros(0)]),
            np.concatenate(labels or [np.zeros(0, np.int64)])))


def ground_truth_of(videos: list[TadVideo], clipless: ClipLessVideos | None = None) -> Segments:
    """The annotated segments of ``videos`` and of the ``clipless`` videos (counted as missed)."""
    rows = [(v.video_id, s, e, lab) for v in videos for (s, e), lab in zip(v.segments, v.labels)]
    if clipless is not None:
        missed = clipless.segments
        rows += list(zip(missed.video.tolist(), missed.start, missed.end, missed.label))
    if not rows:
        raise FeatstoreError("the test split has no annotated segments to evaluate against")
    ids, starts, ends, labels = zip(*rows)
    return Segments(np.array(ids), np.array(starts), np.array(ends), np.array(labels))


def check_head_fits(model: TriDet, meta: dict, store: Store, source: str) -> None:
    """A saved head must read the store's features and predict its classes; a one-line error otherwise."""
    class_names = tad_classes(store)
    if model.config.input_dim != store.dim or model.config.num_classes != len(class_names):
        raise FeatstoreError(
            f"{source}: the head expects {model.config.input_dim}-d features and {model.config.num_classes} classes; "
            f"{store.path} has {store.dim}-d features and {len(class_names)} classes")
    trained_on = meta.get("class_names")
    if trained_on is not None and list(trained_on) != class_names:
        differ = next(i for i, (a, b) in enumerate(zip(trained_on, class_names)) if a != b)
        raise FeatstoreError(f"{source}: the head's class {differ} is {trained_on[differ]!r}, "
                             f"{store.path} calls it {class_names[differ]!r}")


# ---------------------------------------------------------------------------------------------- training
def loaded_clips(video: TadVideo, start: int, end: int) -> torch.Tensor:
    """Clips ``start:end`` of a video loaded with its features, as float32."""
    return torch.from_numpy(np.asarray(video.features[start:end], dtype=np.float32))


def train_tridet(videos: list[TadVideo], model_config: TriDetConfig, train_config: TriDetTrainConfig,
                 device: torch.device, show_progress: bool = False,
                 read: Callable[[TadVideo, int, int], torch.Tensor] = loaded_clips,
                 ) -> tuple[TriDet, ModelEMA, list[float]]:
    """TriDet's training recipe on ``videos``; returns the model, its EMA (to evaluate) and epoch losses.

    ``read(video, start, end)`` gives the float32 clips of a crop (default: from the loaded features; the
    anonymizer reads them from its row source). Seeded: crops come from a numpy generator, input noise and
    shuffles from torch generators, and drop path from the global torch RNG inside a forked RNG state,
    all derived from ``train_config.seed``.
    """
    rng = np.random.default_rng(train_config.seed)
    noise_generator = torch.Generator().manual_seed(train_config.seed + 1)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(train_config.seed)
        model = TriDet(model_config).to(device)
        ema = ModelEMA(model, train_config.ema_decay)
        optimizer = torch.optim.AdamW(parameter_groups(model, train_config.weight_decay, WEIGHT_DECAYED),
                                      lr=train_config.lr)
        batch = min(train_config.batch_size, len(videos))
        steps_per_epoch = len(videos) // batch  # drop the last incomplete batch, as TriDet's loader
        total_epochs = train_config.warmup_epochs + train_config.epochs
        total_steps = total_epochs * steps_per_epoch
        warmup_steps = train_config.warmup_epochs * steps_per_epoch
        step = 0
        with progress_bar(show_progress) as progress:
            task = progress.add_task("tad head", total=total_epochs, info="")
            for epoch in range(total_epochs):
                model.train()
                order = rng.permutation(len(videos))
                epoch_loss = 0.0
                for first in range(0, steps_per_epoch * batch, batch):
                    sequences, targets = [], []
                    for i in order[first:first + batch]:
                        video = videos[i]
                        start, end, segments, labels = random_crop(
                            len(video.rows), video.grid_segments, video.labels, model_config.max_seq_len,
                            train_config.crop_ratio, train_config.trunc_thresh, rng)
                        sequences.append(read(video, start, end))
                        targets.append(TadTarget(torch.from_numpy(segments).to(device), torch.from_numpy(labels).to(device)))
                    inputs, mask = pad_batch(sequences, model_config, training=True, generator=noise_generator)
                    for group in optimizer.param_groups:
                        group["lr"] = warmup_cosine(step, warmup_steps, total_steps, train_config.lr)
                    loss = model.loss(model(inputs.to(device), mask.to(device)), targets)["loss"]
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
                    optimizer.step()
                    ema.update(model)
                    step += 1
                    epoch_loss += float(loss.detach())
                losses.append(epoch_loss / max(1, steps_per_epoch))
                progress.update(task, advance=1, info=f"loss {losses[-1]:.4f}")
    return model, ema, losses


@torch.no_grad()
def detect_videos(model: TriDet, videos: list[TadVideo], device: torch.device,
                  transform=None) -> Segments:
    """Detections (seconds) of every video. ``transform(x (1, T, C), mask (1, T))`` maps the padded
    features first (e.g. an anonymizer in temporal mode); padded positions are zeroed after it.

    One video per forward, as TriDet's inference: the SGP blocks' GroupNorm and global mean see the
    padding, so padding a batch to its longest member would make a video's scores depend on its batch
    mates.
    """
    model.eval()
    ids, starts, ends, labels, scores = [], [], [], [], []
    for video in videos:
        sequence = torch.from_numpy(np.asarray(video.features, dtype=np.float32))
        inputs, mask = pad_batch([sequence], model.config, training=False)
        inputs, mask = inputs.to(device), mask.to(device)
        if transform is not None:
            inputs = transform(inputs, mask) * mask[..., None].to(inputs.dtype)
        found = model.detect(model(inputs, mask), 0)
        seconds = video.grid.to_seconds(found.segments.astype(np.float64)).reshape(-1, 2)
        ids.append(np.full(len(seconds), video.video_id, dtype=object))
        starts.append(seconds[:, 0])
        ends.append(seconds[:, 1])
        labels.append(found.labels)
        scores.append(found.scores.astype(np.float64))
    return Segments(np.concatenate(ids).astype(str) if ids else np.zeros(0, str), np.concatenate(starts),
                    np.concatenate(ends), np.concatenate(labels), np.concatenate(scores))


def chance_detections(videos: list[TadVideo], train_lengths: np.ndarray, n_classes: int, seed: int) -> Segments:
    """Random segments (lengths drawn from the training annotations), labels and scores, per test video."""
    rng = np.random.default_rng(seed)
    ids, starts, ends, labels, scores = [], [], [], [], []
    for video in videos:
        n = CHANCE_SEGMENTS_PER_VIDEO
        length = rng.choice(train_lengths, n) if len(train_lengths) else np.full(n, video.grid.duration / 10)
        start = rng.uniform(0, np.maximum(video.grid.duration - length, 1e-6))
        ids.append(np.full(n, video.video_id))
        starts.append(start)
        ends.append(np.minimum(start + length, video.grid.duration))
        labels.append(rng.integers(0, n_classes, n))
        scores.append(rng.random(n))
    return Segments(np.concatenate(ids), np.concatenate(starts), np.concatenate(ends), np.concatenate(labels),
                    np.concatenate(scores))


def as_one_class(segments: Segments) -> Segments:
    return Segments(segments.video, segments.start, segments.end, np.zeros(len(segments), np.int64), segments.score)


def merge_classes(predictions: Segments, config: TriDetConfig) -> Segments:
    """Class-agnostic detections: each video's detections of all classes through one soft-NMS (a
    localization diagnostic; IoU does not depend on the seconds <-> index scale)."""
    parts = []
    for video in np.unique(predictions.video):
        rows = np.flatnonzero(predictions.video == video)
        segments = np.stack([predictions.start[rows], predictions.end[rows]], axis=1)
        kept, scores = soft_nms(segments, predictions.score[rows], config.nms_sigma, config.min_score, config.max_seg_num)
        parts.append(Segments(predictions.video[rows[kept]], segments[kept, 0], segments[kept, 1],
                              np.zeros(len(kept), np.int64), scores.astype(np.float64)))
    return Segments.concatenate(parts) if parts else as_one_class(predictions)
