"""Read recipe files: ``pipelines/recipes/<name>.yaml``, or a path to one (a recipe of your own).

A recipe file holds::

    description: one line for ``pipelines list``
    source: where its settings and published numbers come from (the paper's table)
    runner: table (the steps below) | demo (pipelines/demo.py, run exactly as ``pipelines run demo``)
    encoder: the default encoder (``--encoder`` overrides it)
    datasets:            # store name -> registry dataset (data_manifests.registry) and its official folder
      k400: {dataset: kinetics400, folder: Kinetics400}
    train:               # the anonymizer: TrainConfig settings (anonymize/config.py), the stores it reads
      store: k400
      tasks: [{name: tad, store: thumos14}]
      settings: {epochs: 100, ...}
    evaluate:            # one table column each: protocol on a store, raw and anonymized; metric: the path in its
      - {column: VISPR cMAP, store: vispr, protocol: privacy, metric: worst_case.cmap}       # result
      - {column: K400 top-1, store: k400, protocol: ar, metric: top1, test_split: val}
      - {column: TSH gap, store: toyota, protocol: bias, metric: gap,
         options: {protocol: tsh, genders: "{root}/genders.csv"}}  # protocol settings; {root}: the dataset's folder
    sweep:               # optional: one AAM per value of one training setting (aam.heads: a section's field),
      {setting: w_lc, values: [0, 1, 10, 100, 1000]}        # one table row each; or named rows of settings:
                                                            # {rows: {"MLP (1 layer)": {aam: {...}}, ...}}
    tradeoff:            # optional, with a sweep: the trade-off of raw and every row from the columns named here
      {utility: PA-HMDB51 top-1, privacy: PA-HMDB51 cMAP}  # (ar, metric top1; privacy or vp, metric ...cmap): the
                                                          # Pareto front, normalized hypervolume, plot (pipelines.tradeoff)
    pixel_baselines:     # optional: rows of stores extracted from transformed frames (featstore extract
      encoders: [i3d]    # --pixel-transform), evaluated like raw stores; added by default for these encoders
      rows: {Downsample-2x: {transform: downsample-2x}, Blurring: {transform: blur, blur_sigma: 0.04}}
      skip_columns: [K400 top-1]  # optional: columns the rows do not evaluate ('-'); a dataset no other column
                                  # of theirs reads is not extracted for them
    published:           # the paper's numbers per encoder: {encoder: {row: {column: value}}}, rows raw,
                         # anonymized (or, with a sweep, the sweep's row labels such as "w_lc=100") and the
                         # pixel baselines' labels

pyyaml is imported only when a file is read (``pipelines --help`` stays light).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from data_manifests.errors import FeatstoreError

RECIPE_DIR = Path(__file__).resolve().parent
RECIPE_SUFFIX = ".yaml"
RUNNERS = ("table", "demo")
PROTOCOLS = ("ar", "privacy", "vp", "tad", "ad", "retrieval", "bias")
ROOT_FIELD = "{root}"  # in an evaluation option: the dataset's root folder (a file the user puts there)
SPLIT_PROTOCOLS = ("ar", "privacy", "ad")  # their configs have a test_split
# pipelines.tradeoff's axes: the protocols of each axis's column and the last part of its metric path
TRADEOFF_AXES = {"utility": (("ar",), "top1"), "privacy": (("privacy", "vp"), "cmap")}


class RecipeError(FeatstoreError):
    """A recipe file that cannot be read or has a wrong entry."""


@dataclass(frozen=True)
class DatasetSpec:
    dataset: str  # a registry name (``featstore datasets``)
    folder: str  # its official folder name under one --data-root
    fold: int = 1


@dataclass(frozen=True)
class EvalSpec:
    column: str
    store: str
    protocol: str
    metric: str  # dotted path into the protocol's metrics, e.g. worst_case.cmap
    test_split: str | None = None  # the split evaluated (None: the protocol's, "test"); Kinetics-400: val
    options: dict = field(default_factory=dict)  # protocol settings, e.g. bias: {protocol: tsh, genders: "{root}/x.csv"}

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        """Evaluations with the same key share one result (columns reading different metrics of it)."""
        return self.store, self.protocol, self.test_split, json.dumps(self.options, sort_keys=True)

    @property
    def name(self) -> str:
        """The evaluation's name in step names and result files, one per key: the protocol, bias's protocol
        option, the test split when not the protocol's, and a hash of any other options."""
        others = {name: value for name, value in self.options.items() if name != "protocol"}
        parts = [self.protocol, self.options.get("protocol", ""), self.test_split or ""]
        if others:
            parts.append(hashlib.sha256(json.dumps(others, sort_keys=True).encode()).hexdigest()[:8])
        return " ".join(part for part in parts if part)

    def root_files(self, root: Path) -> dict[str, Path]:
        """The options naming a file in the dataset's root, with the root filled in."""
        return {name: Path(value.replace(ROOT_FIELD, str(root))) for name, value in self.options.items()
                if isinstance(value, str) and ROOT_FIELD in value}

    def settings(self, root: Path) -> dict:
        return {**self.options, **{name: str(path) for name, path in self.root_files(root).items()}}

    @property
    def metric_path(self) -> tuple[str, ...]:
        return tuple(self.metric.split("."))


