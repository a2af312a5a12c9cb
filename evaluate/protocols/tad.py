"""Temporal action detection: a TriDet head trained on a store's feature sequences, THUMOS14-style mAP.

Data: every video of a split is one (T, C) sequence of its clip embeddings in time order, with its
annotated segments ``[start_s, end_s, label]``. Seconds <-> feature index follow the store's recorded
sampling: feature g sits at the centre of clip g's recorded [start, end) seconds, and positions in
between are linearly interpolated (``_action_detector.FeatureGrid``). For THUMOS-style stores (16-frame
clips every 4 frames at native fps) this is exactly ``(t * fps - 8) / 4`` and back ``(g * 4 + 8) / fps``;
the default non-overlapping clips work the same way with a stride of 16 frames. The sequences, the training
recipe and detection are in ``_action_detector`` (shared with the anonymizer's TAD task).

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from evaluate.heads import AUTO_PRESET, SMALL_DATA_VIDEOS, choose_preset
from evaluate.heads.tridet_config import (
    AUTO_MAX_SEQ_LEN_CAP,
    FULL_DATA_PRESET,
    PRESETS,
    TRAIN_PRESETS,
    TriDetConfig,
    TriDetTrainConfig,
    auto_max_seq_len,
)
from evaluate.options import (
    config_options,
    json_option,
    out_option,
    preset_help,
    progress_option,
    run_command,
    store_option,
    with_head_file,
)
from evaluate.settings import (
    check,
    check_choice,
    check_head_files,
    device_setting,
    head_checkpoint_setting,
    save_head_setting,
    seed_setting,
    setting,
)
from evaluate.tables import console, print_columns

if TYPE_CHECKING:
    from featstore.store import Store

PRESET_CHOICES = (AUTO_PRESET, *PRESETS)
TRAINED_HEAD_FILE = "tad-head.safetensors"


def _recipe_help(name: str) -> str:
    return preset_help(TriDetTrainConfig, TRAIN_PRESETS, name)


@dataclass
class TADConfig:
    preset: str = setting(AUTO_PRESET, "thumos14 (TriDet's THUMOS14 setup), small (narrow head for small stores) or "
                                       f"auto (small below {SMALL_DATA_VIDEOS} training videos).")
    # the recipe: None keeps the preset's
    epochs: Optional[int] = setting(None, f"Cosine epochs after warmup; {_recipe_help('epochs')}.")
    warmup_epochs: Optional[int] = setting(None, f"Linear warmup epochs; {_recipe_help('warmup_epochs')}.")
    lr: Optional[float] = setting(None, f"AdamW learning rate; {_recipe_help('lr')}.")
    batch_size: Optional[int] = setting(None, f"Videos per step; {_recipe_help('batch_size')}.")
    ema_decay: Optional[float] = setting(None, f"Model EMA decay; {_recipe_help('ema_decay')}.")
    max_seq_len: int = setting(0, "Training sequence length; 0 = the longest training video rounded up to the "
                                  "pyramid divisor (capped by the preset).")
    seed: int = seed_setting()
    train_split: str = "train"
    test_split: str = "test"
    head_checkpoint: Optional[str] = head_checkpoint_setting()
    save_head: Optional[str] = save_head_setting(TRAINED_HEAD_FILE)
    device: str = device_setting()

    def __post_init__(self):
        check_choice("preset", self.preset, PRESET_CHOICES)
        check(self.train_split != self.test_split, "train_split and test_split must differ")
        check(self.max_seq_len >= 0, f"max_seq_len must be >= 0 (0 = auto), got {self.max_seq_len}")
        check(self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        check(self.warmup_epochs is None or self.warmup_epochs >= 0, "warmup_epochs must be >= 0")
        check(self.lr is None or (self.lr > 0 and math.isfinite(self.lr)), f"lr must be positive, got {self.lr}")
        check(self.batch_size is None or self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.ema_decay is None or 0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        check_head_files(self)

    def head_setup(self, input_dim: int, n_classes: int,
                   lengths: list[int]) -> tuple[str, TriDetConfig, TriDetTrainConfig]:
        """The head to train on training sequences of ``lengths``: the preset (``auto``: by how many there are),
        its architecture and its recipe, with this config's overrides. ``evaluate tad`` and the anonymizer's
        TAD task both train this head."""
        preset = choose_preset(self.preset, len(lengths), FULL_DATA_PRESET)
        return preset, self.model_config(preset, input_dim, n_classes, lengths), self.train_config(preset)

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
            cap = AUTO_MAX_SEQ_LEN_CAP.get(preset, probe.max_seq_len)
            values["max_seq_len"] = auto_max_seq_len(lengths, cap, probe.max_div_factor)
        return TriDetConfig(input_dim=input_dim, num_classes=n_classes, **values)


def run(store: Store, config: TADConfig, *, show_progress: bool = False) -> dict:
    """Train (or load) the TriDet head and return mAP per tIoU and the average on the test split."""
    import time

    import numpy as np

    from evaluate.heads import load_checked_head, save_trained_head
    from evaluate.protocols import _action_detector as detector
    from evaluate.tad_metrics import TIOU_THRESHOLDS, evaluate_detections
    from evaluate.training import Stopwatch, device_of

    watch = Stopwatch(device_of(config.device))
    device = watch.device
    class_names = detector.tad_classes(store)
    test_videos = detector.load_tad_videos(store, config.test_split)
    clipless = detector.ClipLessVideos.of(store, config.test_split)
    gt = detector.ground_truth_of(test_videos, clipless)  # before training: a store without test annotations fails fast
    metrics: dict = {}
    if config.head_checkpoint is not None:
        def check_fits(model, meta: dict) -> None:
            detector.check_head_fits(model, meta, store, f"--head-checkpoint {config.head_checkpoint}")

        model, metrics["head"] = load_checked_head(config.head_checkpoint, "tridet", device, check_fits)
        train_lengths = np.zeros(0)
        train_seconds = 0.0
    else:
        train_videos = detector.load_tad_videos(store, config.train_split)
        preset, model_config, train_config = config.head_setup(store.dim, len(class_names),
                                                               [len(v.features) for v in train_videos])
        started = time.perf_counter()
        _, ema, losses = detector.train_tridet(train_videos, model_config, train_config, device, show_progress)
        train_seconds = time.perf_counter() - started
        model = ema.module
        metrics["head"] = {"preset": preset, "max_seq_len": model_config.max_seq_len,
                           "epochs": train_config.warmup_epochs + train_config.epochs,
                           "final_train_loss": losses[-1], "n_train_videos": len(train_videos)}
        train_lengths = np.concatenate([v.segments[:, 1] - v.segments[:, 0] for v in train_videos])
        save_trained_head(config.save_head, model, {"store": str(store.path), "class_names": class_names,
                                                    "train_config": train_config.__dict__}, metrics["head"])
    predictions = detector.detect_videos(model, test_videos, device)
    result = evaluate_detections(gt, predictions, TIOU_THRESHOLDS, drop_unknown_labels=True)
    agnostic = evaluate_detections(detector.as_one_class(gt), detector.merge_classes(predictions, model.config),
                                   TIOU_THRESHOLDS)
    random_segments = detector.chance_detections(test_videos, train_lengths, len(class_names), config.seed)
    chance = evaluate_detections(gt, random_segments, TIOU_THRESHOLDS, drop_unknown_labels=True)
    chance_agnostic = evaluate_detections(detector.as_one_class(gt), detector.as_one_class(random_segments),
                                          TIOU_THRESHOLDS)
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


def print_tad_table(title: str, metrics: dict) -> None:
    """mAP per tIoU, the average and the reference rows; the clip-less test videos, when there were any."""
    rows = [[f"tIoU {t}", value] for t, value in metrics["mAP"].items()]
    rows.append(["average", metrics["average_mAP"]])
    rows.append(["chance (random segments)", metrics["chance_average_mAP"]])
    rows.append(["class-agnostic (localization)", metrics["class_agnostic_average_mAP"]])
    rows.append(["class-agnostic chance", metrics["chance_class_agnostic_average_mAP"]])
    print_columns(title, ["", "mAP"], rows)
    if metrics["n_test_videos_without_clips"]:
        console.print(f"test videos without clips: {metrics['n_test_videos_without_clips']} (their "
                      f"{metrics['n_missed_segments_without_clips']} segments count as missed)")


def register(app: typer.Typer) -> None:
    @app.command("tad")
    @config_options(TADConfig, "preset", "epochs", "warmup_epochs", "lr", "batch_size", "ema_decay", "max_seq_len",
                    "head_checkpoint", "save_head", "seed", "device")
    def tad_command(*, store: str = store_option(), config: TADConfig, out: Optional[Path] = out_option(),
                    progress: bool = progress_option(), as_json: bool = json_option()) -> None:
        """Temporal action detection: TriDet head, mAP at tIoU 0.3:0.1:0.7 and their average."""
        out_dir, config = with_head_file(store, out, TRAINED_HEAD_FILE, config)
        run_command("tad", run, config, store, out_dir, show_progress=progress, as_json=as_json,
                    printer=lambda opened, metrics: print_tad_table(f"tad: {opened.path}", metrics))
