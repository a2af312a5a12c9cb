"""Run a table recipe: extract every dataset, train the anonymizer, export, evaluate, write the table.

Every step has a fingerprint: a hash of its settings and of the fingerprints of the steps it reads. ``steps.json``
in ``--out`` records the fingerprint of each finished step; a rerun skips a step whose fingerprint is recorded
and whose output is there, and redoes one whose inputs or settings changed. An interrupted step continues:
extraction resumes its finished parts (featstore.extract), training resumes from its last checkpoint (its run
folder is named by its fingerprint, so a changed setting starts a new run instead of failing the resume check),
an export is written to a staging folder and renamed (anonymize.export).

A pixel-level baseline row (``pixel_baselines`` in the recipe) extracts again, from transformed frames
(``featstore extract --pixel-transform``) into ``stores/ENCODER/ROW/``, every dataset that one of its columns reads
(every column but the recipe's ``skip_columns``), and evaluates those columns on it like a raw store (its own
attribute labels); its extraction's fingerprint holds the transform.
"""

from __future__ import annotations

import hashlib
import json
from importlib import import_module
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rich.console import Console

from data_manifests.errors import FeatstoreError
from pipelines.recipes.loader import ANONYMIZED, EvalSpec, PixelRowSpec, Recipe, pixel_evaluations, slug
from pipelines.recipes.plan import DatasetPlan, check_inputs, describe_plan, measure_clips_per_second, named_path
from pipelines.recipes.table import write_table

STEPS_FILE = "steps.json"
ALL_PIXEL_ROWS, NO_PIXEL_ROWS = "all", "none"  # --pixel-baselines besides a list of row labels
RECIPE_FILE = "recipe.json"
# training settings that `pipelines run` sets itself: --set refuses them, saying where they come from
RUN_OPTIONS = {"seed": "use --seed", "device": "use --device", "progress": "use --progress/--no-progress",
               "store": "the recipe names its training store", "out": "use --out (runs go under OUT/runs/)"}


@dataclass
class RecipeRun:
    """One run of a table recipe: the command line's choices."""

    recipe: Recipe
    out: Path
    encoder: str
    weights: str | None = None
    data_root: Path | None = None
    roots: dict[str, Path] = field(default_factory=dict)
    train_overrides: dict = field(default_factory=dict)  # TrainConfig settings over the recipe's
    eval_epochs: int | None = None  # every probe's / attacker's epochs (None: each protocol's preset)
    seed: int = 0
    device: str = "auto"
    show_progress: bool = True
    pixel_baselines: str | None = None  # the recipe's pixel baseline rows: all | none | LABEL,LABEL (None: all for
    # the encoders the recipe lists, none otherwise)
    boxes: dict[str, Path] = field(default_factory=dict)  # store or dataset name -> its person box file

    def store_path(self, store: str, pixel_row: str | None = None) -> Path:
        """A raw store, or (``pixel_row``) one extracted from the row's transformed frames."""
        folder = self.out / "stores" / self.encoder
        return (folder if pixel_row is None else folder / slug(pixel_row)) / f"{store}.zarr"

    def pixel_rows(self) -> dict[str, PixelRowSpec]:
        """The pixel-level baseline rows this run adds (label -> transform), in the recipe's order."""
        spec = self.recipe.pixel_baselines
        rows = spec.rows if spec is not None else {}
        choice = self.pixel_baselines
        if choice is None:
            choice = ALL_PIXEL_ROWS if spec is not None and self.encoder in spec.encoders else NO_PIXEL_ROWS
        if choice == NO_PIXEL_ROWS:
            return {}
        if spec is None:
            raise FeatstoreError(f"--pixel-baselines: recipe {self.recipe.name!r} has no pixel-level baseline rows")
        chosen = list(rows) if choice == ALL_PIXEL_ROWS else [label.strip() for label in choice.split(",")]
        unknown = [label for label in chosen if label not in rows]
        if unknown:
            raise FeatstoreError(f"--pixel-baselines: {unknown[0]!r} is not a row of recipe {self.recipe.name!r} "
                                 f"(all, none, or some of: {','.join(rows)})")
        return {label: row for label, row in rows.items() if label in chosen}

    def pixel_transform(self, row: PixelRowSpec, store: str):
        """The row's featstore PixelTransformConfig for one store: its box file for blur and blacken (blur
        without one blurs the whole frame)."""
        from featstore.pixel_transform_config import BOX_TRANSFORMS, PixelTransformConfig

        boxes = named_path(self.recipe, store, self.boxes) if row.transform in BOX_TRANSFORMS else None
        return PixelTransformConfig(name=row.transform, boxes=None if boxes is None else str(boxes),
                                    **({} if row.blur_sigma is None else {"blur_sigma": row.blur_sigma}))

    def whole_frame_blur(self, pixel_rows: dict[str, PixelRowSpec], stores: list[str]) -> dict[str, list[str]]:
        """The blur rows that blur the whole frame of some of ``stores`` (no box file for them), unlike the paper's
        blur of the person boxes: row label -> those stores."""
        from featstore.pixel_transform_config import BOX_TRANSFORMS, BOXES_REQUIRED

        unboxed = [store for store in stores if named_path(self.recipe, store, self.boxes) is None]
        return {label: unboxed for label, row in pixel_rows.items()
                if row.transform in BOX_TRANSFORMS and row.transform not in BOXES_REQUIRED and unboxed}

    def anon_path(self, store: str, label: str = "anonymized") -> Path:
        folder = self.out / "anonymized" / self.encoder
        return (folder if label == ANONYMIZED else folder / slug(label)) / f"{store}.zarr"


