"""Anomaly detection on a store, shared by ``evaluate ad`` and the anonymizer's AD task: a store's videos as
snippet sequences with their labels and anomalous intervals, MGFN's training loop and the snippet scores (the
protocol is described in ``evaluate.protocols.ad``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from data_manifests.errors import FeatstoreError
from evaluate.ad_metrics import NO_EVIDENCE_SCORE, all_frames_ground_truth
from evaluate.data import videos_with_clips
from evaluate.heads.mgfn import MGFN, pool_segments, with_magnitude
from evaluate.heads.mgfn_config import MGFNConfig
from evaluate.training import progress_bar
from featstore.store import CLIP_TIMES, Store


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


def snippet_frames(store: Store) -> int:
    """Frames per snippet for the frame-level expansion: the store's clip length (16 by default)."""
    sampling = store.sampling
    clip_len = int(sampling.get("clip_len", 16))
    stride = sampling.get("stride") or clip_len
    if int(stride) != clip_len:
        raise FeatstoreError(f"{store.path}: anomaly detection expects non-overlapping snippets (stride = clip "
                             f"length), this store has clip length {clip_len} and stride {stride}")
    return clip_len


def load_ad_videos(store: Store, split: str) -> list[AdVideo]:
    if store.task not in (None, "ad") and len(store.class_names) != 2:
        raise FeatstoreError(f"{store.path}: anomaly detection needs a store of task 'ad' (normal/anomaly labels)")
    table = store.videos()
    offsets = store.clip_offsets()
    times = store.array(CLIP_TIMES)
    videos = videos_with_clips(store, split)
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


def mean_clip(videos: list[AdVideo]) -> np.ndarray:
    """The mean clip embedding (float64) over every clip of the videos."""
    return np.concatenate([np.asarray(v.features, dtype=np.float64) for v in videos]).mean(axis=0)


def centred(videos: list[AdVideo], mean: np.ndarray) -> list[AdVideo]:
    """The videos with ``mean`` subtracted from every clip embedding (float32, what the head reads)."""
    return [replace(v, features=(np.asarray(v.features, dtype=np.float64) - mean).astype(np.float32)) for v in videos]


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
        with progress_bar(show_progress) as progress:
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
