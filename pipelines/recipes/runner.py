"""Run a table recipe: extract every dataset, train the anonymizer, export, evaluate, write the table.

Every step has a fingerprint: a hash of its settings and of the fingerprints of the steps it reads. ``steps.json``
in ``--out`` records the fingerprint of each finished step; a rerun skips a step whose fingerprint is recorded
and whose output is there, and redoes one whose inputs or settings changed. An interrupted step continues:
extraction resumes its finished parts (featstore.extract), training resumes from its last checkpoint (its run
folder is named by its fingerprint, so a changed setting starts a new run instead of failing the resume check),
an export is written to a staging folder and renamed (anonymize.export).
"""

from __future__ import annotations

import hashlib
import json
from importlib import import_module
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rich.console import Console

from data_manifests.errors import FeatstoreError
from pipelines.recipes.loader import ANONYMIZED, EvalSpec, Recipe
from pipelines.recipes.plan import DatasetPlan, check_inputs, describe_plan, measure_clips_per_second
from pipelines.recipes.table import write_table

STEPS_FILE = "steps.json"
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

    def store_path(self, store: str) -> Path:
        return self.out / "stores" / self.encoder / f"{store}.zarr"

    def anon_path(self, store: str, label: str = "anonymized") -> Path:
        folder = self.out / "anonymized" / self.encoder
        return (folder if label == ANONYMIZED else folder / slug(label)) / f"{store}.zarr"


def slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label)


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
    plans = check_inputs(recipe, run.encoder, run.weights, run.data_root, run.roots)
    console.rule(f"recipe {recipe.name}: {run.encoder}")
    speed = measure_clips_per_second(run.encoder, run.weights, run.device)
    for line in describe_plan(plans, speed):
        console.print(line, highlight=False, soft_wrap=True)
    try:
        run.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FeatstoreError(f"cannot create --out {run.out}: {error.strerror}") from None
    (run.out / RECIPE_FILE).write_text(json.dumps({"recipe": recipe.name, "source": str(recipe.path),
                                                   "encoder": run.encoder, "weights": run.weights,
                                                   "train_overrides": run.train_overrides,
                                                   "eval_epochs": run.eval_epochs, "seed": run.seed}, indent=2) + "\n")
    log = StepLog(run.out / STEPS_FILE)

    extracted = {store: extract_step(run, plan, log, console) for store, plan in plans.items()}
    evaluated_stores = list(dict.fromkeys(evaluation.store for evaluation in recipe.evaluate))
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
                                                                   run.anon_path(store, label), exported, log, console)
    tradeoff = tradeoff_step(run, run_dirs, console) if recipe.tradeoff else None
    table = write_table(recipe, run.encoder, results, run.out, tradeoff)
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


def extract_step(run: RecipeRun, plan: DatasetPlan, log: StepLog, console: Console) -> str:
    """Extract one dataset (resumes a killed extraction); returns the step's fingerprint."""
    from featstore.extract import ExtractConfig, extract

    spec = run.recipe.datasets[plan.store]
    config = ExtractConfig(model=run.encoder, dataset=spec.dataset, data_root=str(plan.root), fold=spec.fold,
                           out=str(run.store_path(plan.store)), weights=run.weights, seed=run.seed, device=run.device,
                           overwrite=True)  # the recipe owns --out: a store of other settings there is redone
    # what defines the numbers (not where they are written, nor the device; the weights by their hash)
    settings = {key: value for key, value in config.to_json().items()
                if key not in ("out", "data_root", "weights", "device", "workers", "overwrite")}
    step, print_ = f"extract {plan.store}", fingerprint(settings, plan.manifest.fingerprint(), weights_identity(run.weights))
    if log.finished(step, print_, run.store_path(plan.store)):
        console.print(f"skip {step}: done with these inputs and settings")
        return print_
    console.rule(step)
    result = extract(config, show_progress=run.show_progress)
    console.print(f"{plan.store}: {result.n_videos} videos, {result.n_clips} clips, {result.n_failed} failed, "
                  f"{result.seconds:.1f}s")
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
                  log: StepLog, console: Console) -> dict:
    """One protocol on one store (``label`` raw, or the anonymized row it belongs to): its metrics."""
    from evaluate.data import open_store
    from evaluate.results import save_result
    from pipelines.report import PROTOCOL_MODULES

    store, protocol = evaluation.store, evaluation.protocol
    # an export drops the private labels: the attribute protocols read them from the raw store
    config = protocol_settings(run, evaluation, root, path, None if label == "raw" else str(run.store_path(store)))
    role = "raw" if label == "raw" else "anon"
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


def tradeoff_step(run: RecipeRun, run_dirs: list[Path], console: Console) -> dict:
    """The sweep's points, Pareto front and normalized hypervolume (pipelines.tradeoff; it caches its own results
    in each run folder)."""
    from pipelines import tradeoff
    from pipelines.tradeoff_command import TradeoffConfig

    console.rule("trade-off")
    epochs = run.eval_epochs
    config = TradeoffConfig(raw_store=str(run.store_path(run.recipe.train.store)), seed=run.seed, device=run.device,
                            **({} if epochs is None else dict(ar_epochs=epochs, privacy_epochs=epochs)))
    return tradeoff.run([str(path) for path in run_dirs], config, out=run.out / "tradeoff",
                        show_progress=run.show_progress)
