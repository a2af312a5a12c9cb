"""Action recognition with a linear probe on clip embeddings.

Train: a linear classifier on the training videos' clips (default: one random clip of each video
per epoch, as the paper; ``clip_sampling="all"`` uses every clip every epoch), the official preset
(``evaluate.settings.LinearProbeSettings``: AdamW lr 1e-3, batch 1024, 250 epochs), cross-entropy.
Test: each test video's 5 evenly spaced clips, softmax probabilities averaged, top-1 and top-5
accuracy (chance = 1 / classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from evaluate.options import config_options, json_option, out_option, progress_option, run_command, store_option
from evaluate.settings import LinearProbeSettings, check, device_setting

if TYPE_CHECKING:
    from featstore.store import Store


@dataclass
class ARConfig(LinearProbeSettings):
    train_split: str = "train"
    test_split: str = "test"
    device: str = device_setting()

    def __post_init__(self):
        super().__post_init__()
        check(self.train_split != self.test_split, "train_split and test_split must differ")


def run(store: Store, config: ARConfig, *, show_progress: bool = False) -> dict:
    """Train the linear probe and return video-level top-1/top-5 over the evenly spaced clips."""
    from evaluate.data import StoreData
    from evaluate.metrics import topk_accuracy
    from evaluate.protocols import _classifier as classifier
    from evaluate.training import Stopwatch, device_of, timing_block

    watch = Stopwatch(device_of(config.device))
    data = StoreData(store, watch.device, kinds=("clips",))
    n_classes = classifier.n_classes_of(data)
    train_videos = classifier.labelled_videos(data, config.train_split)
    test_videos = classifier.labelled_videos(data, config.test_split)
    model, outcome = classifier.train_linear_classifier(data, train_videos, config, show_progress, "ar linear probe")
    probabilities = classifier.video_class_probabilities(model, data, test_videos, config.eval_clips)
    accuracy = topk_accuracy(probabilities, data.videos.label[test_videos], ks=(1, 5))
    return {
        "top1": accuracy[1],
        "top5": accuracy[5],
        "chance_top1": 1.0 / n_classes,
        "n_classes": n_classes,
        "n_train_videos": int(len(train_videos)),
        "n_test_videos": int(len(test_videos)),
        "final_train_loss": outcome.losses[-1],
        "timing": timing_block(watch.seconds(), [outcome]),
    }


def register(app: typer.Typer) -> None:
    @app.command("ar")
    @config_options(ARConfig, "epochs", "lr", "batch_size", "weight_decay", "clip_sampling", "eval_clips", "seed",
                    "device")
    def ar_command(*, store: str = store_option(), config: ARConfig, out: Optional[Path] = out_option(),
                   progress: bool = progress_option(), as_json: bool = json_option()) -> None:
        """Action recognition: linear probe, video-level top-1/top-5 over 5 evenly spaced clips."""
        run_command("ar", run, config, store, out, show_progress=progress, as_json=as_json)
