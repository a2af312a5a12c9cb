"""The AD utility task: an MGFN head on a video's snippet sequence, its loss keeps anomalies detectable.

``anonymize train --ad-store X`` builds it through the "ad" factory registered here (importing this module
registers it). Per step it draws ``n`` normal and ``n`` anomalous training videos (MGFN: 16 + 16, fewer when
the store has fewer) and returns their raw clip sequences (B, L, D) with a mask, normal videos first.
:meth:`AdTask.loss` pools each *anonymized* sequence to 32 segments over its real length (a differentiable
mean), appends the magnitude channel and returns MGFN's loss, so gradients reach the AAM. The head is the one
``evaluate ad`` trains with its defaults (``ADConfig.head_setup``): MGFN's optimizer settings (lr 1e-3, weight
decay 5e-4) and the "small" preset below 100 training videos. Validation: frame-level ROC AUC on the
anonymized validation split; as in ``evaluate ad``, its videos without clips stay in the ground truth with
their frames scored as missed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from anonymize.utility import TaskBatch, register_task
from anonymize.utility_sequence import SequenceTask, padded_batch, validation_videos
from data_manifests.errors import FeatstoreError
from evaluate.ad_metrics import evaluate_videos, frame_ground_truth
from evaluate.heads.mgfn import MGFN, pool_segments, with_magnitude
from evaluate.protocols import _anomaly_detector as detector
from evaluate.protocols.ad import ADConfig
from featstore.store import Store


class AdTask(SequenceTask):
    name = "ad"
    prefers_temporal = False

    def __init__(self, store: Store, weight: float = 1.0, source: str = "memory", cache_chunks: int = 64,
                 split: str = "train", val_split: str = "test"):
        self.frames = detector.snippet_frames(store)
        self.videos = detector.load_ad_videos(store, split)
        labels = np.array([v.label for v in self.videos])
        self.normal, self.anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
        if len(self.normal) == 0 or len(self.anomalous) == 0:
            raise FeatstoreError(f"{store.path}: the AD task needs normal and anomalous {split!r} videos, got "
                                 f"{len(self.normal)} normal and {len(self.anomalous)} anomalous")
        _, head, recipe = ADConfig().head_setup(store.dim, len(self.videos))  # evaluate ad's head and recipe
        self.per_class = min(recipe.batch_per_class, len(self.normal), len(self.anomalous))
        super().__init__(store, weight, MGFN(head), source, cache_chunks, batch_size=2 * self.per_class,
                         head_lr=recipe.lr, head_weight_decay=recipe.weight_decay)
        self.offsets = store.clip_offsets()
        self.val_videos = validation_videos(lambda: detector.load_ad_videos(store, val_split))
        self.val_without_clips = detector.load_videos_without_clips(store, val_split)

    def n_train_items(self) -> int:
        return 2 * min(len(self.normal), len(self.anomalous))

    def _rows_of(self, video: detector.AdVideo) -> np.ndarray:
        return np.arange(self.offsets[video.index], self.offsets[video.index + 1])

    def epoch_batches(self, batch_size: int, generator: torch.Generator, context_window: int = 0) -> Iterator[TaskBatch]:
        n = max(1, min(batch_size // 2, len(self.normal), len(self.anomalous)))
        normal = self.normal[torch.randperm(len(self.normal), generator=generator).numpy()]
        anomalous = self.anomalous[torch.randperm(len(self.anomalous), generator=generator).numpy()]
        for first in range(0, (min(len(normal), len(anomalous)) // n) * n, n):
            picked = np.concatenate([normal[first:first + n], anomalous[first:first + n]])
            embeddings, mask = padded_batch([self.rows.take(self._rows_of(self.videos[i])) for i in picked.tolist()])
            yield TaskBatch(embeddings, torch.tensor(n), mask=mask, info={"videos": [self.videos[i].index for i in picked]})

    def loss(self, anonymized: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        n = int(batch.targets)
        lengths = batch.mask.sum(1).tolist()
        pooled = torch.stack([pool_segments(anonymized[row, :length], self.head.config.seg_length)
                              for row, length in enumerate(lengths)])
        inputs = with_magnitude(pooled)[:, None]  # one crop
        return self.head.loss(self.head.select(self.head(inputs), n))["loss"]

    @torch.no_grad()
    def validate(self, apply_aam, device: torch.device, context_window: int = 0) -> dict[str, float]:
        videos = self.val_videos
        truth = [frame_ground_truth(v.clip_times, v.intervals, self.frames) for v in videos]
        unscored_truth = detector.unscored_ground_truth(self.val_without_clips)
        every_video = truth + unscored_truth
        if not videos or not any(t.any() for t in every_video) or all(t.all() for t in every_video):
            return {}
        was_training = self.head.training
        scores = detector.score_videos(self.head, videos, device, transform=apply_aam)
        self.head.train(was_training)
        result = evaluate_videos([v.video_id for v in videos], scores, truth, self.frames, unscored_truth)
        return {"roc_auc": result["roc_auc"], "pr_auc": result["pr_auc"]}


register_task("ad", AdTask)