class StepLog:
    """``steps.json``: step name -> the fingerprint it finished with."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, str] = {}
        if path.is_file():
            try:
                self.entries = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise FeatstoreError(f"{path} is not valid JSON ({exc}): remove it to redo every step") from None

    def finished(self, step: str, fingerprint: str, output: Path) -> bool:
        return self.entries.get(step) == fingerprint and output.exists()

    def finish(self, step: str, fingerprint: str) -> None:
        self.entries[step] = fingerprint
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.entries, indent=2, sort_keys=True) + "\n")
        partial.replace(self.path)  # atomic: a killed run leaves the old record or the new one


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def weights_identity(weights: str | None) -> dict | None:
    """A checkpoint by path, size and modification time (hashing a multi-GB file on every run is too slow)."""
    if weights is None:
        return None
    stat = Path(weights).stat()
    return {"path": str(Path(weights).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def run_recipe(run: RecipeRun, console: Console | None = None) -> Path:
    """Check the inputs, print the plan, run (or resume) every step; returns the table's markdown file."""
    console = console or Console()
    recipe = run.recipe
    swept = recipe.sweep.settings() if recipe.sweep else []
    # the same setting, or the section holding it, or a field of a swept section
    clash = [(key, name) for key in run.train_overrides for name in swept
             if name.partition(".")[0] == key.partition(".")[0] and (key == name or "." not in key or "." not in name)]
    if clash:
        raise FeatstoreError(f"--set {clash[0][0]} would overwrite the setting recipe {recipe.name!r} sweeps "
                             f"({clash[0][1]})")
    for key in run.train_overrides:
        if key in RUN_OPTIONS:
            raise FeatstoreError(f"--set {key}: {RUN_OPTIONS[key]}")
    for _, overrides in variants(recipe):
        training_config(run, {}, overrides)  # wrong settings fail first: they need no data to check
    pixel_rows = run.pixel_rows()
    evaluated_stores = list(dict.fromkeys(evaluation.store for evaluation in recipe.evaluate))
    pixel_columns = pixel_evaluations(recipe) if pixel_rows else []
    pixel_stores = list(dict.fromkeys(evaluation.store for evaluation in pixel_columns))  # extracted again per row
    plans = check_inputs(recipe, run.encoder, run.weights, run.data_root, run.roots, pixel_rows, pixel_stores,
                         run.boxes)
    console.rule(f"recipe {recipe.name}: {run.encoder}")
    speed = measure_clips_per_second(run.encoder, run.weights, run.device)
    for line in describe_plan(plans, speed, {label: pixel_stores for label in pixel_rows}):
        console.print(line, highlight=False, soft_wrap=True)
    whole_frame = run.whole_frame_blur(pixel_rows, pixel_stores)
    for label, stores in whole_frame.items():
        console.print(f"{label}: no --boxes for {', '.join(stores)}: the whole frame is blurred there (the paper "
                      f"blurs person boxes)", highlight=False, soft_wrap=True)
    try:
        run.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FeatstoreError(f"cannot create --out {run.out}: {error.strerror}") from None
    (run.out / RECIPE_FILE).write_text(json.dumps({"recipe": recipe.name, "source": str(recipe.path),
                                                   "encoder": run.encoder, "weights": run.weights,
                                                   "train_overrides": run.train_overrides,
                                                   "eval_epochs": run.eval_epochs, "seed": run.seed,
                                                   "pixel_baselines": list(pixel_rows),
                                                   "boxes": {name: str(path) for name, path in run.boxes.items()}},
                                                  indent=2) + "\n")
    log = StepLog(run.out / STEPS_FILE)

    extracted = {store: extract_step(run, plan, log, console) for store, plan in plans.items()}
    results: dict[tuple[str, str], dict] = {}
    for evaluation in recipe.evaluate:
        if evaluation.key not in results:
            results[evaluation.key] = {}
            results[evaluation.key]["raw"] = evaluate_step(run, evaluation, plans[evaluation.store].root, "raw",
                                                           run.store_path(evaluation.store), extracted[evaluation.store],
                                                           log, console)
    run_dirs = []
    for label, overrides in variants(recipe):
        config = training_config(run, extracted, overrides)
        run_dir, trained = train_step(run, config, label, log, console)
        run_dirs.append(run_dir)
        for store in evaluated_stores:
            exported = export_step(run, store, label, run_dir, trained, extracted[store], log, console)
            for evaluation in recipe.evaluate:
                if evaluation.store == store and label not in results[evaluation.key]:
                    results[evaluation.key][label] = evaluate_step(run, evaluation, plans[store].root, label,
                                                                   run.anon_path(store, label), exported, log, console,
                                                                   anonymized=True)
    for label, row in pixel_rows.items():  # their columns again on stores extracted from transformed frames
        for store in pixel_stores:
            transformed = extract_step(run, plans[store], log, console, label, run.pixel_transform(row, store))
            for evaluation in pixel_columns:
                if evaluation.store == store and label not in results[evaluation.key]:
                    results[evaluation.key][label] = evaluate_step(run, evaluation, plans[store].root, label,
                                                                   run.store_path(store, label), transformed, log,
                                                                   console)
    tradeoff = tradeoff_step(run, results, run_dirs, console) if recipe.tradeoff else None
    table = write_table(recipe, run.encoder, results, run.out, tradeoff, list(pixel_rows), whole_frame)
    console.print(table.read_text(), highlight=False, markup=False, soft_wrap=True)
    console.print(f"table: {table}")
    return table