@dataclass(frozen=True)
class TrainSpec:
    store: str
    tasks: list[dict] = field(default_factory=list)  # TaskSpec fields, ``store`` naming a recipe store
    settings: dict = field(default_factory=dict)  # TrainConfig settings


@dataclass(frozen=True)
class SweepSpec:
    """One training setting over ``values`` (rows ``setting=value``), or named ``rows`` of settings each (an
    ablation whose rows differ in more than one field, e.g. the architecture and its depth)."""

    setting: str | None = None  # a TrainConfig setting; a dotted name sets one field of a section
    values: list = field(default_factory=list)
    rows: dict[str, dict] = field(default_factory=dict)  # row label -> training settings

    def label(self, value) -> str:
        return f"{self.setting}={value}"

    def variants(self) -> dict[str, dict]:
        """Row label -> the training settings it changes."""
        if self.rows:
            return dict(self.rows)
        return {self.label(value): {self.setting: value} for value in self.values}

    def settings(self) -> list[str]:
        """The training settings the sweep changes."""
        return sorted({name for changed in self.variants().values() for name in changed})


@dataclass(frozen=True)
class TradeoffSpec:
    """The trade-off's axes: the columns of its utility (top-1) and its privacy (cMAP)."""

    utility: str
    privacy: str


@dataclass(frozen=True)
class PixelRowSpec:
    """One pixel-level baseline row: the transform applied to the frames before the encoder."""

    transform: str  # featstore.pixel_transform_config.PIXEL_TRANSFORMS
    blur_sigma: float | None = None  # blur only (None: featstore's default)


@dataclass(frozen=True)
class PixelBaselinesSpec:
    encoders: list[str] = field(default_factory=list)  # the encoders they are added for by default
    rows: dict[str, PixelRowSpec] = field(default_factory=dict)  # row label -> its transform
    skip_columns: list[str] = field(default_factory=list)  # columns the rows do not evaluate (the paper has none)


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    description: str
    source: str
    runner: str
    encoder: str | None = None
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    train: TrainSpec | None = None
    evaluate: list[EvalSpec] = field(default_factory=list)
    sweep: SweepSpec | None = None
    tradeoff: TradeoffSpec | None = None
    pixel_baselines: PixelBaselinesSpec | None = None
    published: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPE_DIR.glob(f"*{RECIPE_SUFFIX}"))


def recipe_path(name_or_path: str) -> Path:
    if name_or_path.endswith(RECIPE_SUFFIX) or Path(name_or_path).is_file():
        path = Path(name_or_path)
        if not path.is_file():
            raise RecipeError(f"no recipe file at {path}")
        return path
    path = RECIPE_DIR / f"{name_or_path}{RECIPE_SUFFIX}"
    if not path.is_file():
        raise RecipeError(f"unknown recipe {name_or_path!r} (available: {', '.join(recipe_names())}; "
                          f"or pass a recipe {RECIPE_SUFFIX} file)")
    return path


