"""Training configuration: one dataclass tree, validated on construction, saved as JSON in every run.

This module imports no torch (``anonymize train --help`` reads the defaults here): the registries it validates
against (budget modes, distances, row sources) are imported when a config is built.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from data_manifests.errors import FeatstoreError

SUPERVISED_OBJECTIVES = ("maximize", "confusion")
CRITIC_OBJECTIVES = ("confusion", "maximize")
INDEPENDENCE_KERNELS = ("gaussian", "gaussian+linear")
INDEPENDENCE_GIVEN = ("nothing", "labels")
# the HSIC estimate of the independence term: the biased one (Gretton et al. 2005) or the unbiased one (Song et al. 2012)
INDEPENDENCE_ESTIMATORS = ("biased", "unbiased")
# the independence term's covariance shrinkage of the whitening, x the mean variance (the demo's output floor too)
INDEPENDENCE_SHRINKAGE = 0.05
# what a full-clip budget mode sees of each video: one random clip per step, or the mean over all of its clips
BUDGET_CLIPS = ("one", "video-mean")
# what the utility term fits: the labels (paper: cross-entropy, head trained jointly) or the raw-trained head's logits
UTILITY_TARGETS = ("labels", "raw-head")
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
# none: ``lr`` is the learning rate used; linear: the paper's rule, ``lr`` at ``lr_reference_batch`` x batch_size
LR_SCALINGS = ("none", "linear")
LR_SCHEDULES = ("constant", "cosine")
# A config record saved before ``lr_scaling`` existed trained at lr x batch_size / lr_reference_batch.
LEGACY_LR_SCALING = "linear"
# Written into every saved config for its reader; derived from the other settings, so ignored when read.
LR_USED = "lr_used"
LR_SETTINGS = ("lr", "lr_scaling", "lr_reference_batch")  # what lr_used is derived from (with batch_size)


# the AAM architecture (anonymize.model builds it): a config of its own, torch-free
ARCHITECTURES = ("attention", "mlp")
BLOCKS = ("transformer", "attention-only")
MODES = ("clip", "temporal")


@dataclass
class AAMConfig:
    architecture: str = "attention"
    layers: int = 3
    heads: int = 8
    block: str = "transformer"
    ffn_ratio: float = 2.0
    dropout: float = 0.1  # MLP variant only (paper); the attention blocks use none, like the authors' code
    mode: str = "clip"
    window: int = 2  # temporal mode: attend to clips within +-window positions
    # > 0: after training, the output is projected onto its directions whose variance over the training store's
    # train clips is at least output_floor x the mean variance (anonymize.model.OutputProjection); 0: no floor
    output_floor: float = 0.0
    # after training (with the floor's fit), subtract the mean of the output over the training store's train clips: a
    # fixed shift. The AAM's outputs share a large common offset that hides the feature magnitudes MGFN-style anomaly
    # detection ranks clips by (docs/anonymize.md)
    output_centre: bool = False
    # > 0: the output projection (fitted after training like the floor's) keeps at most the output_rank largest of
    # the directions the floor keeps: a point further along the privacy-utility trade-off from the same training
    # (docs/anonymize.md, "At equal utility: a rank cap"); 0: no cap
    output_rank: int = 0

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise FeatstoreError(f"AAM architecture must be one of {list(ARCHITECTURES)}, got {self.architecture!r}")
        if self.block not in BLOCKS:
            raise FeatstoreError(f"AAM block must be one of {list(BLOCKS)}, got {self.block!r}")
        if self.mode not in MODES:
            raise FeatstoreError(f"AAM mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.layers < 1:
            raise FeatstoreError(f"AAM layers must be >= 1, got {self.layers}")
        if self.heads < 1:
            raise FeatstoreError(f"AAM heads must be >= 1, got {self.heads}")
        if self.ffn_ratio < 0:
            raise FeatstoreError(f"AAM ffn_ratio must be >= 0, got {self.ffn_ratio}")
        if not 0 <= self.dropout < 1:
            raise FeatstoreError(f"AAM dropout must be in [0, 1), got {self.dropout}")
        if self.window < 1:
            raise FeatstoreError(f"AAM temporal window must be >= 1, got {self.window}")
        if not 0 <= self.output_floor <= 1:
            raise FeatstoreError(f"AAM output floor must be in [0, 1] (x the mean output variance), got {self.output_floor}")
        if self.output_rank < 0:
            raise FeatstoreError(f"AAM output rank must be >= 0 (0: no cap), got {self.output_rank}")
        if self.mode == "temporal" and self.architecture != "attention":
            raise FeatstoreError("the temporal mode needs the attention AAM (the MLP has no sequence axis)")

    @property
    def context_window(self) -> int:
        """Neighbouring clips each side that determine a clip's output (0 in the clip mode).

        Each of the ``layers`` blocks widens the receptive field by ``window``, so a window of
        ``layers * window`` clips each side gives exactly the output the clip has inside its whole video.
        """
        return self.window * self.layers if self.mode == "temporal" else 0

    def to_json(self) -> dict:
        return asdict(self)


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
        from anonymize.losses import LC_DISTANCES

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
    # raw-head (beyond the paper; the action task): the head is frozen after its init on raw features and its term
    # becomes the MSE between its logits on f_A(x) and on x, so the AAM keeps what the raw head reads instead of
    # refitting the labels of the training videos
    utility_target: str = "labels"
    w_budget: float = 1.0
    w_lc: float = 100.0
    lc_distance: str = "mse"
    lc_inputs: str = "clips"
    # beyond the paper: f(x_a) - f(x_b) ~ x_a - x_b for two random clips of each budget-batch video (0 = off)
    w_within_video: float = 0.0
    budget_mode: str = "direct"
    budget_inputs: str = "static"
    # the full-clip modes (cross-view, bottleneck, supervised-clips, independence): "one" random clip of each video per
    # step, or "video-mean": the mean of the AAM outputs over all of the video's clips (what video-level attackers read)
    budget_clips: str = "one"
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
    independence_shrinkage: float = INDEPENDENCE_SHRINKAGE
    # labels: independence given the utility labels (each batch centred per action class first), so what a frame
    # says about the action may stay
    independence_given: str = "nothing"
    # unbiased: the alignment from the unbiased HSIC estimate, whose expectation is 0 for an output independent of the
    # static clip whatever its rank; the biased estimate grows with the output's rank when the batch has fewer rows than
    # dimensions (docs/anonymize.md); the AAM minimizes the unbiased alignment's absolute value
    independence_estimator: str = "biased"
    # Latent-space augmentation of the static clips fed to the budget (extraction-time crops/flips are
    # not available on stored embeddings): Gaussian noise (std relative to each dimension's std) and
    # feature dropout.
    static_noise: float = 0.0
    static_feature_dropout: float = 0.0
    # optimization
    epochs: int = 100
    batch_size: int = 512
    lr: float = 1e-4  # the learning rate of the AAM and the task heads (with lr_scaling linear: at lr_reference_batch)
    lr_scaling: str = "none"  # none, or linear (the paper's rule: lr x batch_size / lr_reference_batch)
    lr_reference_batch: int = 512
    # constant, or cosine: the AAM's and the heads' lr x (1 + cos(pi e / epochs)) / 2 in epoch e = 0, 1, ...
    lr_schedule: str = "constant"
    weight_decay: float = 0.01
    seed: int = 0
    device: str = "auto"
    row_source: str = "memory"
    stream_cache_chunks: int = 64  # decoded Zarr chunks kept per array when streaming (shuffle buffer = half)
    validate_every: int = 10
    progress: bool = True

    def __post_init__(self):
        from anonymize.budgets import budget_class, budget_modes
        from anonymize.budgets.independence import INDEPENDENCE_MIN_ROWS
        from anonymize.data import ROW_SOURCES
        from anonymize.losses import LC_DISTANCES

        budget_names = budget_modes()  # every registered mode (anonymize/budgets/)
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
            (self.budget_mode in budget_names, f"budget mode must be one of {list(budget_names)}, got {self.budget_mode!r}"),
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
            (self.lr_scaling in LR_SCALINGS, f"lr scaling must be one of {list(LR_SCALINGS)}, got {self.lr_scaling!r}"),
            (self.lr_schedule in LR_SCHEDULES,
             f"lr schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}"),
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
            (self.budget_clips in BUDGET_CLIPS,
             f"budget clips must be one of {list(BUDGET_CLIPS)}, got {self.budget_clips!r}"),
            (self.budget_clips == "one" or self.budget_mode not in budget_names
             or budget_class(self.budget_mode).uses_clips,
             f"budget clips {self.budget_clips!r} is for the modes that read full clips, not {self.budget_mode!r}"),
            (self.utility_target in UTILITY_TARGETS,
             f"utility target must be one of {list(UTILITY_TARGETS)}, got {self.utility_target!r}"),
            (self.utility_target != "raw-head" or self.head_init_epochs > 0,
             "utility target raw-head keeps what the head learned on raw features: head init epochs must be > 0"),
            (self.independence_given in INDEPENDENCE_GIVEN,
             f"independence given must be one of {list(INDEPENDENCE_GIVEN)}, got {self.independence_given!r}"),
            (self.independence_estimator in INDEPENDENCE_ESTIMATORS,
             f"independence estimator must be one of {list(INDEPENDENCE_ESTIMATORS)}, got {self.independence_estimator!r}"),
            (self.independence_estimator != "unbiased" or self.independence_given == "nothing",
             "the unbiased independence estimator is not unbiased on batches centred per class: use it with "
             "independence given nothing"),
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
        """The AAM/head learning rate used: ``lr``, or with ``lr_scaling`` linear lr x batch / reference batch."""
        if self.lr_scaling == "linear":
            return self.lr * self.batch_size / self.lr_reference_batch
        return self.lr

    def lr_factor(self, epoch: int) -> float:
        """The factor on the AAM's and the heads' learning rate in epoch ``epoch`` (0-based) of ``epochs``.

        The curve of ``evaluate.heads.training.warmup_cosine`` without warmup, computed as pi x epoch / epochs: that
        function's pi x (epoch / epochs) rounds 65 of 300 epochs' rates one ulp apart, which would change the
        measured runs of docs/anonymize.md ("A cosine learning-rate schedule") bit for bit.
        """
        if self.lr_schedule == "cosine":
            return (1 + math.cos(math.pi * epoch / self.epochs)) / 2
        return 1.0

    def to_json(self) -> dict:
        return {**asdict(self), LR_USED: self.scaled_lr}

    @classmethod
    def from_settings(cls, data: dict) -> TrainConfig:
        """Settings a person wrote (``anonymize train --config FILE`` with the command line on top): keys of
        the saved config.json, any of them left out for its default (``checked_train_settings``)."""
        return cls(**checked_train_settings(data))

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """A config a run saved (config.json, an export's training_config). One saved before ``lr_scaling``
        existed keeps the meaning it was trained with: its lr was scaled linearly."""
        return cls.from_settings({"lr_scaling": LEGACY_LR_SCALING, **data})

    def save(self, path: Path) -> None:
        from anonymize.checkpoint import atomic_write_text

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


def read_settings_file(path: str | Path) -> dict:
    """The settings in a JSON or YAML file (``.json``; ``.yaml``/``.yml``), as written: a mapping."""
    path = Path(path)
    if not path.is_file():
        raise FeatstoreError(f"no config file at {path}")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # only this reader needs it

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FeatstoreError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FeatstoreError(f"{path} is not valid JSON: {exc}") from exc
    else:
        raise FeatstoreError(f"{path}: a config file is .json, .yaml or .yml")
    if not isinstance(data, dict):
        raise FeatstoreError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def read_config_file(path: str | Path) -> dict:
    """The settings of an ``anonymize train --config`` file. A run's config.json saved before ``lr_scaling``
    existed (``lr_reference_batch`` without ``lr_scaling`` or ``lr_used``) keeps its meaning, as
    ``TrainConfig.from_json`` reads it: its lr was scaled linearly."""
    data = read_settings_file(path)
    if "lr_reference_batch" in data and "lr_scaling" not in data and LR_USED not in data:
        data = {"lr_scaling": LEGACY_LR_SCALING, **data}
    return data


def checked_train_settings(data: dict) -> dict:
    """TrainConfig settings as written, checked: an unknown key (also in the ``aam``, ``identity`` and
    ``tasks`` sections) or a value of the wrong type is a one-line error naming it; ``lr_used`` (derived,
    in every saved config.json) is dropped."""
    data = checked_settings(TrainConfig, {key: value for key, value in data.items() if key != LR_USED}, "")
    for section, cls in (("aam", AAMConfig), ("identity", IdentityInit)):
        if section in data and not isinstance(data[section], (dict, cls)):
            raise FeatstoreError(f"training config {section}: expected a mapping, got {data[section]!r}")
        if isinstance(data.get(section), dict):
            data[section] = checked_settings(cls, data[section], f"{section}.")
    if "tasks" in data:
        if not isinstance(data["tasks"], list):
            raise FeatstoreError(f"training config tasks: expected a list, got {data['tasks']!r}")
        tasks = []
        for index, task in enumerate(data["tasks"]):
            if not isinstance(task, (dict, TaskSpec)):
                raise FeatstoreError(f"training config tasks[{index}]: expected a mapping, got {task!r}")
            missing = [key for key in ("name", "store") if isinstance(task, dict) and key not in task]
            if missing:
                raise FeatstoreError(f"training config tasks[{index}]: needs {missing[0]!r}")
            tasks.append(checked_settings(TaskSpec, task, f"tasks[{index}].") if isinstance(task, dict) else task)
        data["tasks"] = tasks
    return data


def checked_settings(cls, data: dict, prefix: str) -> dict:
    """``data`` for ``cls(**data)``: every key a field of the dataclass ``cls``, every scalar value of its
    field's type (a number written as text, such as YAML's ``1e-4``, becomes that number)."""
    types = {f.name: str(f.type) for f in fields(cls)}
    unknown = [f"{prefix}{key}" for key in data if key not in types]  # YAML keys may be numbers
    if unknown:
        raise FeatstoreError(f"unknown training config key {unknown[0]!r}" if len(unknown) == 1 else
                             f"unknown training config keys {unknown}")
    return {key: _typed(f"{prefix}{key}", types[key], value) for key, value in data.items()}


def _typed(key: str, annotation: str, value):
    """``value`` as the type ``annotation`` names (float, int, bool, str, optionally ``| None``); other
    annotations (nested configs, lists) are checked by their own classes."""
    kinds = [part.strip() for part in annotation.split("|")]
    if value is None and "None" in kinds:
        return value
    kind = kinds[0]
    if kind not in ("float", "int", "bool", "str"):
        return value
    if kind == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif kind in ("bool", "str") and type(value).__name__ == kind:
        return value
    raise FeatstoreError(f"training config {key}: expected {annotation}, got {value!r}")
