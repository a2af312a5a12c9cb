"""Anomaly detection: an MGFN head trained weakly (video labels only) on a store, frame-level ROC/PR AUC.

Data: every video of a split is a (T, C) sequence of its clip (snippet) embeddings with its video label
(0 normal, 1 anomalous) and, for the test split, its annotated anomalous intervals. Stores have one
crop; the head takes a crop axis (MGFN's 10-crop features have 10), so single-crop stores use 1.

Train (MGFN): each step draws ``batch_per_class`` normal and as many anomalous training videos, pools every
video to 32 segments, appends the feature magnitude, and minimizes BCE on the top-3 magnitude segments + the
magnitude contrastive, sparsity and smoothness losses (``evaluate.heads.mgfn``); MGFN's recipe
(``evaluate.heads.mgfn_config.MGFNTrainConfig``: Adam lr 1e-3, weight decay 5e-4). The final weights are
evaluated (MGFN's paper figure picks the best test epoch; we do not select on test).

``--centre train-mean`` (not MGFN's recipe; a second reading next to it): every clip embedding, train and test,
minus the train split's mean clip embedding before the head sees it, so the magnitudes MGFN selects on are taken
about the store's own centre instead of the encoder's (or an anonymizer's) origin. What it changes is measured in
docs/anonymize.md ("AD about the store's own centre"). A saved head records the centring it was trained with and
is evaluated only with the same.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from data_manifests.errors import FeatstoreError
from evaluate.heads import AUTO_PRESET, SMALL_DATA_VIDEOS, choose_preset
from evaluate.heads.mgfn_config import (
    FULL_DATA_PRESET,
    LOSS_VARIANTS,
    PRESETS,
    TRAIN_PRESETS,
    MGFNConfig,
    MGFNTrainConfig,
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
from evaluate.tables import err_console, print_metrics

if TYPE_CHECKING:
    from featstore.store import Store

PRESET_CHOICES = (AUTO_PRESET, *PRESETS)
CENTRE_CHOICES = ("none", "train-mean")
TRAINED_HEAD_FILE = "ad-head.safetensors"


@dataclass
class ADConfig:
    preset: str = setting(AUTO_PRESET, "ucf-crime (MGFN's setup), small (narrow stages) or auto (small below "
                                       f"{SMALL_DATA_VIDEOS} training videos).")
    steps: Optional[int] = setting(None, f"Optimizer steps; {preset_help(MGFNTrainConfig, TRAIN_PRESETS, 'steps')}.")
    lr: float = setting(MGFNTrainConfig.lr, "Adam learning rate.")
    weight_decay: float = setting(MGFNTrainConfig.weight_decay, "Adam weight decay.")
    batch_per_class: int = setting(MGFNTrainConfig.batch_per_class, "Normal and anomalous videos per step (each).")
    loss_variant: str = setting(MGFNConfig.loss_variant, "mgfn-code (the released training script), heads "
                                                         "(sparsity/smoothness summed over the anomalous scores) or "
                                                         "authors-copy (the paper authors' MGFN copy: L2 norm and "
                                                         "differences of the anomalous scores).")
    centre: str = setting(CENTRE_CHOICES[0], "none (MGFN's recipe: the features as stored) or train-mean (every clip "
                                             "minus the train split's mean clip, for training and test alike).")
    seed: int = seed_setting()
    seeds: int = setting(1, "Heads trained, with seeds seed, seed + 1, ...: ROC / PR AUC are their mean, each "
                            "seed's in per_seed (a few test videos make one head's AUC swing).")
    train_split: str = "train"
    test_split: str = "test"
    head_checkpoint: Optional[str] = head_checkpoint_setting()
    save_head: Optional[str] = save_head_setting(TRAINED_HEAD_FILE)
    device: str = device_setting()

    def __post_init__(self):
        check_choice("preset", self.preset, PRESET_CHOICES)
        check_choice("loss_variant", self.loss_variant, LOSS_VARIANTS)
        check_choice("centre", self.centre, CENTRE_CHOICES)
        check(self.steps is None or self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        check(self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(self.batch_per_class >= 1, f"batch_per_class must be >= 1, got {self.batch_per_class}")
        check(self.train_split != self.test_split, "train_split and test_split must differ")
        check(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        check(self.seeds == 1 or self.head_checkpoint is None,
              "--seeds trains several heads; --head-checkpoint evaluates one: give one of them")
        check_head_files(self)

    def head_setup(self, input_dim: int, n_train_videos: int) -> tuple[str, MGFNConfig, MGFNTrainConfig]:
        """The head to train on ``n_train_videos`` videos: the preset (``auto``: by how many), its architecture and
        its recipe, with this config's overrides. ``evaluate ad`` and the anonymizer's AD task both train this head."""
        preset = choose_preset(self.preset, n_train_videos, FULL_DATA_PRESET)
        recipe = {**TRAIN_PRESETS[preset], "lr": self.lr, "weight_decay": self.weight_decay,
                  "batch_per_class": self.batch_per_class}
        if self.steps is not None:
            recipe["steps"] = self.steps
        head = MGFNConfig(input_dim=input_dim, loss_variant=self.loss_variant, **PRESETS[preset])
        return preset, head, MGFNTrainConfig(**recipe)


def run(store: Store, config: ADConfig, *, show_progress: bool = False) -> dict:
    """Train (or load) the MGFN head and return frame-level ROC AUC / PR AUC on the test split."""
    import time

    import numpy as np

    from evaluate.ad_metrics import evaluate_videos, frame_ground_truth
    from evaluate.heads import load_checked_head, save_trained_head
    from evaluate.protocols import _anomaly_detector as detector
    from evaluate.training import Stopwatch, device_of

    watch = Stopwatch(device_of(config.device))
    device = watch.device
    frames = detector.snippet_frames(store)
    test_videos = detector.load_ad_videos(store, config.test_split)
    truth = [frame_ground_truth(v.clip_times, v.intervals, frames) for v in test_videos]
    without_clips = detector.load_videos_without_clips(store, config.test_split)
    unscored_truth = detector.unscored_ground_truth(without_clips)
    n_anomalous = sum(int(t.sum()) for t in truth + unscored_truth)
    if n_anomalous == 0 or n_anomalous == sum(len(t) for t in truth + unscored_truth):
        raise FeatstoreError(f"{store.path}: the {config.test_split!r} split needs both normal and anomalous frames "
                             f"(annotated intervals) for frame-level AUC")
    metrics: dict = {}
    train_seconds = 0.0
    train_videos = (detector.load_ad_videos(store, config.train_split)
                    if config.head_checkpoint is None or config.centre != "none" else [])
    if config.centre == "train-mean":
        if not train_videos:
            raise FeatstoreError(f"{store.path}: --centre train-mean needs clips in the {config.train_split!r} split "
                                 "for their mean")
        mean = detector.mean_clip(train_videos)
        train_videos, test_videos = detector.centred(train_videos, mean), detector.centred(test_videos, mean)
    if config.head_checkpoint is not None:
        def check_fits(model, meta: dict) -> None:
            if model.config.input_dim != store.dim:
                raise FeatstoreError(f"the head expects {model.config.input_dim}-d features; {store.path} has "
                                     f"{store.dim}-d")
            trained_centre = meta.get("centre", "none")
            if trained_centre != config.centre:
                raise FeatstoreError(f"the head was trained with --centre {trained_centre}; evaluate it with the same "
                                     f"(got --centre {config.centre})")

        model, metrics["head"] = load_checked_head(config.head_checkpoint, "mgfn", device, check_fits)
        models = [(config.seed, model)]
    else:
        preset, head_config, recipe = config.head_setup(store.dim, len(train_videos))
        models, first_losses = [], None
        for seed in range(config.seed, config.seed + config.seeds):
            started = time.perf_counter()
            model, losses = detector.train_mgfn(train_videos, head_config, recipe.steps, recipe.lr,
                                                recipe.weight_decay, recipe.batch_per_class, seed, device,
                                                show_progress)
            train_seconds += time.perf_counter() - started
            models.append((seed, model))
            first_losses = losses if first_losses is None else first_losses
        metrics["head"] = {"preset": preset, "steps": recipe.steps,
                           "final_train_loss": float(np.mean(first_losses[-10:])),
                           "n_train_normal": sum(v.label == 0 for v in train_videos),
                           "n_train_anomalous": sum(v.label == 1 for v in train_videos)}
        save_trained_head(config.save_head, models[0][1], {"store": str(store.path), "centre": config.centre},
                          metrics["head"])
    ids = [v.video_id for v in test_videos]
    evaluations = [evaluate_videos(ids, detector.score_videos(model, test_videos, device), truth, frames,
                                   unscored_truth) for _, model in models]
    if len(models) > 1:  # the metrics are the heads' mean; the saved head and final_train_loss are the first's
        metrics["per_seed"] = [{"seed": seed, "roc_auc": e["roc_auc"], "pr_auc": e["pr_auc"]}
                               for (seed, _), e in zip(models, evaluations)]
    metrics.update({
        "roc_auc": float(np.mean([e["roc_auc"] for e in evaluations])),
        "pr_auc": float(np.mean([e["pr_auc"] for e in evaluations])),
        "centre": config.centre,
        "chance_roc_auc": 0.5,
        "chance_pr_auc": evaluations[0]["anomalous_frame_rate"],
        "frames_per_snippet": frames,
        "n_test_videos": len(test_videos) + len(without_clips),
        "n_test_frames": int(sum(len(t) for t in truth + unscored_truth)),
        "test_videos_without_clips": detector.without_clips_summary(without_clips, unscored_truth),
        "timing": {"total_s": watch.seconds(), "train_s": train_seconds},
    })
    return metrics


def print_ad_result(title: str, metrics: dict) -> None:
    """A note on the test videos without clips (stderr), when there were any; the metrics table."""
    missing = metrics["test_videos_without_clips"]
    if missing["n_videos"]:
        err_console.print(f"note: {missing['n_videos']} test videos have no clips; their {missing['n_frames']} "
                          f"frames are scored {missing['score']} (anomalous frames missed)"
                          + (f"; {missing['n_unknown_length']} of them have no known frame count and are left out"
                             if missing["n_unknown_length"] else ""))
    print_metrics(title, metrics)


def register(app: typer.Typer) -> None:
    @app.command("ad")
    @config_options(ADConfig, "preset", "steps", "lr", "weight_decay", "batch_per_class", "loss_variant", "centre",
                    "head_checkpoint", "save_head", "seed", "seeds", "device")
    def ad_command(*, store: str = store_option(), config: ADConfig, out: Optional[Path] = out_option(),
                   progress: bool = progress_option(), as_json: bool = json_option()) -> None:
        """Anomaly detection: MGFN head, frame-level ROC AUC and PR AUC."""
        out_dir, config = with_head_file(store, out, TRAINED_HEAD_FILE, config)
        run_command("ad", run, config, store, out_dir, show_progress=progress, as_json=as_json,
                    printer=lambda opened, metrics: print_ad_result(f"ad: {opened.path}", metrics))
