"""The pieces the protocols' configs are built from: validation, fields with their help, shared presets.

A ``<Name>Config`` field that is also a command-line option is declared with :func:`setting`: its
default and help are written once here or in the config, and ``evaluate.options.config_option`` makes
the option from them. The linear probe (``ar``, ``bias``) and the attribute attackers (``privacy``,
``vp``) are shared presets: their configs inherit :class:`LinearProbeSettings` and
:class:`AttackerSettings`.

Torch-free on purpose: the command line imports the configs to show their options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from data_manifests.errors import FeatstoreError
from featstore.cli import DATA_PANEL, OUTPUT_PANEL, PROTOCOL_PANEL  # the evaluation commands' help panels

CLIP_SAMPLING = ("random", "all")
ATTACKERS = ("standard", "authors", "mlp", "logreg", "knn", "mlp-whitened", "knn-whitened", "svm-whitened", "mlp-wide",
             "quadratic", "ensemble")
# reads a little more than the suite at about the cost of all of it (docs/evaluate.md): by name or with `thorough`
OPT_IN_ATTACKERS = ("boosting",)
ATTACKER_GROUPS = {"all": ATTACKERS, "both": ("standard", "authors"), "thorough": (*ATTACKERS, *OPT_IN_ATTACKERS)}
ATTACKER_CHOICES = (*ATTACKER_GROUPS, *ATTACKERS, *OPT_IN_ATTACKERS)
VALIDATION_UNITS = ("video", "subject")  # what the attackers' validation split holds out whole
PROBE_EPOCHS = 250  # the official linear-probe preset (the authors' code)
ATTACKER_EPOCHS = 100  # the official attribute-attacker preset


# ---------------------------------------------------------------------------------------------- validation
def check(condition: bool, message: str) -> None:
    """Config validation: one-line user error when ``condition`` does not hold."""
    if not condition:
        raise FeatstoreError(message)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    check(value in choices, f"{name} must be one of {list(choices)}, got {value!r}")


def check_training(epochs: int, lr: float, batch_size: int, weight_decay: float = 0.0) -> None:
    check(epochs >= 1, f"epochs must be >= 1, got {epochs}")
    check(lr > 0 and math.isfinite(lr), f"lr must be a positive number, got {lr}")
    check(batch_size >= 1, f"batch_size must be >= 1, got {batch_size}")
    check(weight_decay >= 0, f"weight_decay must be >= 0, got {weight_decay}")


def check_head_files(config) -> None:
    """A head protocol's ``head_checkpoint`` and ``save_head``: written as paths print (``./a`` -> ``a``), and a
    head to evaluate must exist."""
    config.head_checkpoint, config.save_head = (None if path is None else str(Path(path))
                                                for path in (config.head_checkpoint, config.save_head))
    if config.head_checkpoint is not None:
        check(Path(config.head_checkpoint).is_file(), f"--head-checkpoint {config.head_checkpoint} does not exist")


# ---------------------------------------------------------------------------------------------- fields
def setting(default, help: str, *, required: bool = False, path: bool = False,  # noqa: A002  (typer's name)
            panel: str = PROTOCOL_PANEL):
    """A config field that is also a command-line option: its default, its help and its help panel, in one place.
    ``required``: the command line asks for it although the config has a default (which the config then refuses);
    ``path``: a file the command line reads as a path (the config keeps it as a string)."""
    metadata = {"help": help, "required": required, "path": path, "panel": panel}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def seed_setting():
    return setting(0, "Seed for weights, sampling and splits; same seed, same numbers.")


def device_setting():
    return setting("auto", "auto (GPU when present), cpu, cuda or cuda:N.")


def labels_from_setting():
    return setting(None, "The raw store (path or fsspec URL) an anonymized --store was exported from: its private "
                         "labels (attributes, subjects) are joined by video id (an export drops them).",
                   panel=DATA_PANEL)


def head_checkpoint_setting():
    return setting(None, "Evaluate this trained head (.safetensors) instead of training one.", path=True)


def save_head_setting(file_name: str):
    return setting(None, f"Where to save the trained head; not given: OUT/{file_name}.", path=True,
                   panel=OUTPUT_PANEL)


def clip_sampling_setting():
    return setting("random", "random (one clip per video per epoch) or all.")


# ---------------------------------------------------------------------------------------------- presets
@dataclass
class TrainSettings:
    """How a head is trained: AdamW, optional reduce-on-plateau of the mean epoch training loss."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 0.0
    seed: int = 0
    plateau_factor: float | None = None  # None: constant learning rate
    plateau_patience: int = 10  # torch's default; the paper gives only the factor (1/5)