def variants(recipe: Recipe) -> list[tuple[str, dict]]:
    """(row label, training settings over the recipe's) per anonymizer: one per sweep value, or one."""
    if recipe.sweep is None:
        return [(ANONYMIZED, {})]
    return list(recipe.sweep.variants().items())


def step_name(kind: str, label: str, *parts: str) -> str:
    """``train``, ``export STORE``, ...; a sweep's steps carry their row label."""
    return " ".join([kind, *parts] + ([] if label == ANONYMIZED else [f"[{label}]"]))


def extract_step(run: RecipeRun, plan: DatasetPlan, log: StepLog, console: Console, pixel_row: str | None = None,
                 pixel_transform=None) -> str:
    """Extract one dataset (resumes a killed extraction), or (``pixel_row``) extract it from frames transformed by
    ``pixel_transform`` (a PixelTransformConfig); returns the step's fingerprint."""
    from featstore.extract import ExtractConfig, extract

    spec = run.recipe.datasets[plan.store]
    out = run.store_path(plan.store, pixel_row)
    transform = {} if pixel_transform is None else {"pixel_transform": pixel_transform}
    config = ExtractConfig(model=run.encoder, dataset=spec.dataset, data_root=str(plan.root), fold=spec.fold,
                           out=str(out), weights=run.weights, seed=run.seed, device=run.device,
                           overwrite=True, **transform)  # the recipe owns --out: a store of other settings is redone
    # what defines the numbers (not where they are written, nor the device; the weights by their hash; a transform
    # by its identity, the box file by its content)
    settings = {key: value for key, value in config.to_json().items()
                if key not in ("out", "data_root", "weights", "device", "workers", "overwrite")}
    if config.pixel_transform.active:
        settings["pixel_transform"] = config.pixel_transform.identity()
    step = step_name("extract", ANONYMIZED if pixel_row is None else pixel_row, plan.store)
    print_ = fingerprint(settings, plan.manifest.fingerprint(), weights_identity(run.weights))
    if log.finished(step, print_, out):
        console.print(f"skip {step}: done with these inputs and settings")
        return print_
    console.rule(step)
    result = extract(config, show_progress=run.show_progress)
    console.print(f"{step.removeprefix('extract ')}: {result.n_videos} videos, {result.n_clips} clips, "
                  f"{result.n_failed} failed, {result.seconds:.1f}s")
    log.finish(step, print_)
    return print_


