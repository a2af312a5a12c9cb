"""Anomaly detection: an MGFN head trained weakly (video labels only) on a store, frame-level ROC/PR AUC.

Data: every video of a split is a (T, C) sequence of its clip (snippet) embeddings with its video label
(0 normal, 1 anomalous) and, for the test split, its annotated anomalous intervals. Stores have one
crop; the head takes a crop axis (MGFN's 10-crop features have 10), so single-crop stores use 1.

Train (MGFN): each step draws ``batch_per_class`` normal and as many anomalous training videos, pools
every video to 32 segments, appends the feature magnitude, and minimizes BCE on the top-3 magnitude
segments + the magnitude contrastive, sparsity and smoothness losses (``evaluate.heads.mgfn``);
Adam lr 1e-3, weight decay 5e-4. The final weights are evaluated (MGFN's paper figure picks the best
test epoch; we do not select on test).

Test: all snippets of each test video, crop-averaged scores, each repeated ``clip_len`` (16) times,
concatenated over the test videos; the ground truth marks the frames inside annotated intervals
(``evaluate.ad_metrics``); ROC AUC and PR AUC. Chance: ROC AUC 0.5, PR AUC about the anomalous rate.
A test video without clips (shorter than one clip, or its extraction failed) stays in the ground truth
with all its frames at the lowest score (its anomalous frames are missed); the metrics count them under
``test_videos_without_clips``. Only a video whose frame count the store does not know (a failed extraction
records none) cannot be counted in frames; it is reported as ``n_unknown_length``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from evaluate.ad_metrics import NO_EVIDENCE_SCORE, all_frames_ground_truth, evaluate_videos, frame_ground_truth
from evaluate.common import (
    Stopwatch,
    check,
    check_choice,
    default_out_dir,
    device_of,
    device_option,
    err_console,
    finish,
    open_store,
    out_option,
    progress_option,
    seed_option,
    store_option,
)
from evaluate.heads import load_head, save_head
from evaluate.heads.mgfn import LOSS_VARIANTS, MGFN, PRESETS, MGFNConfig, pool_segments, with_magnitude
from data_manifests.errors import FeatstoreError
from featstore.store import Store

PRESET_CHOICES = ("auto", *PRESETS)
SMALL_DATA_VIDEOS = 100
PRESET_STEPS = {"ucf-crime": 1000, "small": 300}


@dataclass
class AdVideo:
    index: int
    video_id: str
    features: np.ndarray  # (T, C) stored dtype
    label: int  # 0 normal, 1 anomalous
    clip_times: np.ndarray  # (T, 2) seconds
    intervals: np.ndarray  # (m, 2) anomalous seconds


@dataclass
class ClipLessVideo:
    """A split video without clips (shorter than one clip, or its extraction failed): the head cannot score it."""

    video_id: str
    n_frames: int  # 0 when unknown: a failed extraction records no frame count
    fps: float
    intervals: np.ndarray  # (m, 2) anomalous seconds

    @property
    def length_known(self) -> bool:
        return self.n_frames > 0 and self.fps > 0


def _sampling(store: Store) -> dict:
    return store.config.get("sampling", {}) or {}


def snippet_frames(store: Store) -> int:
    """Frames per snippet for the frame-level expansion: the store's clip length (16 by default)."""
    sampling = _sampling(store)
    clip_len = int(sampling.get("clip_len", 16))
    stride = sampling.get("stride") or clip_len
    if int(stride) != clip_len:
        raise FeatstoreError(f"{store.path}: anomaly detection expects non-overlapping snippets (stride = clip "
                             f"length), this store has clip length {clip_len} and stride {stride}")
    return clip_len


