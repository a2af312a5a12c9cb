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
    tradeoff: false      # with a sweep: also the Pareto front and its normalized hypervolume (pipelines.tradeoff)
    published:           # the paper's numbers per encoder: {encoder: {row: {column: value}}}, rows raw and
                         # anonymized (or, with a sweep, the sweep's row labels such as "w_lc=100")

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
    tradeoff: bool = False
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
             "published"}
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
                    sweep=_sweep(path, data.get("sweep")), tradeoff=bool(data.get("tradeoff", False)),
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


def _evaluation(path: Path, index: int, spec) -> EvalSpec:
    try:
        evaluation = EvalSpec(**spec)
    except TypeError:
        raise RecipeError(f"{path}: evaluate entry {index + 1} must be a mapping with column, store, protocol, "
                          f"metric and optional test_split and options; got {spec!r}") from None
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
    if recipe.tradeoff and recipe.sweep is None:
        raise RecipeError(f"{recipe.path}: tradeoff needs a sweep")
    columns = {evaluation.column for evaluation in recipe.evaluate}
    for encoder, rows in recipe.published.items():
        for row, values in rows.items():
            for column, value in (values or {}).items():
                if column not in columns or isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise RecipeError(f"{recipe.path}: published {encoder} {row}: {column!r} must be one of the "
                                      f"evaluated columns with a number, got {value!r}")
    rows = {"raw", *variant_labels(recipe)}
    for encoder, published in recipe.published.items():
        if set(published) - rows:
            raise RecipeError(f"{recipe.path}: published numbers of {encoder!r} have rows {sorted(rows)} only")


ANONYMIZED = "anonymized"  # the row label of a recipe without a sweep


def variant_labels(recipe: Recipe) -> list[str]:
    """The anonymized rows: one per sweep value, or one."""
    return list(recipe.sweep.variants()) if recipe.sweep else [ANONYMIZED]