def training_config(run: RecipeRun, extracted: dict[str, str], overrides: dict):
    """The recipe's TrainConfig with the sweep's ``overrides`` and the command line's on top; its run folder is
    named by the step's fingerprint."""
    from anonymize.config import TrainConfig

    spec = run.recipe.train
    settings = with_settings(with_settings({**spec.settings, "tasks": spec.tasks}, overrides), run.train_overrides)
    tasks = settings["tasks"]  # a sweep row may choose other tasks (paper Table 5); stores by recipe name
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or task.get("store") not in run.recipe.datasets:
            raise FeatstoreError(f"tasks[{index}]: a mapping with a name and a store among "
                                 f"{', '.join(run.recipe.datasets)}, got {task!r}")
    settings = {**settings, "seed": run.seed, "device": run.device,
                "progress": run.show_progress, "store": str(run.store_path(spec.store)), "out": ""}
    settings["tasks"] = [{**task, "store": str(run.store_path(task["store"]))} for task in tasks]
    config = TrainConfig.from_settings(settings)
    inputs = sorted({spec.store, *(task["store"] for task in tasks)})
    print_ = fingerprint(config.training_settings(), [extracted.get(store) for store in inputs])
    config.out = str(run.out / "runs" / run.encoder / f"aam-{print_[:12]}")
    return config


def with_settings(settings: dict, overrides: dict) -> dict:
    """``settings`` with ``overrides`` on top; a dotted key (``aam.heads``) sets one field of a section."""
    merged = dict(settings)
    for key, value in overrides.items():
        section, dot, field_name = key.partition(".")
        if dot:
            current = merged.get(section, {})
            if not isinstance(current, dict):
                raise FeatstoreError(f"training setting {key}: {section} is not a section")
            merged[section] = {**current, field_name: value}
        else:
            merged[key] = value
    return merged


def train_step(run: RecipeRun, config, label: str, log: StepLog, console: Console) -> tuple[Path, str]:
    from anonymize.checkpoint import CONFIG_FILE
    from anonymize.train import train

    out = Path(config.out)
    step, print_ = step_name("train", label), out.name
    if log.finished(step, print_, out / CONFIG_FILE):
        console.print(f"skip {step}: {out} done with these inputs and settings")
        return out, print_
    console.rule(f"train the anonymizer: {out}")
    train(config, resume=(out / CONFIG_FILE).is_file(), show_progress=run.show_progress)
    log.finish(step, print_)
    return out, print_


def export_step(run: RecipeRun, store: str, label: str, run_dir: Path, trained: str, extracted: str, log: StepLog,
                console: Console) -> str:
    from anonymize.export import export_store

    step, print_ = step_name("export", label, store), fingerprint(trained, extracted)
    if log.finished(step, print_, run.anon_path(store, label)):
        console.print(f"skip {step}: done with these inputs and settings")
        return print_
    console.rule(step)
    result = export_store(run_dir, run.store_path(store), run.anon_path(store, label), device=run.device,
                          overwrite=True)
    console.print(f"{store}: {result.out}  {result.rows} rows, {result.seconds:.1f}s")
    log.finish(step, print_)
    return print_


def protocol_settings(run: RecipeRun, evaluation: EvalSpec, root: Path, path: Path, labels_from: str | None):
    """The protocol's config: the report's official presets (``--eval-epochs`` over them), the evaluation's
    test split and options."""
    from evaluate.protocols import bias
    from pipelines.report import protocol_config
    from pipelines.report_command import ReportConfig

    epochs = run.eval_epochs
    options = evaluation.settings(root)
    if evaluation.protocol == "bias":  # not in the report: the linear probe's preset, the options name the table
        try:
            return bias.BiasConfig(seed=run.seed, device=run.device, labels_from=labels_from,
                                   **({} if epochs is None else {"epochs": epochs}), **options)
        except TypeError:
            raise FeatstoreError(f"recipe {run.recipe.name!r}: bias has no setting among {sorted(options)}") from None
    report_config = ReportConfig(
        raw=[str(run.store_path(evaluation.store))], anon=[str(path)], seed=run.seed, device=run.device,
        **({} if epochs is None else dict(ar_epochs=epochs, privacy_epochs=epochs, vp_epochs=epochs,
                                          tad_epochs=epochs, ad_steps=epochs)))
    config = protocol_config(evaluation.protocol, report_config, labels_from=labels_from)
    if evaluation.test_split is not None:
        options["test_split"] = evaluation.test_split
    try:
        return replace(config, **options)
    except TypeError:
        raise FeatstoreError(f"recipe {run.recipe.name!r}: {evaluation.protocol} has no setting among "
                             f"{sorted(options)}") from None


