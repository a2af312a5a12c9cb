"""The TAD utility task: a TriDet head on a video's clip sequence, its loss keeps the AAM detection-friendly.

``anonymize train --tad-store X`` builds it through the "tad" factory registered here (importing this
module registers it). Per step it draws ``batch_size`` (TriDet: 2) training videos, crops each like
TriDet's training (random 90-100 % window keeping an action, or ``max_seq_len`` for long videos), and
returns the raw clip sequences (B, L, D) padded to the longest crop with their mask. The trainer applies
the AAM (per clip, or across the video's clips with ``--aam-mode temporal``: the task prefers it) and
calls :meth:`TadTask.loss`, which zeroes padded positions, pads to the head's ``max_seq_len`` and
returns TriDet's focal + DIoU loss: gradients flow through the sequence into the AAM. TriDet's input
noise is not added here (the anonymizer's output is the input).

The head is the one ``evaluate tad`` trains with its defaults (``TADConfig.head_setup``): the "small"
preset below 100 training videos, else THUMOS14 (``evaluate.heads.tridet_config``), ``max_seq_len`` = the
longest training sequence rounded up to the pyramid divisor (capped). Before the anonymizer trains, the head is either
trained on the raw features with TriDet's own recipe (:meth:`TadTask.pretrain_head`: the preset's
``TriDetTrainConfig``, i.e. AdamW with weight decay on conv weights only, linear warmup then cosine,
gradient clipping 1.0, input noise, and the model EMA that TriDet evaluates becomes the head), or taken
from a head saved by ``evaluate tad --save-head`` (``anonymize train --tad-head``,
:meth:`TadTask.use_trained_head`), as the authors start from a trained TriDet. Validation reports the
average mAP (tIoU 0.3:0.1:0.7) of the head on the anonymized validation split, each video inferred
alone (as ``evaluate tad``); segments of validation videos without clips count as missed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from featstore.hashing import file_sha256
from anonymize.data import epoch_order
from anonymize.utility import TaskBatch, register_task
from anonymize.utility_sequence import SequenceTask, padded_batch, validation_videos
from data_manifests.errors import FeatstoreError
from evaluate.heads import load_head
from evaluate.heads.tridet import TadTarget, TriDet, random_crop
from evaluate.protocols import _action_detector as detector
from evaluate.protocols.tad import TADConfig
from evaluate.tad_metrics import evaluate_detections
from featstore.store import Store


# TriDet heads pretrained in this process, by everything their pretraining read: the rows of a recipe's sweep
# (ablation-arch: six AAMs) train on the same TAD store with the same seed, and would each repeat the same
# deterministic pretraining. Bounded: the oldest goes first.
PRETRAINED_HEADS: dict[str, tuple[dict[str, torch.Tensor], dict]] = {}
PRETRAINED_HEADS_KEPT = 4


class TadTask(SequenceTask):
    name = "tad"
    prefers_temporal = True

    def __init__(self, store: Store, weight: float = 1.0, source: str = "memory", cache_chunks: int = 64,
                 split: str = "train", val_split: str = "test"):
        self.store = store
        self.videos = detector.load_tad_videos(store, split, with_features=False)
        if not any(len(v.segments) for v in self.videos):
            raise FeatstoreError(f"{store.path}: the TAD task needs annotated segments in the {split!r} split")
        # evaluate tad's head and recipe for a store of this size
        self.preset, config, self.recipe = TADConfig().head_setup(store.dim, len(detector.tad_classes(store)),
                                                                  [len(v.rows) for v in self.videos])
        super().__init__(store, weight, TriDet(config), source, cache_chunks, batch_size=self.recipe.batch_size,
                         grad_clip=self.recipe.grad_clip)
        self.config = config
        self.saved_head: dict | None = None  # where the head came from, when use_trained_head gave it
        self.val_videos = validation_videos(lambda: detector.load_tad_videos(store, val_split,
                                                                             with_features=False))
        self.val_clipless = detector.ClipLessVideos.of(store, val_split)

    def use_trained_head(self, path: str) -> None:
        """Start from a head saved by ``evaluate tad`` (its architecture and weights); the head must read this
        store's features and predict its classes."""
        model, meta = load_head(Path(path), "cpu", expected="tridet")
        detector.check_head_fits(model, meta, self.store, f"--tad-head {path}")
        self.head = model.train()
        self.config = model.config
        self.saved_head = {"from": str(path), "sha256": file_sha256(Path(path)), "trained_on": meta.get("store")}

    def pretrain_head(self, device: torch.device, seed: int) -> dict:
        """TriDet's recipe on the raw training sequences (the head becomes the recipe's model EMA), unless the
        head came from ``use_trained_head``. A head this process already pretrained on the same sequences with the
        same architecture, recipe, seed and device is reused (``PRETRAINED_HEADS``)."""
        if self.saved_head is not None:
            return dict(self.saved_head)
        recipe = replace(self.recipe, seed=seed)
        key = self._pretraining_key(recipe, device)
        if key not in PRETRAINED_HEADS:
            _, ema, losses = detector.train_tridet(self.videos, self.config, recipe, device, read=self._crop_clips)
            state = {name: value.detach().cpu().clone() for name, value in ema.module.state_dict().items()}
            record = {"recipe": f"TriDet {self.preset}", "epochs": recipe.warmup_epochs + recipe.epochs,
                      "lr": recipe.lr, "final_train_loss": losses[-1]}
            PRETRAINED_HEADS[key] = (state, record)
            while len(PRETRAINED_HEADS) > PRETRAINED_HEADS_KEPT:
                PRETRAINED_HEADS.pop(next(iter(PRETRAINED_HEADS)))
        state, record = PRETRAINED_HEADS[key]
        self.head.load_state_dict(state)
        return dict(record)

    def _pretraining_key(self, recipe, device: torch.device) -> str:
        """Everything the pretraining reads: the training sequences' features and annotations, the head's
        architecture, the recipe (with its seed), the device and its thread count (which moves the last digits)."""
        digest = hashlib.sha256(repr((self.config, recipe, str(device), torch.get_num_threads())).encode())
        for video in self.videos:
            digest.update(repr((len(video.rows), len(video.labels))).encode())  # where one video ends
            digest.update(self._crop_clips(video, 0, len(video.rows)).numpy().tobytes())
            digest.update(np.ascontiguousarray(video.grid_segments).tobytes())
            digest.update(np.asarray(video.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def _crop_clips(self, video: detector.TadVideo, start: int, end: int) -> torch.Tensor:
        return self.rows.take(video.rows[start:end])

    def n_train_items(self) -> int:
        return len(self.videos)

    def epoch_batches(self, batch_size: int, generator: torch.Generator, context_window: int = 0) -> Iterator[TaskBatch]:
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator)))
        for picked in epoch_order(len(self.videos), batch_size, generator):
            sequences, targets = [], []
            for i in picked.tolist():
                video = self.videos[i]
                start, end, segments, labels = random_crop(len(video.rows), video.grid_segments, video.labels,
                                                           self.config.max_seq_len, self.recipe.crop_ratio,
                                                           self.recipe.trunc_thresh, rng)
                sequences.append(self._crop_clips(video, start, end))
                targets.append((torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32)).reshape(-1, 2),
                                torch.from_numpy(np.asarray(labels, dtype=np.int64))))
            embeddings, mask = padded_batch(sequences)
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
        videos = self.val_videos
        if not videos or not (any(len(v.segments) for v in videos) or len(self.val_clipless.segments)):
            return {}
        loaded = [detector.TadVideo(v.index, v.video_id, self.rows.take(v.rows).numpy(), v.rows, v.segments, v.labels,
                                    v.grid) for v in videos]
        was_training = self.head.training
        detections = detector.detect_videos(self.head, loaded, device, transform=apply_aam)
        self.head.train(was_training)
        result = evaluate_detections(detector.ground_truth_of(loaded, self.val_clipless), detections,
                                     drop_unknown_labels=True)
        return {"mAP": result.average_mAP}


register_task("tad", TadTask)