def load_ad_videos(store: Store, split: str) -> list[AdVideo]:
    header = store.dataset.get("header", {})
    if header.get("task") not in (None, "ad") and len(header.get("class_names", [])) != 2:
        raise FeatstoreError(f"{store.path}: anomaly detection needs a store of task 'ad' (normal/anomaly labels)")
    table = store.videos()
    offsets = store.clip_offsets()
    times = store.array("clips/times")
    videos = store.split_indices(split)
    videos = videos[np.diff(offsets)[videos] > 0]
    if len(videos) == 0:
        raise FeatstoreError(f"{store.path}: no {split!r} videos with clips")
    out = []
    for v in videos.tolist():
        label = int(table.label[v])
        if label not in (0, 1):
            raise FeatstoreError(f"{store.path}: video {table.video_id[v]} has label {label}; anomaly detection needs "
                                 f"0 (normal) or 1 (anomalous) for every video")
        rows = slice(int(offsets[v]), int(offsets[v + 1]))
        out.append(AdVideo(v, str(table.video_id[v]), store.clip_embeddings[rows], label, times[rows],
                           table.segments[v][:, :2].reshape(-1, 2)))
    return out


def load_videos_without_clips(store: Store, split: str) -> list[ClipLessVideo]:
    table = store.videos()
    videos = np.flatnonzero((table.split == split) & (np.diff(store.clip_offsets()) == 0))
    return [ClipLessVideo(str(table.video_id[v]), int(table.n_frames[v]), float(table.fps[v]),
                          table.segments[v][:, :2].reshape(-1, 2)) for v in videos.tolist()]


def unscored_ground_truth(videos: list[ClipLessVideo]) -> list[np.ndarray]:
    """Every frame's label of each clip-less video whose frame count is known (scored as missed)."""
    return [all_frames_ground_truth(v.n_frames, v.fps, v.intervals) for v in videos if v.length_known]


def without_clips_summary(videos: list[ClipLessVideo], truth: list[np.ndarray]) -> dict:
    return {"n_videos": len(videos), "n_frames": int(sum(len(t) for t in truth)),
            "n_anomalous_frames": int(sum(int(t.sum()) for t in truth)),
            "n_unknown_length": sum(not v.length_known for v in videos), "score": NO_EVIDENCE_SCORE,
            "video_ids": [v.video_id for v in videos]}


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=err_console, disable=not enabled, transient=True)


def training_input(features: list[torch.Tensor], segments: int, crops: int = 1) -> torch.Tensor:
    """(T_i, C) sequences -> (B, crops, segments, C + 1): pooled to ``segments`` and with magnitude."""
    pooled = torch.stack([pool_segments(f, segments) for f in features])
    return with_magnitude(pooled)[:, None].expand(-1, crops, -1, -1)


class BalancedBatches:
    """Endless (normal, anomalous) index batches of ``n`` each, reshuffled per pass, from one generator."""

    def __init__(self, normal: np.ndarray, anomalous: np.ndarray, n: int, generator: torch.Generator):
        self.pools = [normal, anomalous]
        self.n = n
        self.generator = generator
        self.queues: list[list[int]] = [[], []]

    def _take(self, which: int) -> list[int]:
        queue = self.queues[which]
        while len(queue) < self.n:
            order = torch.randperm(len(self.pools[which]), generator=self.generator).numpy()
            queue.extend(self.pools[which][order].tolist())
        taken, self.queues[which] = queue[:self.n], queue[self.n:]
        return taken

    def next(self) -> tuple[list[int], list[int]]:
        return self._take(0), self._take(1)


