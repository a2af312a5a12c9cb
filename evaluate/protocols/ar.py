"""Action recognition with a linear probe on clip embeddings.

Train: a linear classifier on the training videos' clips (default: one random clip of each video
per epoch, as the paper; ``clip_sampling="all"`` uses every clip every epoch), AdamW lr 1e-3,
batch 1024, 250 epochs, cross-entropy. Test: each test video's 5 evenly spaced clips, softmax
probabilities averaged, top-1 and top-5 accuracy (chance = 1 / classes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import typer

from evaluate.common import (
    StoreData,
    Stopwatch,
    check,
    device_of,
    device_option,
    finish,
    open_store,
    out_option,
    progress_option,
    seed_option,
    store_option,
    timing_block,
)
from evaluate.metrics import topk_accuracy
from evaluate.protocols._classifier import (
    LinearProbeSettings,
    labelled_videos,
    n_classes_of,
    train_linear_classifier,
    video_class_probabilities,
)
from featstore.store import Store


@dataclass
class ARConfig:
    epochs: int = 250
    lr: float = 1e-3
    batch_size: int = 1024
    weight_decay: float = 0.01
    clip_sampling: str = "random"  # random | all
    eval_clips: int = 5
    seed: int = 0
    train_split: str = "train"
    test_split: str = "test"
    device: str = "auto"

    def __post_init__(self):
        self.probe().validate()
        check(self.train_split != self.test_split, "train_split and test_split must differ")

    def probe(self) -> LinearProbeSettings:
        fields = asdict(self)
        return LinearProbeSettings(**{k: fields[k] for k in LinearProbeSettings.__dataclass_fields__})


def run(store: Store, config: ARConfig, *, show_progress: bool = False) -> dict:
    """Train the linear probe and return video-level top-1/top-5 over the evenly spaced clips."""
    watch = Stopwatch(device_of(config.device))
    data = StoreData(store, watch.device, kinds=("clips",))
    n_classes = n_classes_of(data)
    train_videos = labelled_videos(data, config.train_split)
    test_videos = labelled_videos(data, config.test_split)
    model, outcome = train_linear_classifier(data, train_videos, config.probe(), show_progress, "ar linear probe")
    probabilities = video_class_probabilities(model, data, test_videos, config.eval_clips)
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
    def ar_command(
        store: str = store_option(),
        out: Optional[Path] = out_option(),
        epochs: int = typer.Option(250, help="Training epochs (official preset: 250)."),
        lr: float = typer.Option(1e-3, help="AdamW learning rate."),
        batch_size: int = typer.Option(1024, help="Clips per step."),
        weight_decay: float = typer.Option(0.01, help="AdamW weight decay."),
        clip_sampling: str = typer.Option("random", help="random (one clip per video per epoch) or all."),
        eval_clips: int = typer.Option(5, help="Evenly spaced test clips per video (softmax averaged)."),
        seed: int = seed_option(),
        device: str = device_option(),
        progress: bool = progress_option(),
    ) -> None:
        """Action recognition: linear probe, video-level top-1/top-5 over 5 evenly spaced clips."""
        config = ARConfig(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                          clip_sampling=clip_sampling, eval_clips=eval_clips, seed=seed, device=device)
        opened = open_store(store)
        finish("ar", config, run(opened, config, show_progress=progress), opened, out)
