"""Training configuration: one dataclass tree, validated on construction, saved as JSON in every run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from anonymize.budgets import budget_modes
from anonymize.budgets.independence import INDEPENDENCE_MIN_ROWS
from anonymize.checkpoint import atomic_write_text
from anonymize.data import ROW_SOURCES
from anonymize.losses import LC_DISTANCES
from anonymize.model import AAMConfig
from data_manifests.errors import FeatstoreError

BUDGET_MODES = tuple(budget_modes())  # every registered mode (anonymize/budgets/)
SUPERVISED_OBJECTIVES = ("maximize", "confusion")
CRITIC_OBJECTIVES = ("confusion", "maximize")
INDEPENDENCE_KERNELS = ("gaussian", "gaussian+linear")
OWN_CLIP_MODES = ("cross-view", "supervised-clips", "independence")  # budgets that draw their own full clips, never static pairs
NTXENT_OBJECTIVES = ("maximize", "to-uniform")
BUDGET_INPUTS = ("static", "static+clips")
LC_INPUTS = ("clips", "clips+static")
IDENTITY_PRESETS = {
    # name: (loss, lr, epochs)
    "paper": ("l1", 2e-5, 100),
    "code": ("mse", 1e-4, 500),
}
IDENTITY_CHOICES = (*IDENTITY_PRESETS, "zero", "none")
# Where a run is written, what it shows, and how it reads rows: not part of what it trains.
RUN_SETTINGS = ("out", "progress", "device", "row_source", "validate_every")


@dataclass
class TaskSpec:
    """One utility task: a registered task name, the store it trains on, its weight w_t, and optionally a
    saved head to start from instead of pretraining one (TAD: a head from ``evaluate tad --save-head``)."""

    name: str
    store: str
    weight: float = 1.0
    head: str | None = None

    def __post_init__(self):
        if self.weight < 0:
            raise FeatstoreError(f"task {self.name!r}: weight must be >= 0, got {self.weight}")


@dataclass
class IdentityInit:
    """Train f_A to reproduce its input before anonymization.

    ``paper``: L1, lr 2e-5, 100 epochs. ``code``: MSE, lr 1e-4, 500 epochs. ``zero``: no training, the
    residual branches' last layers start at zero, so f_A is exactly the identity (attention AAM only).
    ``none``: keep the random initialization. ``loss``/``lr``/``epochs`` override the preset.
    """

    preset: str = "paper"
    loss: str | None = None
    lr: float | None = None
    epochs: int | None = None
    batch_size: int = 512

    def __post_init__(self):
        if self.preset not in IDENTITY_CHOICES:
            raise FeatstoreError(f"identity init preset must be one of {list(IDENTITY_CHOICES)}, got {self.preset!r}")
        if self.loss is not None and self.loss not in LC_DISTANCES:
            raise FeatstoreError(f"identity init loss must be one of {list(LC_DISTANCES)}, got {self.loss!r}")
        if self.lr is not None and self.lr <= 0:
            raise FeatstoreError(f"identity init lr must be > 0, got {self.lr}")
        if self.epochs is not None and self.epochs < 0:
            raise FeatstoreError(f"identity init epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 1:
            raise FeatstoreError(f"identity init batch size must be >= 1, got {self.batch_size}")

    def resolved(self) -> tuple[str, float, int]:
        """(loss, lr, epochs) after applying the overrides to the preset."""
        loss, lr, epochs = IDENTITY_PRESETS.get(self.preset, ("mse", 1e-4, 0))
        return self.loss or loss, self.lr or lr, epochs if self.epochs is None else self.epochs


@dataclass
class TrainConfig:
    store: str
    out: str
    tasks: list[TaskSpec] = field(default_factory=list)  # empty -> [action on `store`]
    aam: AAMConfig = field(default_factory=AAMConfig)
    identity: IdentityInit = field(default_factory=IdentityInit)
    head_init_epochs: int = 100
    head_init_lr: float = 1e-3
    # Eq. 7 weights and terms
    w_utility: float = 1.0
    w_budget: float = 1.0
    w_lc: float = 100.0
    lc_distance: str = "mse"
    lc_inputs: str = "clips"
    # beyond the paper: f(x_a) - f(x_b) ~ x_a - x_b for two random clips of each budget-batch video (0 = off)
    w_within_video: float = 0.0
    budget_mode: str = "direct"
    budget_inputs: str = "static"
    temperature: float = 0.1
    ntxent_objective: str = "maximize"  # direct/adversarial: maximize (paper) or to-uniform (centred, bounded)
    supervised_objective: str = "maximize"
    budget_hidden: int = 2048
    budget_proj: int = 128
    budget_lr: float | None = None  # None: the AAM's learning rate
    budget_steps: int = 1  # adversary updates per anonymizer update
    budget_restart_every: int = 0  # epochs between re-initializations of the adversary; 0 = never
    # cross-view: critic g, h: d -> hidden -> proj matching AAM(clip) to the raw static clip of its video
    critic_hidden: int = 512
    critic_proj: int = 128
    critic_temperature: float = 0.1
    critic_objective: str = "confusion"  # the AAM's term: confusion (critic to chance, bounded) or maximize (InfoNCE)
    # bottleneck: sum_d log(1 + Var(f_A(x)_d) / sigma_d^2), sigma_d = bottleneck_noise x raw clip std of dim d
    bottleneck_noise: float = 0.5
    bottleneck_with_ntxent: bool = False  # add the direct NT-Xent budget on the static pairs
    # supervised-clips: attribute MLPs on AAM(full clips)
    adversary_ensemble: int = 3
    # independence: the kernels of the dependence measure (gaussian: nonlinear; + linear: also the
    # cross-covariance that a linear attacker reads)
    independence_kernels: str = "gaussian+linear"
    independence_shrinkage: float = 0.05  # covariance shrinkage of the whitening, x the mean variance
    # Latent-space augmentation of the static clips fed to the budget (extraction-time crops/flips are
    # not available on stored embeddings): Gaussian noise (std relative to each dimension's std) and
    # feature dropout.
    static_noise: float = 0.0
    static_feature_dropout: float = 0.0
    # optimization
    epochs: int = 100
    batch_size: int = 512
    lr: float = 1e-4  # at lr_reference_batch; scaled linearly with batch_size
    lr_reference_batch: int = 512
    weight_decay: float = 0.01
    seed: int = 0
    device: str = "auto"
    row_source: str = "memory"
    stream_cache_chunks: int = 64  # decoded Zarr chunks kept per array when streaming (shuffle buffer = half)
    validate_every: int = 10
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.aam, dict):
            self.aam = AAMConfig(**self.aam)
        if isinstance(self.identity, dict):
            self.identity = IdentityInit(**self.identity)
        self.tasks = [TaskSpec(**t) if isinstance(t, dict) else t for t in self.tasks]
        if not self.tasks:
            self.tasks = [TaskSpec("action", self.store, 1.0)]
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise FeatstoreError(f"each utility task may appear once, got {names}")
        checks = [
            (self.budget_mode in BUDGET_MODES, f"budget mode must be one of {list(BUDGET_MODES)}, got {self.budget_mode!r}"),
            (self.budget_inputs in BUDGET_INPUTS, f"budget inputs must be one of {list(BUDGET_INPUTS)}, got {self.budget_inputs!r}"),
            (self.ntxent_objective in NTXENT_OBJECTIVES,
             f"NT-Xent objective must be one of {list(NTXENT_OBJECTIVES)}, got {self.ntxent_objective!r}"),
            (self.supervised_objective in SUPERVISED_OBJECTIVES,
             f"supervised objective must be one of {list(SUPERVISED_OBJECTIVES)}, got {self.supervised_objective!r}"),
            (self.lc_distance in LC_DISTANCES, f"latent consistency distance must be one of {list(LC_DISTANCES)}, got {self.lc_distance!r}"),
            (self.lc_inputs in LC_INPUTS, f"latent consistency inputs must be one of {list(LC_INPUTS)}, got {self.lc_inputs!r}"),
            (self.row_source in ROW_SOURCES, f"row source must be one of {list(ROW_SOURCES)}, got {self.row_source!r}"),
            (self.stream_cache_chunks >= 2, f"stream cache must hold >= 2 chunks, got {self.stream_cache_chunks}"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (min(self.w_utility, self.w_budget, self.w_lc, self.w_within_video) >= 0, "loss weights must be >= 0"),
            (self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}"),
            (self.batch_size >= 2, f"batch size must be >= 2 (NT-Xent needs negatives), got {self.batch_size}"),
            (self.lr > 0 and self.lr_reference_batch > 0, "learning rate and its reference batch must be > 0"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.head_init_epochs >= 0 and self.head_init_lr > 0, "head init epochs must be >= 0 and its lr > 0"),
            (self.budget_hidden >= 1 and self.budget_proj >= 1, "budget head sizes must be >= 1"),
            (self.budget_lr is None or self.budget_lr > 0, f"budget lr must be > 0, got {self.budget_lr}"),
            (self.budget_steps >= 1, f"budget steps must be >= 1, got {self.budget_steps}"),
            (self.budget_restart_every >= 0, f"budget restart interval must be >= 0, got {self.budget_restart_every}"),
            (self.critic_hidden >= 1 and self.critic_proj >= 1,
             f"critic sizes must be >= 1, got hidden {self.critic_hidden}, proj {self.critic_proj}"),
            (self.critic_temperature > 0, f"critic temperature must be > 0, got {self.critic_temperature}"),
            (self.critic_objective in CRITIC_OBJECTIVES,
             f"critic objective must be one of {list(CRITIC_OBJECTIVES)}, got {self.critic_objective!r}"),
            (self.bottleneck_noise > 0, f"bottleneck noise must be > 0, got {self.bottleneck_noise}"),
            (self.adversary_ensemble >= 1, f"adversary ensemble must have >= 1 member, got {self.adversary_ensemble}"),
            (self.independence_shrinkage > 0, f"independence shrinkage must be > 0, got {self.independence_shrinkage}"),
            (self.budget_mode != "independence" or self.batch_size >= 2 * INDEPENDENCE_MIN_ROWS,
             f"the independence budget is a kernel statistic of the batch: batch size must be >= "
             f"{2 * INDEPENDENCE_MIN_ROWS}, got {self.batch_size}"),
            (self.independence_kernels in INDEPENDENCE_KERNELS,
             f"independence kernels must be one of {list(INDEPENDENCE_KERNELS)}, got {self.independence_kernels!r}"),
            (not (self.budget_inputs == "static+clips" and (self.budget_mode in OWN_CLIP_MODES or (
                self.budget_mode == "bottleneck" and not self.bottleneck_with_ntxent))),
             f"budget inputs 'static+clips' add pairs to an NT-Xent/supervised budget; {self.budget_mode!r} "
             f"(bottleneck_with_ntxent={self.bottleneck_with_ntxent}) does not read them"),
            (self.static_noise >= 0, f"static noise must be >= 0, got {self.static_noise}"),
            (0 <= self.static_feature_dropout < 1, f"static feature dropout must be in [0, 1), got {self.static_feature_dropout}"),
            (self.validate_every >= 0, f"validate_every must be >= 0, got {self.validate_every}"),
            (not (self.identity.preset == "zero" and self.aam.architecture != "attention"),
             "identity preset 'zero' needs the attention AAM (its residual branches start at zero)"),
        ]
        for ok, message in checks:
            if not ok:
                raise FeatstoreError(message)

    @property
    def scaled_lr(self) -> float:
        """The AAM/head learning rate after the linear scaling rule."""
        return self.lr * self.batch_size / self.lr_reference_batch

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FeatstoreError(f"unknown training config keys {unknown}")
        return cls(**data)

    def save(self, path: Path) -> None:
        # atomic: a run killed while saving its config leaves none or the whole (tests/anonymize/test_checkpoint_kill.py)
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        if not path.is_file():
            raise FeatstoreError(f"no training config at {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise FeatstoreError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_json(data)

    def training_settings(self) -> dict:
        """The settings that define the training result (a resume must match them); not paths/UI."""
        data = self.to_json()
        for key in RUN_SETTINGS:
            data.pop(key)
        return data
