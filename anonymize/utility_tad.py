"""The TAD utility task: a TriDet head on a video's clip sequence, its loss keeps the AAM detection-friendly.

``anonymize train --tad-store X`` builds it through the "tad" factory registered here (importing this
module registers it). Per step it draws ``batch_size`` (TriDet: 2) training videos, crops each like
TriDet's training (random 90-100 % window keeping an action, or ``max_seq_len`` for long videos), and
returns the raw clip sequences (B, L, D) padded to the longest crop with their mask. The trainer applies
the AAM (per clip, or across the video's clips with ``--aam-mode temporal``: the task prefers it) and
calls :meth:`TadTask.loss`, which zeroes padded positions, pads to the head's ``max_seq_len`` and
returns TriDet's focal + DIoU loss: gradients flow through the sequence into the AAM. TriDet's input
noise is not added here (the anonymizer's output is the input).

Head size: the "small" preset below 100 training videos, else THUMOS14 (``evaluate.heads.tridet``);
``max_seq_len`` = the longest training sequence rounded up to the pyramid divisor (capped). Validation
reports the average mAP (tIoU 0.3:0.1:0.7) of the head on the anonymized validation split.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from anonymize.data import epoch_order, open_rows
from anonymize.utility import TaskBatch, UtilityTask, register_task
from evaluate.heads.tridet import PRESETS, TadTarget, TriDet, TriDetConfig, TriDetTrainConfig, random_crop
from evaluate.protocols.tad import (
    SMALL_DATA_VIDEOS,
    SMALL_MAX_SEQ_LEN_CAP,
    TadVideo,
    auto_max_seq_len,
    detect_videos,
    ground_truth_of,
    load_tad_videos,
    tad_classes,
)
from evaluate.tad_metrics import evaluate_detections
from featstore.errors import FeatstoreError
from featstore.store import Store


def tad_head_config(store: Store, lengths: list[int], n_train_videos: int) -> TriDetConfig:
    preset = "small" if n_train_videos < SMALL_DATA_VIDEOS else "thumos14"
    values = dict(PRESETS[preset])
    probe = TriDetConfig(input_dim=store.dim, num_classes=len(tad_classes(store)), **values)
    cap = probe.max_seq_len if preset == "thumos14" else SMALL_MAX_SEQ_LEN_CAP
    values["max_seq_len"] = auto_max_seq_len(lengths, cap, probe.max_div_factor)
    return TriDetConfig(input_dim=store.dim, num_classes=len(tad_classes(store)), **values)


class TadTask(UtilityTask):
    name = "tad"
    input_kind = "sequence"
    prefers_temporal = True

    def __init__(self, store: Store, weight: float = 1.0, source: str = "memory", cache_chunks: int = 64,
                 split: str = "train", val_split: str = "test"):
        self.videos = load_tad_videos(store, split, with_features=False)
        if not any(len(v.segments) for v in self.videos):
            raise FeatstoreError(f"{store.path}: the TAD task needs annotated segments in the {split!r} split")
        lengths = [len(v.rows) for v in self.videos]
        config = tad_head_config(store, lengths, len(self.videos))
        recipe = TriDetTrainConfig()  # TriDet's THUMOS14 recipe: batch 2, gradient clipping 1.0
        super().__init__(weight, TriDet(config), batch_size=recipe.batch_size, grad_clip=recipe.grad_clip)
        self.config = config
        self.crop_ratio = recipe.crop_ratio
        self.trunc_thresh = recipe.trunc_thresh
        self.rows = open_rows(store, "clips", source, cache_chunks)
        try:
            self.val_videos = load_tad_videos(store, val_split, with_features=False)
        except FeatstoreError:
            self.val_videos = []

    def n_train_items(self) -> int:
        return len(self.videos)

    def epoch_batches(self, batch_size: int, generator: torch.Generator, context_window: int = 0) -> Iterator[TaskBatch]:
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator)))
        for picked in epoch_order(len(self.videos), batch_size, generator):
            sequences, targets = [], []
            for i in picked.tolist():
                video = self.videos[i]
                start, end, segments, labels = random_crop(len(video.rows), video.grid_segments, video.labels,
                                                           self.config.max_seq_len, self.crop_ratio,
                                                           self.trunc_thresh, rng)
                sequences.append(self.rows.take(video.rows[start:end]))
                targets.append((torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32)).reshape(-1, 2),
                                torch.from_numpy(np.asarray(labels, dtype=np.int64))))
            longest = max(len(s) for s in sequences)
            embeddings = torch.zeros((len(sequences), longest, sequences[0].shape[1]))
            mask = torch.zeros((len(sequences), longest), dtype=torch.bool)
            for row, sequence in enumerate(sequences):
                embeddings[row, :len(sequence)] = sequence
                mask[row, :len(sequence)] = True
            yield TaskBatch(embeddings, targets, mask=mask)

    def loss(self, anonymized: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        mask = batch.mask
        x = anonymized * mask[..., None].to(anonymized.dtype)
        missing = self.config.max_seq_len - x.shape[1]
        if missing > 0:
            x = F.pad(x, (0, 0, 0, missing))
            mask = F.pad(mask, (0, missing), value=False)
        targets = [TadTarget(segments, labels) for segments, labels in batch.targets]
        return self.head.loss(self.head(x, mask), targets)["loss"]

    @torch.no_grad()
    def validate(self, apply_aam, device: torch.device, context_window: int = 0) -> dict[str, float]:
        videos = [v for v in self.val_videos if len(v.rows)]
        if not videos or not any(len(v.segments) for v in videos):
            return {}
        loaded = [TadVideo(v.index, v.video_id, self.rows.take(v.rows).numpy(), v.rows, v.segments, v.labels, v.grid)
                  for v in videos]
        was_training = self.head.training
        detections = detect_videos(self.head, loaded, device, transform=apply_aam)
        self.head.train(was_training)
        result = evaluate_detections(ground_truth_of(loaded), detections, drop_unknown_labels=True)
        return {"mAP": result.average_mAP}


register_task("tad", TadTask)