def evaluate_step(run: RecipeRun, evaluation: EvalSpec, root: Path, label: str, path: Path, input_print: str,
                  log: StepLog, console: Console, anonymized: bool = False) -> dict:
    """One protocol on one store (``label``: raw, a pixel baseline's row, or the anonymized row it belongs to):
    its metrics."""
    from evaluate.data import open_store
    from evaluate.results import save_result
    from pipelines.report import PROTOCOL_MODULES

    store, protocol = evaluation.store, evaluation.protocol
    # an export drops the private labels: the attribute protocols read them from the raw store
    config = protocol_settings(run, evaluation, root, path, str(run.store_path(store)) if anonymized else None)
    role = "anon" if anonymized else "raw"
    name = evaluation.name  # one per result: two evaluations of a protocol on one store never share a file
    step = step_name("evaluate", ANONYMIZED if label == "raw" else label, name, store, role)
    print_ = fingerprint({key: value for key, value in asdict(config).items() if key != "device"}, input_print)
    folder = run.out / "results" / store / ("" if label in ("raw", ANONYMIZED) else slug(label))
    out = folder / f"{slug(name.replace(' ', '-'))}-{role}.json"
    if log.finished(step, print_, out):
        console.print(f"skip {step}: done with these inputs and settings")
        return json.loads(out.read_text())["metrics"]
    console.rule(step)
    source = open_store(path)
    module = PROTOCOL_MODULES.get(protocol) or import_module(f"evaluate.protocols.{protocol}")
    metrics = module.run(source, config, show_progress=run.show_progress)
    save_result(out.parent, out.stem, config, metrics, source)
    log.finish(step, print_)
    return metrics


def tradeoff_step(run: RecipeRun, results: dict[tuple, dict], run_dirs: list[Path], console: Console) -> dict:
    """The trade-off of raw and the sweep's rows from the table's own results (the recipe's ``tradeoff`` columns):
    the points, the Pareto front, the normalized hypervolume and ``tradeoff.png`` in --out (pipelines.tradeoff)."""
    from anonymize.baselines import describe_run
    from pipelines import tradeoff
    from pipelines.report import lookup
    from pipelines.tradeoff_command import PLOT_FILE, TradeoffConfig

    console.rule("trade-off")
    columns = {evaluation.column: evaluation for evaluation in run.recipe.evaluate}
    utility, privacy = columns[run.recipe.tradeoff.utility], columns[run.recipe.tradeoff.privacy]

    def value(evaluation: EvalSpec, label: str) -> float:
        number = lookup(results[evaluation.key][label], evaluation.metric_path)
        if number is None:
            raise FeatstoreError(f"recipe {run.recipe.name!r}, trade-off column {evaluation.column}: no number at "
                                 f"{evaluation.metric!r} in the {evaluation.protocol} result of row {label}")
        return number

    points = []
    for (label, _), run_dir in zip(variants(run.recipe), run_dirs):
        described = describe_run(run_dir)
        points.append({"name": label, "tag": label, "run": str(run_dir), "kind": described["kind"],
                       "method": described["method"], "supervised": described["supervised"],
                       "utility": value(utility, label), "privacy": value(privacy, label)})
    raw = {"utility": value(utility, "raw"), "privacy": value(privacy, "raw")}
    return tradeoff.summarize(
        points, {"utility": TradeoffConfig.reference_utility, "privacy": TradeoffConfig.reference_privacy}, raw=raw,
        utility_metric=f"{utility.column} ({utility.protocol} {utility.metric})",
        privacy_metric=f"{privacy.column} ({privacy.protocol} {privacy.metric})",
        chance=tradeoff.chance_levels(results[utility.key]["raw"], results[privacy.key]["raw"]),
        plot=run.out / PLOT_FILE)