@dataclass
class LinearProbeSettings:
    """The official linear-probe preset: AdamW lr 1e-3, batch 1024, 250 epochs (authors' code)."""

    epochs: int = setting(PROBE_EPOCHS, f"Training epochs (official preset: {PROBE_EPOCHS}).")
    lr: float = setting(1e-3, "AdamW learning rate.")
    batch_size: int = setting(1024, "Clips per step.")
    weight_decay: float = setting(0.01, "AdamW weight decay.")  # AdamW's default; the authors' code keeps it
    # random: one random clip of each video per epoch (paper); all: every clip
    clip_sampling: str = clip_sampling_setting()
    eval_clips: int = setting(5, "Evenly spaced test clips per video (softmax averaged).")
    seed: int = seed_setting()

    def __post_init__(self):
        check_training(self.epochs, self.lr, self.batch_size, self.weight_decay)
        check_choice("clip_sampling", self.clip_sampling, CLIP_SAMPLING)
        check(self.eval_clips >= 1, f"eval_clips must be >= 1, got {self.eval_clips}")

    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                             weight_decay=self.weight_decay, seed=self.seed)


@dataclass
class AttackerSettings:
    """The attribute attackers of ``privacy`` and ``vp`` (``evaluate.protocols._attribute_attack``)."""

    attacker: str = setting("all", "all (every attacker but boosting; cmap = the worst case), thorough (all and "
                                   "boosting, about twice as long), both (standard + authors), standard, authors, mlp, "
                                   "logreg, knn, mlp-whitened, knn-whitened, svm-whitened, mlp-wide, quadratic, "
                                   "ensemble or boosting (see docs/evaluate.md).")
    epochs: int = setting(ATTACKER_EPOCHS, "Training epochs.")
    lr: float = setting(1e-3, "AdamW learning rate.")
    batch_size: int = setting(512, "Samples per step.")
    # standard and mlp; the authors' attacker keeps its code's (AUTHORS_WEIGHT_DECAY)
    weight_decay: float = 0.0
    plateau_factor: float = 0.2  # the paper: learning rate to 1/5 on a loss plateau (the authors' code: none)
    plateau_patience: int = 10
    val_fraction: float = setting(0.1, "Validation-selected attackers: share of training videos held out for "
                                       "selection.")
    val_folds: int = setting(1, "scikit-learn attackers: 1 selects on the validation split; k >= 2 by k-fold "
                                "cross-validation over the training videos (whole subjects with --val-unit subject), "
                                "each candidate's AP averaged over the folds.")
    val_unit: str = setting("video", "What the validation split holds out whole: video, or subject (whole subjects, "
                                     "as a test split of unseen subjects; videos when a training video names none).")
    seed: int = seed_setting()

    def __post_init__(self):
        check_choice("attacker", self.attacker, ATTACKER_CHOICES)
        check_training(self.epochs, self.lr, self.batch_size, self.weight_decay)
        check(0 < self.plateau_factor < 1, f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        check(self.plateau_patience >= 0, f"plateau_patience must be >= 0, got {self.plateau_patience}")
        check(0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}")
        check_choice("val_unit", self.val_unit, VALIDATION_UNITS)
        check(self.val_folds >= 1, f"val_folds must be >= 1, got {self.val_folds}")

    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, weight_decay=self.weight_decay,
                             seed=self.seed, plateau_factor=self.plateau_factor, plateau_patience=self.plateau_patience)
