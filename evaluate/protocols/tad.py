"""Temporal action detection: a TriDet head trained on a store's feature sequences, THUMOS14-style mAP.

Data: every video of a split is one (T, C) sequence of its clip embeddings in time order, with its
annotated segments ``[start_s, end_s, label]``. Seconds <-> feature index follow the store's recorded
sampling: feature g sits at the centre of clip g's recorded [start, end) seconds, and positions in
between are linearly interpolated (:class:`FeatureGrid`). For THUMOS-style stores (16-frame clips every
4 frames at native fps) this is exactly ``(t * fps - 8) / 4`` and back ``(g * 4 + 8) / fps``; the default
non-overlapping clips work the same way with a stride of 16 frames.

Train: TriDet (``evaluate.heads.tridet``) on the train split, evaluated through its model EMA.
Test: detections on the test split, one video per forward as TriDet infers (its GroupNorm and global mean
see the padding, so a padded batch would tie a video's scores to its batch mates), soft-NMS, then mAP at
tIoU 0.3:0.1:0.7 and the average, with the ActionFormer/TriDet evaluator (``evaluate.tad_metrics``).
Test videos without clips (e.g. failed decoding) keep their annotated segments in the ground truth, where
they count as missed; the result reports how many such videos and segments there were. Predicted labels
absent from the test ground truth are dropped before scoring (they cannot be scored; the reference would
file them under another class's index). Two reference numbers come with it: ``chance_average_mAP``
scores random segments (lengths drawn from the training annotations) the same way, and
``class_agnostic_average_mAP`` scores the detections with every class merged (one soft-NMS per video):
localization quality on its own, with ``chance_class_agnostic_average_mAP`` (the random segments,
classes merged) as its reference.

``head_checkpoint`` skips training and evaluates a saved head (``evaluate.heads.save_head``: safetensors +
JSON; the CLI saves the trained head to ``<out>/tad-head.safetensors`` unless told otherwise); a head whose
input size, class count or class names differ from the store's is refused. ``anonymize train --tad-head``
starts the anonymizer's TAD task from such a head.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from evaluate.common import (
    Stopwatch,
    check,
    check_choice,
    console,
    default_out_dir,
    device_of,
    device_option,
    err_console,
    finish,
    open_store,
    out_option,
    print_columns,
    progress_option,
    seed_option,
    store_option,
)
from evaluate.heads import load_head, save_head
from evaluate.heads.tridet import (
    PRESETS,
    TRAIN_PRESETS,
    ModelEMA,
    TadTarget,
    TriDet,
    TriDetConfig,
    TriDetTrainConfig,
    pad_batch,
    parameter_groups,
    random_crop,
    soft_nms,
    warmup_cosine,
)
from evaluate.tad_metrics import TIOU_THRESHOLDS, Segments, evaluate_detections
from data_manifests.errors import FeatstoreError
from featstore.store import Store

PRESET_CHOICES = ("auto", *PRESETS)
SMALL_DATA_VIDEOS = 100  # "auto" picks the small preset below this many training videos
SMALL_MAX_SEQ_LEN_CAP = 512
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
    header = store.dataset.get("header", {})
    names = list(header.get("class_names", []))
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
    times = store.array("clips/times")
    videos = store.split_indices(split)
    videos = videos[np.diff(offsets)[videos] > 0]
    if len(videos) == 0:
        raise FeatstoreError(f"{store.path}: no {split!r} videos with clips")
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


def auto_max_seq_len(lengths: list[int], preset_len: int, div: int) -> int:
    """The longest training sequence rounded up to the pyramid divisor, capped at the preset's length."""
    longest = max(lengths)
    return min(preset_len, max(div, (longest + div - 1) // div * div))


# ---------------------------------------------------------------------------------------------- training
def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=err_console, disable=not enabled, transient=True)


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
        optimizer = torch.optim.AdamW(parameter_groups(model, train_config.weight_decay), lr=train_config.lr)
        batch = min(train_config.batch_size, len(videos))
        steps_per_epoch = len(videos) // batch  # drop the last incomplete batch, as TriDet's loader
        total_epochs = train_config.warmup_epochs + train_config.epochs
        total_steps = total_epochs * steps_per_epoch
        warmup_steps = train_config.warmup_epochs * steps_per_epoch
        step = 0
        with _progress(show_progress) as progress:
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


# ---------------------------------------------------------------------------------------------- protocol
@dataclass
class TADConfig:
    preset: str = "auto"  # auto | thumos14 | small (architecture and optimization)
    epochs: Optional[int] = None  # cosine epochs after warmup [preset]
    warmup_epochs: Optional[int] = None
    lr: Optional[float] = None
    batch_size: Optional[int] = None
    ema_decay: Optional[float] = None
    max_seq_len: int = 0  # 0 = auto: longest training sequence rounded up (capped by the preset)
    seed: int = 0
    train_split: str = "train"
    test_split: str = "test"
    head_checkpoint: Optional[str] = None  # evaluate this head instead of training one
    save_head: Optional[str] = None  # where to write the trained head (.safetensors)
    device: str = "auto"

    def __post_init__(self):
        check_choice("preset", self.preset, PRESET_CHOICES)
        check(self.train_split != self.test_split, "train_split and test_split must differ")
        check(self.max_seq_len >= 0, f"max_seq_len must be >= 0 (0 = auto), got {self.max_seq_len}")
        check(self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        check(self.warmup_epochs is None or self.warmup_epochs >= 0, "warmup_epochs must be >= 0")
        check(self.lr is None or (self.lr > 0 and math.isfinite(self.lr)), f"lr must be positive, got {self.lr}")
        check(self.batch_size is None or self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.ema_decay is None or 0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.head_checkpoint is not None:
            check(Path(self.head_checkpoint).is_file(), f"--head-checkpoint {self.head_checkpoint} does not exist")

    def resolved_preset(self, n_train_videos: int) -> str:
        if self.preset != "auto":
            return self.preset
        return "small" if n_train_videos < SMALL_DATA_VIDEOS else "thumos14"

    def train_config(self, preset: str) -> TriDetTrainConfig:
        values = dict(TRAIN_PRESETS[preset])
        for name in ("epochs", "warmup_epochs", "lr", "batch_size", "ema_decay"):
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        return TriDetTrainConfig(seed=self.seed, **values)

    def model_config(self, preset: str, input_dim: int, n_classes: int, lengths: list[int]) -> TriDetConfig:
        values = dict(PRESETS[preset])
        probe = TriDetConfig(input_dim=input_dim, num_classes=n_classes, **values)
        if self.max_seq_len:
            values["max_seq_len"] = self.max_seq_len
        else:
            cap = probe.max_seq_len if preset == "thumos14" else SMALL_MAX_SEQ_LEN_CAP
            values["max_seq_len"] = auto_max_seq_len(lengths, cap, probe.max_div_factor)
        return TriDetConfig(input_dim=input_dim, num_classes=n_classes, **values)


def run(store: Store, config: TADConfig, *, show_progress: bool = False) -> dict:
    """Train (or load) the TriDet head and return mAP per tIoU and the average on the test split."""
    watch = Stopwatch(device_of(config.device))
    device = watch.device
    class_names = tad_classes(store)
    test_videos = load_tad_videos(store, config.test_split)
    clipless = ClipLessVideos.of(store, config.test_split)
    gt = ground_truth_of(test_videos, clipless)  # before training: a store without test annotations fails fast
    metrics: dict = {}
    if config.head_checkpoint is not None:
        model, meta = load_head(Path(config.head_checkpoint), device, expected="tridet")
        check_head_fits(model, meta, store, f"--head-checkpoint {config.head_checkpoint}")
        metrics["head"] = {"checkpoint": config.head_checkpoint, "trained_on": meta.get("store")}
        train_lengths = np.zeros(0)
        train_seconds = 0.0
    else:
        train_videos = load_tad_videos(store, config.train_split)
        preset = config.resolved_preset(len(train_videos))
        model_config = config.model_config(preset, store.dim, len(class_names), [len(v.features) for v in train_videos])
        train_config = config.train_config(preset)
        started = time.perf_counter()
        _, ema, losses = train_tridet(train_videos, model_config, train_config, device, show_progress)
        train_seconds = time.perf_counter() - started
        model = ema.module
        metrics["head"] = {"preset": preset, "max_seq_len": model_config.max_seq_len,
                           "epochs": train_config.warmup_epochs + train_config.epochs,
                           "final_train_loss": losses[-1], "n_train_videos": len(train_videos)}
        train_lengths = np.concatenate([v.segments[:, 1] - v.segments[:, 0] for v in train_videos])
        if config.save_head is not None:
            save_head(Path(config.save_head), model, {"store": str(store.path), "class_names": class_names,
                                                      "train_config": train_config.__dict__})
            metrics["head"]["saved"] = config.save_head
    predictions = detect_videos(model, test_videos, device)
    result = evaluate_detections(gt, predictions, TIOU_THRESHOLDS, drop_unknown_labels=True)
    agnostic = evaluate_detections(as_one_class(gt), merge_classes(predictions, model.config), TIOU_THRESHOLDS)
    random_segments = chance_detections(test_videos, train_lengths, len(class_names), config.seed)
    chance = evaluate_detections(gt, random_segments, TIOU_THRESHOLDS, drop_unknown_labels=True)
    chance_agnostic = evaluate_detections(as_one_class(gt), as_one_class(random_segments), TIOU_THRESHOLDS)
    metrics.update({
        "mAP": {f"{t:.1f}": float(m) for t, m in zip(result.tiou_thresholds, result.mAP)},
        "average_mAP": result.average_mAP,
        "chance_average_mAP": chance.average_mAP,
        "class_agnostic_average_mAP": agnostic.average_mAP,
        "chance_class_agnostic_average_mAP": chance_agnostic.average_mAP,
        "n_test_videos": len(test_videos),
        "n_test_segments": len(gt),
        "n_test_videos_without_clips": len(clipless.video_ids),
        "n_missed_segments_without_clips": len(clipless.segments),
        "n_detections": len(predictions),
        "ap_per_class": {class_names[int(c)]: float(result.ap[:, i].mean()) for i, c in enumerate(result.class_labels)},
        "timing": {"total_s": watch.seconds(), "train_s": train_seconds},
    })
    return metrics


def register(app: typer.Typer) -> None:
    @app.command("tad")
    def tad_command(
        store: Path = store_option(),
        out: Optional[Path] = out_option(),
        preset: str = typer.Option("auto", help="thumos14 (TriDet's THUMOS14 setup), small (narrow head for small "
                                                "stores) or auto (small below 100 training videos)."),
        epochs: Optional[int] = typer.Option(None, help="Cosine epochs after warmup (preset: 20 / 40)."),
        warmup_epochs: Optional[int] = typer.Option(None, help="Linear warmup epochs (preset: 20 / 5)."),
        lr: Optional[float] = typer.Option(None, help="AdamW learning rate (preset: 1e-4 / 1e-3)."),
        batch_size: Optional[int] = typer.Option(None, help="Videos per step (preset: 2)."),
        ema_decay: Optional[float] = typer.Option(None, help="Model EMA decay (preset: 0.999 / 0.99)."),
        max_seq_len: int = typer.Option(0, help="Training sequence length; 0 = the longest training video rounded "
                                                "up to the pyramid divisor (capped by the preset)."),
        head_checkpoint: Optional[Path] = typer.Option(None, help="Evaluate this trained head (.safetensors) "
                                                                  "instead of training one."),
        save_head: Optional[Path] = typer.Option(None, help="Where to save the trained head "
                                                            "(default: OUT/tad-head.safetensors)."),
        seed: int = seed_option(),
        device: str = device_option(),
        progress: bool = progress_option(),
    ) -> None:
        """Temporal action detection: TriDet head, mAP at tIoU 0.3:0.1:0.7 and their average."""
        out_dir = out if out is not None else default_out_dir(store)
        if save_head is None and head_checkpoint is None:
            save_head = out_dir / "tad-head.safetensors"
        config = TADConfig(preset=preset, epochs=epochs, warmup_epochs=warmup_epochs, lr=lr, batch_size=batch_size,
                           ema_decay=ema_decay, max_seq_len=max_seq_len,
                           head_checkpoint=None if head_checkpoint is None else str(head_checkpoint),
                           save_head=None if save_head is None else str(save_head), seed=seed, device=device)
        opened = open_store(store)
        metrics = run(opened, config, show_progress=progress)

        def printer() -> None:
            rows = [[f"tIoU {t}", value] for t, value in metrics["mAP"].items()]
            rows.append(["average", metrics["average_mAP"]])
            rows.append(["chance (random segments)", metrics["chance_average_mAP"]])
            rows.append(["class-agnostic (localization)", metrics["class_agnostic_average_mAP"]])
            rows.append(["class-agnostic chance", metrics["chance_class_agnostic_average_mAP"]])
            print_columns(f"tad: {opened.path}", ["", "mAP"], rows)
            if metrics["n_test_videos_without_clips"]:
                console.print(f"test videos without clips: {metrics['n_test_videos_without_clips']} (their "
                              f"{metrics['n_missed_segments_without_clips']} segments count as missed)")

        finish("tad", config, metrics, opened, out_dir, printer=printer)