def train_mgfn(videos: list[AdVideo], config: MGFNConfig, steps: int, lr: float, weight_decay: float,
               batch_per_class: int, seed: int, device: torch.device, show_progress: bool = False) -> tuple[MGFN, list[float]]:
    labels = np.array([v.label for v in videos])
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if len(normal) == 0 or len(anomalous) == 0:
        raise FeatstoreError(f"MGFN training needs normal and anomalous training videos, got {len(normal)} normal "
                             f"and {len(anomalous)} anomalous")
    n = min(batch_per_class, len(normal), len(anomalous))
    generator = torch.Generator().manual_seed(seed)
    batches = BalancedBatches(normal, anomalous, n, generator)
    features = [torch.from_numpy(np.asarray(v.features, dtype=np.float32)) for v in videos]
    losses = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = MGFN(config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        model.train()
        with _progress(show_progress) as progress:
            task = progress.add_task("ad head", total=steps, info="")
            for _ in range(steps):
                picked_normal, picked_anomalous = batches.next()
                inputs = training_input([features[i] for i in picked_normal + picked_anomalous], config.seg_length)
                loss = model.loss(model.select(model(inputs.to(device)), n))["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
                progress.update(task, advance=1, info=f"loss {losses[-1]:.4f}")
    return model.eval(), losses


@torch.no_grad()
def score_videos(model: MGFN, videos: list[AdVideo], device: torch.device, transform=None) -> list[np.ndarray]:
    """Crop-averaged snippet scores of every video (all its snippets). ``transform(x (1, T, C), mask)``
    maps the features first (e.g. an anonymizer)."""
    model.eval()
    scores = []
    for video in videos:
        x = torch.from_numpy(np.asarray(video.features, dtype=np.float32)).to(device)
        if transform is not None:
            x = transform(x[None], torch.ones((1, len(x)), dtype=torch.bool, device=device))[0]
        scores.append(model.snippet_scores(with_magnitude(x)[None]).cpu().numpy())
    return scores


@dataclass
class ADConfig:
    preset: str = "auto"  # auto | ucf-crime | small
    steps: Optional[int] = None  # optimizer steps (preset: 1000 / 300)
    lr: float = 1e-3
    weight_decay: float = 5e-4
    batch_per_class: int = 16
    loss_variant: str = "mgfn-code"  # mgfn-code | heads | authors-copy (see evaluate.heads.mgfn)
    seed: int = 0
    train_split: str = "train"
    test_split: str = "test"
    head_checkpoint: Optional[str] = None
    save_head: Optional[str] = None
    device: str = "auto"

    def __post_init__(self):
        check_choice("preset", self.preset, PRESET_CHOICES)
        check_choice("loss_variant", self.loss_variant, LOSS_VARIANTS)
        check(self.steps is None or self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        check(self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(self.batch_per_class >= 1, f"batch_per_class must be >= 1, got {self.batch_per_class}")
        check(self.train_split != self.test_split, "train_split and test_split must differ")
        if self.head_checkpoint is not None:
            check(Path(self.head_checkpoint).is_file(), f"--head-checkpoint {self.head_checkpoint} does not exist")

    def resolved_preset(self, n_train_videos: int) -> str:
        if self.preset != "auto":
            return self.preset
        return "small" if n_train_videos < SMALL_DATA_VIDEOS else "ucf-crime"


def run(store: Store, config: ADConfig, *, show_progress: bool = False) -> dict:
    """Train (or load) the MGFN head and return frame-level ROC AUC / PR AUC on the test split."""
    watch = Stopwatch(device_of(config.device))
    device = watch.device
    frames = snippet_frames(store)
    test_videos = load_ad_videos(store, config.test_split)
    truth = [frame_ground_truth(v.clip_times, v.intervals, frames) for v in test_videos]
    without_clips = load_videos_without_clips(store, config.test_split)
    unscored_truth = unscored_ground_truth(without_clips)
    n_anomalous = sum(int(t.sum()) for t in truth + unscored_truth)
    if n_anomalous == 0 or n_anomalous == sum(len(t) for t in truth + unscored_truth):
        raise FeatstoreError(f"{store.path}: the {config.test_split!r} split needs both normal and anomalous frames "
                             f"(annotated intervals) for frame-level AUC")
    metrics: dict = {}
    train_seconds = 0.0
    if config.head_checkpoint is not None:
        model, meta = load_head(Path(config.head_checkpoint), device, expected="mgfn")
        if model.config.input_dim != store.dim:
            raise FeatstoreError(f"the head expects {model.config.input_dim}-d features; {store.path} has {store.dim}-d")
        metrics["head"] = {"checkpoint": config.head_checkpoint, "trained_on": meta.get("store")}
    else:
        train_videos = load_ad_videos(store, config.train_split)
        preset = config.resolved_preset(len(train_videos))
        head_config = MGFNConfig(input_dim=store.dim, loss_variant=config.loss_variant, **PRESETS[preset])
        steps = config.steps or PRESET_STEPS[preset]
        started = time.perf_counter()
        model, losses = train_mgfn(train_videos, head_config, steps, config.lr, config.weight_decay,
                                   config.batch_per_class, config.seed, device, show_progress)
        train_seconds = time.perf_counter() - started
        metrics["head"] = {"preset": preset, "steps": steps, "final_train_loss": float(np.mean(losses[-10:])),
                           "n_train_normal": sum(v.label == 0 for v in train_videos),
                           "n_train_anomalous": sum(v.label == 1 for v in train_videos)}
        if config.save_head is not None:
            save_head(Path(config.save_head), model, {"store": str(store.path)})
            metrics["head"]["saved"] = config.save_head
    scores = score_videos(model, test_videos, device)
    result = evaluate_videos([v.video_id for v in test_videos], scores, truth, frames, unscored_truth)
    metrics.update({
        "roc_auc": result["roc_auc"],
        "pr_auc": result["pr_auc"],
        "chance_roc_auc": 0.5,
        "chance_pr_auc": result["anomalous_frame_rate"],
        "frames_per_snippet": frames,
        "n_test_videos": len(test_videos) + len(without_clips),
        "n_test_frames": int(sum(len(t) for t in truth + unscored_truth)),
        "test_videos_without_clips": without_clips_summary(without_clips, unscored_truth),
        "timing": {"total_s": watch.seconds(), "train_s": train_seconds},
    })
    return metrics


def register(app: typer.Typer) -> None:
    @app.command("ad")
    def ad_command(
        store: Path = store_option(),
        out: Optional[Path] = out_option(),
        preset: str = typer.Option("auto", help="ucf-crime (MGFN's setup), small (narrow stages) or auto "
                                                "(small below 100 training videos)."),
        steps: Optional[int] = typer.Option(None, help="Optimizer steps (preset: 1000 / 300)."),
        lr: float = typer.Option(1e-3, help="Adam learning rate."),
        weight_decay: float = typer.Option(5e-4, help="Adam weight decay."),
        batch_per_class: int = typer.Option(16, help="Normal and anomalous videos per step (each)."),
        loss_variant: str = typer.Option("mgfn-code", help="mgfn-code (the released training script), heads "
                                                           "(sparsity/smoothness summed over the anomalous scores) or "
                                                           "authors-copy (the paper authors' MGFN copy: L2 norm and "
                                                           "differences of the anomalous scores)."),
        head_checkpoint: Optional[Path] = typer.Option(None, help="Evaluate this trained head instead of training one."),
        save_head: Optional[Path] = typer.Option(None, help="Where to save the trained head "
                                                            "(default: OUT/ad-head.safetensors)."),
        seed: int = seed_option(),
        device: str = device_option(),
        progress: bool = progress_option(),
    ) -> None:
        """Anomaly detection: MGFN head, frame-level ROC AUC and PR AUC."""
        out_dir = out if out is not None else default_out_dir(store)
        if save_head is None and head_checkpoint is None:
            save_head = out_dir / "ad-head.safetensors"
        config = ADConfig(preset=preset, steps=steps, lr=lr, weight_decay=weight_decay, batch_per_class=batch_per_class,
                          loss_variant=loss_variant, head_checkpoint=None if head_checkpoint is None else str(head_checkpoint),
                          save_head=None if save_head is None else str(save_head), seed=seed, device=device)
        opened = open_store(store)
        metrics = run(opened, config, show_progress=progress)
        missing = metrics["test_videos_without_clips"]
        if missing["n_videos"]:
            err_console.print(f"note: {missing['n_videos']} test videos have no clips; their {missing['n_frames']} "
                              f"frames are scored {missing['score']} (anomalous frames missed)"
                              + (f"; {missing['n_unknown_length']} of them have no known frame count and are left out"
                                 if missing["n_unknown_length"] else ""))
        finish("ad", config, metrics, opened, out_dir)