def load_recipe(name_or_path: str) -> Recipe:
    """The recipe by name (a file of this package) or path; a wrong entry is a one-line error naming it."""
    import yaml

    path = recipe_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path} must hold a mapping, got {type(data).__name__}")
    known = {"description", "source", "runner", "encoder", "datasets", "train", "evaluate", "sweep", "tradeoff",
             "pixel_baselines", "published"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"{path}: unknown entries {unknown} (known: {sorted(known)})")
    for key in ("description", "source", "runner"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise RecipeError(f"{path}: '{key}' must be a non-empty string")
    if data["runner"] not in RUNNERS:
        raise RecipeError(f"{path}: runner must be one of {list(RUNNERS)}, got {data['runner']!r}")
    recipe = Recipe(name=path.stem, path=path, description=data["description"].strip(), source=data["source"].strip(),
                    runner=data["runner"], encoder=data.get("encoder"),
                    datasets={name: _dataset(path, name, spec) for name, spec in (data.get("datasets") or {}).items()},
                    train=_train(path, data.get("train")),
                    evaluate=[_evaluation(path, index, spec) for index, spec in enumerate(data.get("evaluate") or [])],
                    sweep=_sweep(path, data.get("sweep")), tradeoff=_tradeoff(path, data.get("tradeoff")),
                    pixel_baselines=_pixel_baselines(path, data.get("pixel_baselines")),
                    published=data.get("published") or {})
    if recipe.runner == "table":
        _check_table_recipe(recipe)
    return recipe


def _dataset(path: Path, name: str, spec) -> DatasetSpec:
    try:
        return DatasetSpec(**spec)
    except TypeError:
        raise RecipeError(f"{path}: dataset {name!r} must be a mapping with dataset, folder and optional fold; "
                          f"got {spec!r}") from None


def _train(path: Path, spec) -> TrainSpec | None:
    if spec is None:
        return None
    try:
        return TrainSpec(**spec)
    except TypeError:
        raise RecipeError(f"{path}: train must be a mapping with store, tasks and settings; got {spec!r}") from None


def _sweep(path: Path, spec) -> SweepSpec | None:
    if spec is None:
        return None
    try:
        sweep = SweepSpec(**spec)
    except TypeError:
        raise RecipeError(f"{path}: sweep must be a mapping with setting and values, or rows; got {spec!r}") from None
    if sweep.rows:
        if sweep.setting is not None or sweep.values or not all(isinstance(v, dict) for v in sweep.rows.values()):
            raise RecipeError(f"{path}: sweep rows map a row label to its training settings (without setting/values)")
    elif not sweep.setting or not isinstance(sweep.values, list) or not sweep.values \
            or len(set(map(str, sweep.values))) != len(sweep.values):
        raise RecipeError(f"{path}: a sweep needs a setting and a non-empty list of different values")
    return sweep


def _tradeoff(path: Path, spec) -> TradeoffSpec | None:
    if spec is None:
        return None
    wrong = RecipeError(f"{path}: tradeoff must be a mapping {{utility: COLUMN, privacy: COLUMN}} of column "
                        f"names; got {spec!r}")
    try:
        tradeoff = TradeoffSpec(**spec)
    except TypeError:
        raise wrong from None
    if not isinstance(tradeoff.utility, str) or not isinstance(tradeoff.privacy, str):
        raise wrong
    return tradeoff


def _pixel_baselines(path: Path, spec) -> PixelBaselinesSpec | None:
    from featstore.pixel_transform_config import PIXEL_TRANSFORMS, SIGMA_TRANSFORMS, PixelTransformConfig

    if spec is None:
        return None
    transforms = [name for name in PIXEL_TRANSFORMS if name != PixelTransformConfig().name]  # not "none"
    wrong = RecipeError(f"{path}: pixel_baselines must be a mapping with encoders (a list), rows (row label -> "
                        f"{{transform: one of {transforms}, blur_sigma: optional}}) and optional skip_columns (a "
                        f"list of columns); got {spec!r}")
    if not isinstance(spec, dict) or set(spec) - {"encoders", "rows", "skip_columns"} \
            or not isinstance(spec.get("rows"), dict) or not spec["rows"] \
            or not isinstance(spec.get("encoders", []), list) or not isinstance(spec.get("skip_columns", []), list) \
            or not all(isinstance(column, str) for column in spec.get("skip_columns", [])):
        raise wrong
    rows = {}
    for label, row in spec["rows"].items():
        try:
            rows[str(label)] = pixel_row = PixelRowSpec(**row)
        except TypeError:
            raise wrong from None
        if pixel_row.transform not in transforms:
            raise wrong
        if pixel_row.blur_sigma is not None:
            if pixel_row.transform not in SIGMA_TRANSFORMS:
                raise RecipeError(f"{path}: pixel_baselines row {label!r}: blur_sigma applies to the "
                                  f"{', '.join(SIGMA_TRANSFORMS)} transform only")
            try:
                PixelTransformConfig(name=pixel_row.transform, blur_sigma=pixel_row.blur_sigma)
            except FeatstoreError as exc:
                raise RecipeError(f"{path}: pixel_baselines row {label!r}: {exc}") from None
    return PixelBaselinesSpec(encoders=list(spec.get("encoders", [])), rows=rows,
                              skip_columns=list(spec.get("skip_columns", [])))


def _evaluation(path: Path, index: int, spec) -> EvalSpec:
    try:
        evaluation = EvalSpec(**spec)
    except TypeError:
        raise RecipeError(f"{path}: evaluate entry {index + 1} must be a mapping with column, store, protocol, "
                          f"metric and optional test_split and options; got {spec!r}") from None
    texts = ("column", "store", "protocol", "metric")
    wrong = [name for name in texts if not isinstance(getattr(evaluation, name), str)]
    if wrong:
        raise RecipeError(f"{path}: evaluate entry {index + 1}: {wrong[0]} must be a string, "
                          f"got {getattr(evaluation, wrong[0])!r}")
    if evaluation.protocol not in PROTOCOLS:
        raise RecipeError(f"{path}: evaluate entry {index + 1}: protocol must be one of {list(PROTOCOLS)}, "
                          f"got {evaluation.protocol!r}")
    if evaluation.test_split is not None and evaluation.protocol not in SPLIT_PROTOCOLS:
        raise RecipeError(f"{path}: evaluate entry {index + 1}: test_split applies to {', '.join(SPLIT_PROTOCOLS)} only")
    return evaluation


def _check_table_recipe(recipe: Recipe) -> None:
    """Every store a step names is one of the recipe's datasets."""
    if recipe.train is None or not recipe.evaluate or not recipe.encoder:
        raise RecipeError(f"{recipe.path}: a table recipe needs encoder, train and evaluate entries")
    task_lists = [recipe.train.tasks] + [row["tasks"] for row in (recipe.sweep.variants().values() if recipe.sweep
                                                                    else []) if "tasks" in row]
    for tasks in task_lists:
        if not isinstance(tasks, list) or not all(isinstance(task, dict) and "name" in task and "store" in task
                                                  for task in tasks):
            raise RecipeError(f"{recipe.path}: tasks are a list of mappings with a name and a store, got {tasks!r}")
    named = [recipe.train.store, *(task.get("store") for tasks in task_lists for task in tasks),
             *(evaluation.store for evaluation in recipe.evaluate)]
    for store in named:
        if store not in recipe.datasets:
            raise RecipeError(f"{recipe.path}: store {store!r} is not one of its datasets ({', '.join(recipe.datasets)})")
    columns = {evaluation.column: evaluation for evaluation in recipe.evaluate}
    if recipe.tradeoff is not None:
        if recipe.sweep is None:
            raise RecipeError(f"{recipe.path}: tradeoff needs a sweep")
        for axis, (protocols, metric) in TRADEOFF_AXES.items():
            column = getattr(recipe.tradeoff, axis)
            if column not in columns or columns[column].protocol not in protocols \
                    or columns[column].metric_path[-1] != metric:
                raise RecipeError(f"{recipe.path}: tradeoff {axis}: {column!r} must be one of the evaluated columns "
                                  f"of protocol {' or '.join(protocols)} with a {metric} metric")
    for encoder, rows in recipe.published.items():
        for row, values in rows.items():
            for column, value in (values or {}).items():
                if column not in columns or isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise RecipeError(f"{recipe.path}: published {encoder} {row}: {column!r} must be one of the "
                                      f"evaluated columns with a number, got {value!r}")
    if recipe.pixel_baselines is not None:
        for column in recipe.pixel_baselines.skip_columns:
            if column not in columns:
                raise RecipeError(f"{recipe.path}: pixel_baselines skip_columns: {column!r} is not one of the "
                                  f"evaluated columns ({', '.join(columns)})")
        if not pixel_evaluations(recipe):
            raise RecipeError(f"{recipe.path}: pixel_baselines skip_columns leaves the rows no column to evaluate")
    labels = ["raw", *variant_labels(recipe), *(recipe.pixel_baselines.rows if recipe.pixel_baselines else [])]
    _check_folder_names(recipe, labels)
    rows = set(labels)
    for encoder, published in recipe.published.items():
        if set(published) - rows:
            raise RecipeError(f"{recipe.path}: published numbers of {encoder!r} have rows {sorted(rows)} only")


def _check_folder_names(recipe: Recipe, labels: list[str]) -> None:
    """Every row has its own folder of stores and results: two labels with one folder name would overwrite each
    other's (the anonymized row's results share the raw row's folder, so no other row may be named like it)."""
    folders: dict[str, str] = {}
    for label in [*labels, *([] if ANONYMIZED in labels else [ANONYMIZED])]:
        folder = slug(str(label))
        if folder in ("", ".", ".."):
            raise RecipeError(f"{recipe.path}: row label {label!r} is no folder name")
        if folder in folders:
            raise RecipeError(f"{recipe.path}: row labels {folders[folder]!r} and {label!r} have the same folder name "
                              f"{folder!r} (their stores and results would overwrite each other): rename one")
        folders[folder] = label


def slug(label: str) -> str:
    """A row label's folder name (its stores and results): characters other than letters, digits, - _ . as -."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label)


ANONYMIZED = "anonymized"  # the row label of a recipe without a sweep


def variant_labels(recipe: Recipe) -> list[str]:
    """The anonymized rows: one per sweep value, or one."""
    return list(recipe.sweep.variants()) if recipe.sweep else [ANONYMIZED]


def pixel_evaluations(recipe: Recipe) -> list[EvalSpec]:
    """The columns the pixel baseline rows evaluate: all but their ``skip_columns``."""
    skipped = recipe.pixel_baselines.skip_columns if recipe.pixel_baselines is not None else []
    return [evaluation for evaluation in recipe.evaluate if evaluation.column not in skipped]
