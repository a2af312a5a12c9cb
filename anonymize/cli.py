"""``anonymize`` command line: train the AAM on a store, export an anonymized store, inspect a run.

Stores and run folders are local paths or fsspec URLs (``file://``, ``memory://``, ``s3://`` ...); a training
run writes its folder as it goes, so that one is local (a path or a ``file://`` URL).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from data_manifests.errors import FeatstoreError
from evaluate.options import progress_option
from featstore.cli import DATA_PANEL, MODEL_PANEL, OBJECTIVE_PANEL, OPTIMIZATION_PANEL, OUTPUT_PANEL, run_app, tool_app

TRAIN_HELP = "Train (or --resume) the anonymizer on a store."
BASELINE_HELP = "Fit a latent baseline on a store's train split: a run folder that export, info and evaluate accept."


class AnonymizeGroup(TyperGroup):
    """``train`` and ``baseline`` are defined when they are resolved: their options show the defaults of the
    dataclasses that define them, and importing those imports torch (seconds), which ``anonymize --help``
    must not."""

    LAZY = {"train": TRAIN_HELP, "baseline": BASELINE_HELP}

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.commands = {**{name: TyperCommand(name, help=text) for name, text in self.LAZY.items()}, **self.commands}

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if name == "train":
            command = train_command()
        elif name == "baseline":
            command = baseline_command()
        return name, command, rest


app = tool_app("anonymize", help="Anonymizing Adapter Module: train on a feature store, export anonymized stores.",
               cls=AnonymizeGroup)
console = Console()

# CLI option -> (config section, field)
AAM_OPTIONS = {"aam_architecture": "architecture", "aam_layers": "layers", "aam_heads": "heads",
               "aam_block": "block", "aam_ffn_ratio": "ffn_ratio", "aam_dropout": "dropout",
               "aam_mode": "mode", "aam_window": "window", "aam_output_floor": "output_floor",
               "aam_output_centre": "output_centre", "aam_output_rank": "output_rank"}
IDENTITY_OPTIONS = {"identity_init": "preset", "identity_loss": "loss", "identity_lr": "lr",
                    "identity_epochs": "epochs"}
# the options that name a task's store, weight and starting head: task -> (store, weight, head)
TASK_OPTIONS = {"action": ("store", "w_action", None), "tad": ("tad_store", "w_tad", "tad_head"),
                "ad": ("ad_store", "w_ad", None)}


def field_defaults(cls) -> dict:
    """A dataclass's field defaults (what the options show; the dataclass defines each default once)."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def train_command() -> TyperCommand:
    """The ``train`` subcommand; its options show the defaults of TrainConfig, AAMConfig, IdentityInit and TaskSpec.

    Every option's value reaches the config only when given on the command line (click's parameter source):
    otherwise the --config file's, the resumed run's or the dataclass's value holds.
    """
    from anonymize.config import LR_SCALINGS, LR_SCHEDULES, AAMConfig, IdentityInit, TaskSpec, TrainConfig

    default, identity = field_defaults(TrainConfig), field_defaults(IdentityInit)
    aam = field_defaults(AAMConfig)
    weight = field_defaults(TaskSpec)["weight"]
    command_app = typer.Typer(add_completion=False)

    def option(value, help: str, panel: str, *names: str):
        return typer.Option(value, *names, help=help, rich_help_panel=panel)

    @command_app.command(name="train", help=TRAIN_HELP)
    def train(
        ctx: typer.Context,
        config: Optional[Path] = option(None, "JSON or YAML file of TrainConfig settings (the keys of a run's "
                                              "config.json, any left out); the options given here override it.",
                                              DATA_PANEL),
        store: Optional[str] = option(None, "Training store (action labels + static clips), a path or an fsspec "
                                            "URL; required for a new run (here or in --config).", DATA_PANEL),
        tad_store: Optional[str] = option(None, "Store for the TAD utility task (needs the 'tad' task).", DATA_PANEL),
        ad_store: Optional[str] = option(None, "Store for the AD utility task (needs the 'ad' task).", DATA_PANEL),
        tad_head: Optional[str] = option(None, "A TriDet head saved by `evaluate tad` (--save-head) to start the TAD "
                                               "task from, instead of training one with TriDet's recipe.", DATA_PANEL),
        row_source: str = option(default["row_source"], "memory (load rows) or stream (read Zarr chunks).", DATA_PANEL),
        stream_cache_chunks: int = option(default["stream_cache_chunks"],
                                          "Streaming: decoded chunks cached per array (shuffle window = half).",
                                          DATA_PANEL),
        aam_architecture: str = option(aam["architecture"], "attention or mlp.", MODEL_PANEL),
        aam_layers: int = option(aam["layers"], "AAM layers: 1, 3 or 5 in the paper.", MODEL_PANEL),
        aam_heads: int = option(aam["heads"], "Attention heads: 4, 8 or 16 in the paper.", MODEL_PANEL),
        aam_block: str = option(aam["block"], "transformer (LN + attention + FFN) or attention-only (authors' code).",
                                MODEL_PANEL),
        aam_ffn_ratio: float = option(aam["ffn_ratio"], "Feed-forward hidden size / dim.", MODEL_PANEL),
        aam_dropout: float = option(aam["dropout"], "MLP AAM dropout.", MODEL_PANEL),
        aam_mode: str = option(aam["mode"], "clip (batch-independent) or temporal (attention over a video's clips).",
                               MODEL_PANEL),
        aam_window: int = option(aam["window"], "Temporal mode: clips attended each side per layer.", MODEL_PANEL),
        aam_output_floor: float = option(aam["output_floor"], "After training, drop the output directions whose "
                                         "variance over the train clips is under this x the mean (0: keep all).",
                                         MODEL_PANEL),
        aam_output_centre: bool = option(aam["output_centre"], "After training, subtract the mean output over the "
                                         "train clips (MGFN-style AD reads feature magnitudes).", MODEL_PANEL),
        aam_output_rank: int = option(aam["output_rank"], "After training, keep at most this many of the largest "
                                      "output directions the floor keeps (0: no cap).", MODEL_PANEL),
        identity_init: str = option(identity["preset"], "paper (L1, 2e-5, 100 ep), code (MSE, 1e-4, 500 ep), "
                                                        "zero (exact), none.", MODEL_PANEL),
        identity_loss: Optional[str] = option(None, "Override the preset's identity loss: mse, l1, l2 (not given: "
                                                    "the preset's).", MODEL_PANEL),
        identity_lr: Optional[float] = option(None, "Override the preset's identity learning rate (not given: the "
                                                    "preset's).", MODEL_PANEL),
        identity_epochs: Optional[int] = option(None, "Override the preset's identity epochs (not given: the "
                                                      "preset's).", MODEL_PANEL),
        w_action: float = option(weight, "Weight w_t of the action task.", OBJECTIVE_PANEL),
        w_tad: float = option(weight, "Weight w_t of the TAD task.", OBJECTIVE_PANEL),
        w_ad: float = option(weight, "Weight w_t of the AD task.", OBJECTIVE_PANEL),
        w_utility: float = option(default["w_utility"], "w_T.", OBJECTIVE_PANEL),
        utility_target: str = option(default["utility_target"], "labels (paper: cross-entropy, heads trained jointly) "
                                     "or raw-head (heads frozen after their raw init; keep their outputs).",
                                     OBJECTIVE_PANEL),
        w_budget: float = option(default["w_budget"], "w_B.", OBJECTIVE_PANEL),
        w_lc: float = option(default["w_lc"], "w_LC.", OBJECTIVE_PANEL),
        lc_distance: str = option(default["lc_distance"], "Latent consistency distance: mse (code), l1, l2 (paper).",
                                  OBJECTIVE_PANEL),
        lc_inputs: str = option(default["lc_inputs"], "Rows under latent consistency: clips or clips+static.",
                                OBJECTIVE_PANEL),
        w_within_video: float = option(default["w_within_video"], "Within-video consistency weight: f(x_a) - f(x_b) "
                                       "~ x_a - x_b for two clips of a video (beyond the paper).", OBJECTIVE_PANEL),
        budget_mode: str = option(default["budget_mode"], "direct, adversarial, supervised, none (static pairs); "
                                  "cross-view, bottleneck, supervised-clips, independence (full clips).",
                                  OBJECTIVE_PANEL),
        budget_inputs: str = option(default["budget_inputs"], "static (paper) or static+clips.", OBJECTIVE_PANEL),
        budget_clips: str = option(default["budget_clips"], "Full-clip modes: one (a random clip of each video per "
                                   "step) or video-mean (the mean over all of its clips).", OBJECTIVE_PANEL),
        temperature: float = option(default["temperature"], "NT-Xent temperature.", OBJECTIVE_PANEL),
        ntxent_objective: str = option(default["ntxent_objective"], "direct/adversarial: maximize (paper) or "
                                       "to-uniform (centred NT-Xent brought to log(2N-1); beyond the paper).",
                                       OBJECTIVE_PANEL),
        supervised_objective: str = option(default["supervised_objective"], "Supervised budget: maximize (BCE) or "
                                           "confusion (predictions to 1/2).", OBJECTIVE_PANEL),
        budget_hidden: int = option(default["budget_hidden"], "Adversarial budget head hidden size.", OBJECTIVE_PANEL),
        budget_proj: int = option(default["budget_proj"], "Adversarial budget head output size.", OBJECTIVE_PANEL),
        budget_steps: int = option(default["budget_steps"], "Adversary updates per anonymizer update.",
        OBJECTIVE_PANEL),
        budget_restart_every: int = option(default["budget_restart_every"], "Re-initialize the adversary every N "
                                           "epochs; 0 = never.", OBJECTIVE_PANEL),
        critic_hidden: int = option(default["critic_hidden"], "cross-view: critic MLP hidden size.", OBJECTIVE_PANEL),
        critic_proj: int = option(default["critic_proj"], "cross-view: critic projection size.", OBJECTIVE_PANEL),
        critic_temperature: float = option(default["critic_temperature"], "cross-view: critic InfoNCE temperature.",
                                           OBJECTIVE_PANEL),
        critic_objective: str = option(default["critic_objective"], "cross-view: the AAM's term, confusion (critic "
                                       "to chance) or maximize (its InfoNCE).", OBJECTIVE_PANEL),
        bottleneck_noise: float = option(default["bottleneck_noise"], "bottleneck: channel noise std, x each dim's "
                                         "raw clip std.", OBJECTIVE_PANEL),
        bottleneck_with_ntxent: bool = option(default["bottleneck_with_ntxent"], "bottleneck: add the direct NT-Xent "
                                              "budget on static pairs.", OBJECTIVE_PANEL),
        adversary_ensemble: int = option(default["adversary_ensemble"], "supervised-clips: attribute MLPs in the "
                                         "ensemble.", OBJECTIVE_PANEL),
        independence_kernels: str = option(default["independence_kernels"], "independence: kernels of the "
                                           "dependence measure, gaussian or gaussian+linear.", OBJECTIVE_PANEL),
        independence_shrinkage: float = option(default["independence_shrinkage"], "independence: covariance "
                                               "shrinkage of the whitening, x the mean variance.", OBJECTIVE_PANEL),
        independence_given: str = option(default["independence_given"], "independence: nothing, or labels (given the "
                                         "utility labels: each batch centred per class).", OBJECTIVE_PANEL),
        independence_estimator: str = option(default["independence_estimator"], "independence: the HSIC estimate, "
                                             "biased or unbiased (no reward for a low output rank).", OBJECTIVE_PANEL),
        static_noise: float = option(default["static_noise"], "Latent augmentation: Gaussian noise on static clips, "
                                     "x per-dim std.", OBJECTIVE_PANEL),
        static_feature_dropout: float = option(default["static_feature_dropout"], "Latent augmentation: feature "
                                               "dropout on static clips.", OBJECTIVE_PANEL),
        epochs: int = option(default["epochs"], "Anonymization epochs.", OPTIMIZATION_PANEL),
        batch_size: int = option(default["batch_size"], "Videos per step.", OPTIMIZATION_PANEL),
        lr: float = option(default["lr"], "Learning rate of the AAM and the task heads, as given (see --lr-scaling).",
                           OPTIMIZATION_PANEL),
        lr_scaling: str = option(default["lr_scaling"], f"{' or '.join(LR_SCALINGS)}: linear is the paper's rule, "
                                 "--lr x --batch-size / --lr-reference-batch.", OPTIMIZATION_PANEL),
        lr_reference_batch: int = option(default["lr_reference_batch"], "The batch size --lr is given for, with "
                                         "--lr-scaling linear.", OPTIMIZATION_PANEL),
        lr_schedule: str = option(default["lr_schedule"], f"{' or '.join(LR_SCHEDULES)}: cosine anneals the AAM's and "
                                  "the heads' learning rate from --lr to 0 over --epochs.", OPTIMIZATION_PANEL),
        budget_lr: Optional[float] = option(None, "Adversary learning rate (not given: the AAM's).",
        OPTIMIZATION_PANEL),
        head_init_epochs: int = option(default["head_init_epochs"], "Epochs of action/AD head training on raw "
                                       "features (the TAD head follows TriDet's schedule).", OPTIMIZATION_PANEL),
        head_init_lr: float = option(default["head_init_lr"], "Learning rate of the action/AD head init.",
                                     OPTIMIZATION_PANEL),
        weight_decay: float = option(default["weight_decay"], "AdamW weight decay.", OPTIMIZATION_PANEL),
        seed: int = option(default["seed"], "Random seed.", OPTIMIZATION_PANEL),
        device: str = option(default["device"], "auto, cpu, cuda or cuda:N.", OPTIMIZATION_PANEL),
        run: Optional[str] = option(None, "Run folder (config, checkpoints, aam.safetensors): a local path or a "
                                          "file:// URL; required unless --config names it (out).",
                                          OUTPUT_PANEL, "--run",
                                    "--out"),
        resume: bool = option(False, "Continue the run in --run from its last checkpoint.", OUTPUT_PANEL),
        validate_every: int = option(default["validate_every"], "Validate every N epochs; 0 = never.", OUTPUT_PANEL),
        progress: bool = option(default["progress"], "Show the progress bar.", OUTPUT_PANEL),
    ) -> None:
        # typer vendors its own click: its ParameterSource is compared by name
        given = {name: value for name, value in ctx.params.items()
                 if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"}
        train_with(given)

    return typer.main.get_command(command_app)


def train_with(given: dict) -> None:
    """``anonymize train`` with the options the command line gave (``given``: option name -> value)."""
    from anonymize.checkpoint import writable_run
    from anonymize.config import TrainConfig, checked_train_settings, read_config_file
    from anonymize.resume import resume_config
    from anonymize.train import train as run_train

    settings = checked_train_settings(read_config_file(given["config"])) if "config" in given else {}
    run = given.get("run", settings.pop("out", None))
    if run is None:
        raise FeatstoreError("--run is required (the run folder; or `out` in the --config file)")
    resume = given.get("resume", False)
    settings.update({name: value for name, value in given.items()
                     if name in TrainConfig.__dataclass_fields__ and name not in ("store", "out")})
    for options, section in ((AAM_OPTIONS, "aam"), (IDENTITY_OPTIONS, "identity")):
        values = {field: given[option] for option, field in options.items() if option in given}
        if values:
            settings[section] = {**settings.get(section, {}), **values}
    if "store" in given:
        settings["store"] = given["store"]
    if "store" in settings:
        settings["tasks"] = task_settings(settings.get("tasks", []), settings["store"], given)
    elif any(name in given for names in TASK_OPTIONS.values() for name in names if name):
        raise FeatstoreError("the task options need --store (on --resume they must match the saved run)")
    if not resume and "store" not in settings:
        raise FeatstoreError("--store is required to start a run")
    with writable_run(run, resume) as folder:
        config = (resume_config(folder, settings) if resume
                  else TrainConfig.from_settings({**settings, "out": str(folder)}))
        result = run_train(config, resume=resume)
    last = result.history[-1]
    console.print(f"[bold]{run}[/]: {result.epochs_done} epochs; aam sha256 {result.aam_sha256[:16]}")
    if "val" in last:
        console.print("validation: " + ", ".join(f"{k} {v:.4f}" for k, v in last["val"].items()))


def flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def task_settings(tasks: list, store: str, given: dict) -> list[dict]:
    """The utility tasks: the --config file's (else action on ``store``), with the task options given on top.

    Every TaskSpec field is written, so that a resume compares them with the saved run's tasks one to one."""
    from anonymize.config import TaskSpec

    spec = {"weight": field_defaults(TaskSpec)["weight"], "head": None}
    by_name = {}
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise FeatstoreError(f"training config tasks[{index}]: expected a mapping, got {task!r}")
        if task.get("name") in by_name:
            raise FeatstoreError(f"training config tasks[{index}]: task {task.get('name')!r} appears twice")
        by_name[task.get("name")] = {**spec, **task}
    if not by_name:
        by_name["action"] = {"name": "action", "store": store, **spec}
    for name, (store_option, weight_option, head_option) in TASK_OPTIONS.items():
        task_store = store if name == "action" and "store" in given else given.get(store_option)
        options = {key: option for key, option in (("weight", weight_option), ("head", head_option))
                   if option in given}
        if task_store is None and not options:
            continue
        if name not in by_name:
            if task_store is None:
                raise FeatstoreError(f"{flag(next(iter(options.values())))} needs {flag(store_option)} (the store "
                                     f"the {name} task trains on)")
            by_name[name] = {"name": name, "store": task_store, **spec}
        values = {key: given[option] for key, option in options.items()}
        if task_store is not None:
            by_name[name]["store"] = task_store
        by_name[name].update(values)
    return list(by_name.values())


@app.command()
def export(
    run: str = typer.Option(..., help="Run folder written by `anonymize train` or `anonymize baseline` (a path or an "
                                      "fsspec URL).", rich_help_panel=DATA_PANEL),
    store: str = typer.Option(..., help="Store to anonymize (same encoder as the training store; a path or an fsspec "
                                        "URL).", rich_help_panel=DATA_PANEL),
    out: str = typer.Option(..., help="Anonymized store to write (a path or an fsspec URL).",
                            rich_help_panel=OUTPUT_PANEL),
    overwrite: bool = typer.Option(False, help="Replace an existing --out.", rich_help_panel=OUTPUT_PANEL),
    keep_private_labels: bool = typer.Option(False, "--keep-private-labels",
                                             help="Keep the attribute labels, subject ids and source paths (in-house "
                                                  "evaluation); by default they are dropped (evaluate joins them from "
                                                  "the raw store: --labels-from).", rich_help_panel=OUTPUT_PANEL),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    batch_rows: int = typer.Option(4096, help="Rows per AAM forward."),
    progress: bool = progress_option(),
) -> None:
    """Apply a trained AAM to every clip and static embedding of a store."""
    from anonymize.export import export_store

    result = export_store(run, store, out, device=device, batch_rows=batch_rows, overwrite=overwrite,
                          keep_private_labels=keep_private_labels, show_progress=progress)
    console.print(f"[bold]{result.out}[/]: {result.rows} rows anonymized in {result.seconds:.1f}s "
                  f"({result.rows / max(result.seconds, 1e-9):.0f} rows/s); aam sha256 {result.aam_sha256[:16]}; "
                  f"private labels {'kept' if keep_private_labels else 'dropped'}")


def baseline_command() -> TyperCommand:
    """The ``baseline`` subcommand; a method option left out takes the method's default (baselines.DEFAULTS)."""
    from anonymize.baselines import DEFAULTS, FIT_ROWS, METHODS

    command_app = typer.Typer(add_completion=False)

    @command_app.command(name="baseline", help=BASELINE_HELP)
    def baseline(
        store: str = typer.Option(..., help="Store to fit on (its train split's clips; a path or an fsspec URL).",
                                  rich_help_panel=DATA_PANEL),
        fit_rows: Optional[str] = typer.Option(None, help=f"leace, inlp: fit on {' or '.join(FIT_ROWS)}.",
                                               show_default=DEFAULTS["fit_rows"], rich_help_panel=DATA_PANEL),
        max_rows: Optional[int] = typer.Option(None, help="inlp: rows subsampled for the classifiers.",
                                               show_default=str(DEFAULTS["max_rows"]), rich_help_panel=DATA_PANEL),
        method: str = typer.Option(..., help=f"{', '.join(METHODS)} (leace and inlp read the private attribute "
                                             "labels: supervised).", rich_help_panel=MODEL_PANEL),
        components: Optional[int] = typer.Option(None, help="pca, random-projection, static-cca (required): "
                                                            "dimensions kept (static-cca: erased), k in [1, D].",
                                                 rich_help_panel=MODEL_PANEL),
        noise_fraction: Optional[float] = typer.Option(None, help="gaussian-noise: noise std / each dimension's "
                                                                  "train std.",
                                                       show_default=str(DEFAULTS["noise_fraction"]),
                                                       rich_help_panel=MODEL_PANEL),
        iterations: Optional[int] = typer.Option(None, help="inlp: nullspace projection iterations.",
                                                 show_default=str(DEFAULTS["iterations"]), rich_help_panel=MODEL_PANEL),
        shrinkage: Optional[float] = typer.Option(None, help="lda-action: within-class covariance shrinkage in "
                                                             "[0, 1].", show_default=str(DEFAULTS["shrinkage"]),
                                                  rich_help_panel=MODEL_PANEL),
        seed: int = typer.Option(0, help="Seed (random-projection's matrix, gaussian-noise's noise, inlp's "
                                         "subsample).", rich_help_panel=MODEL_PANEL),
        run: str = typer.Option(..., "--run", "--out", help="Run folder to write (baseline.json, aam.safetensors): "
                                                            "a path or an fsspec URL.", rich_help_panel=OUTPUT_PANEL),
        overwrite: bool = typer.Option(False, help="Replace a baseline run in --run.", rich_help_panel=OUTPUT_PANEL),
    ) -> None:
        from anonymize.baselines import BaselineConfig, fit_baseline

        config = BaselineConfig(method=method, store=store, out=run, seed=seed, components=components,
                                noise_fraction=noise_fraction, iterations=iterations, shrinkage=shrinkage,
                                fit_rows=fit_rows, max_rows=max_rows)
        result = fit_baseline(config, overwrite=overwrite)
        fitted = result.config.fitted
        console.print(f"[bold]{result.run}[/]: {result.config.label} fitted on {fitted.get('rows')} rows; "
                      f"{fitted.get('dims')} of {fitted.get('dim')} dims; sha256 {result.sha256[:16]}")

    return typer.main.get_command(command_app)


@app.command()
def info(run: str = typer.Option(..., help="Run folder (a path or an fsspec URL)."),
         as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON document.")) -> None:
    """Print a run's config, losses and trainable parameter counts (a baseline's method, fit and options)."""
    from anonymize.baselines import baseline_summary, is_baseline_run
    from anonymize.checkpoint import readable_run
    from anonymize.runinfo import run_summary

    with readable_run(run) as local:
        baseline = is_baseline_run(local)
        summary = {**(baseline_summary(local) if baseline else run_summary(local)), "run": run}
    if as_json:
        console.print_json(json.dumps(summary, default=str))
    elif baseline:
        print_overview(f"anonymize baseline {summary['run']}", summary["overview"])
        console.print("fitted: " + json.dumps(summary["fitted"], sort_keys=True))
    else:
        print_run_summary(summary)


def print_overview(title: str, overview: dict) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in overview.items():
        table.add_row(key, str(value))
    console.print(table)


def print_run_summary(summary: dict) -> None:
    print_overview(f"anonymize run {summary['run']}", summary["overview"])
    params = Table("component", "trainable parameters", title="parameters", title_justify="left")
    for name, count in summary["parameters"].items():
        params.add_row(name, f"{count:,}")
    console.print(params)
    losses = Table("epoch", "loss", "utility", "privacy", "lc", "adversary", "clips/s", "validation",
                   title="losses", title_justify="left")
    for record in summary["epochs"]:
        losses.add_row(*record)
    console.print(losses)
    console.print("config: " + json.dumps(summary["config"], sort_keys=True))


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
