"""``anonymize`` command line: train the AAM on a store, export an anonymized store, inspect a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from featstore.cli import run_app, tool_app
from data_manifests.errors import FeatstoreError

app = tool_app("anonymize",
               help="Anonymizing Adapter Module: train on a feature store, export anonymized stores.")
console = Console()

# CLI option -> (config section, field). Options default to None = "not given", so that --resume can
# tell a changed setting from an omitted one.
AAM_OPTIONS = {"aam_architecture": "architecture", "aam_layers": "layers", "aam_heads": "heads",
               "aam_block": "block", "aam_ffn_ratio": "ffn_ratio", "aam_dropout": "dropout",
               "aam_mode": "mode", "aam_window": "window"}
IDENTITY_OPTIONS = {"identity_init": "preset", "identity_loss": "loss", "identity_lr": "lr",
                    "identity_epochs": "epochs"}


@app.command()
def train(
    store: Optional[Path] = typer.Option(None, help="Training store (action labels + static clips); required for a new run."),
    out: Path = typer.Option(..., help="Run folder (config, checkpoints, aam.safetensors)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    tad_store: Optional[Path] = typer.Option(None, help="Store for the TAD utility task (needs the 'tad' task)."),
    ad_store: Optional[Path] = typer.Option(None, help="Store for the AD utility task (needs the 'ad' task)."),
    tad_head: Optional[Path] = typer.Option(None, help="A TriDet head saved by `evaluate tad` (--save-head) to start "
                                                       "the TAD task from, instead of training one with TriDet's recipe."),
    w_action: Optional[float] = typer.Option(None, help="Weight w_t of the action task [1]."),
    w_tad: Optional[float] = typer.Option(None, help="Weight w_t of the TAD task [1]."),
    w_ad: Optional[float] = typer.Option(None, help="Weight w_t of the AD task [1]."),
    aam_architecture: Optional[str] = typer.Option(None, help="attention or mlp [attention]."),
    aam_layers: Optional[int] = typer.Option(None, help="AAM layers: 1, 3 or 5 in the paper [3]."),
    aam_heads: Optional[int] = typer.Option(None, help="Attention heads: 4, 8 or 16 in the paper [8]."),
    aam_block: Optional[str] = typer.Option(None, help="transformer (LN + attention + FFN) or attention-only (authors' code) [transformer]."),
    aam_ffn_ratio: Optional[float] = typer.Option(None, help="Feed-forward hidden size / dim [2]."),
    aam_dropout: Optional[float] = typer.Option(None, help="MLP AAM dropout [0.1]."),
    aam_mode: Optional[str] = typer.Option(None, help="clip (batch-independent) or temporal (attention over a video's clips) [clip]."),
    aam_window: Optional[int] = typer.Option(None, help="Temporal mode: clips attended each side per layer [2]."),
    identity_init: Optional[str] = typer.Option(None, help="paper (L1, 2e-5, 100 ep), code (MSE, 1e-4, 500 ep), zero (exact), none [paper]."),
    identity_loss: Optional[str] = typer.Option(None, help="Override the preset's identity loss: mse, l1, l2."),
    identity_lr: Optional[float] = typer.Option(None, help="Override the preset's identity learning rate."),
    identity_epochs: Optional[int] = typer.Option(None, help="Override the preset's identity epochs."),
    head_init_epochs: Optional[int] = typer.Option(None, help="Epochs of action/AD head training on raw features "
                                                              "(the TAD head follows TriDet's schedule) [100]."),
    head_init_lr: Optional[float] = typer.Option(None, help="Learning rate of the action/AD head init [1e-3]."),
    w_utility: Optional[float] = typer.Option(None, help="w_T [1]."),
    w_budget: Optional[float] = typer.Option(None, help="w_B [1]."),
    w_lc: Optional[float] = typer.Option(None, help="w_LC [100]."),
    lc_distance: Optional[str] = typer.Option(None, help="Latent consistency distance: mse (code), l1, l2 (paper) [mse]."),
    lc_inputs: Optional[str] = typer.Option(None, help="Rows under latent consistency: clips or clips+static [clips]."),
    w_within_video: Optional[float] = typer.Option(None, help="Within-video consistency weight: f(x_a) - f(x_b) ~ "
                                                               "x_a - x_b for two clips of a video (beyond the paper) [0]."),
    budget_mode: Optional[str] = typer.Option(None, help="direct, adversarial, supervised, none (static pairs); cross-view, bottleneck, supervised-clips, independence (full clips) [direct]."),
    budget_inputs: Optional[str] = typer.Option(None, help="static (paper) or static+clips [static]."),
    temperature: Optional[float] = typer.Option(None, help="NT-Xent temperature [0.1]."),
    ntxent_objective: Optional[str] = typer.Option(None, help="direct/adversarial: maximize (paper) or to-uniform (centred NT-Xent brought to log(2N-1); beyond the paper) [maximize]."),
    supervised_objective: Optional[str] = typer.Option(None, help="Supervised budget: maximize (BCE) or confusion (predictions to 1/2) [maximize]."),
    budget_hidden: Optional[int] = typer.Option(None, help="Adversarial budget head hidden size [2048]."),
    budget_proj: Optional[int] = typer.Option(None, help="Adversarial budget head output size [128]."),
    budget_lr: Optional[float] = typer.Option(None, help="Adversary learning rate [the AAM's]."),
    budget_steps: Optional[int] = typer.Option(None, help="Adversary updates per anonymizer update [1]."),
    budget_restart_every: Optional[int] = typer.Option(None, help="Re-initialize the adversary every N epochs; 0 = never [0]."),
    critic_hidden: Optional[int] = typer.Option(None, help="cross-view: critic MLP hidden size [512]."),
    critic_proj: Optional[int] = typer.Option(None, help="cross-view: critic projection size [128]."),
    critic_temperature: Optional[float] = typer.Option(None, help="cross-view: critic InfoNCE temperature [0.1]."),
    critic_objective: Optional[str] = typer.Option(None, help="cross-view: the AAM's term, confusion (critic to chance) or maximize (its InfoNCE) [confusion]."),
    bottleneck_noise: Optional[float] = typer.Option(None, help="bottleneck: channel noise std, x each dim's raw clip std [0.5]."),
    bottleneck_with_ntxent: Optional[bool] = typer.Option(None, help="bottleneck: add the direct NT-Xent budget on static pairs [no]."),
    adversary_ensemble: Optional[int] = typer.Option(None, help="supervised-clips: attribute MLPs in the ensemble [3]."),
    independence_kernels: Optional[str] = typer.Option(None, help="independence: kernels of the dependence measure, gaussian or gaussian+linear [gaussian+linear]."),
    independence_shrinkage: Optional[float] = typer.Option(None, help="independence: covariance shrinkage of the whitening, x the mean variance [0.05]."),
    static_noise: Optional[float] = typer.Option(None, help="Latent augmentation: Gaussian noise on static clips, x per-dim std [0]."),
    static_feature_dropout: Optional[float] = typer.Option(None, help="Latent augmentation: feature dropout on static clips [0]."),
    epochs: Optional[int] = typer.Option(None, help="Anonymization epochs [100]."),
    batch_size: Optional[int] = typer.Option(None, help="Videos per step [512]."),
    lr: Optional[float] = typer.Option(None, help="Learning rate at --lr-reference-batch, scaled linearly [1e-4]."),
    lr_reference_batch: Optional[int] = typer.Option(None, help="Batch size of --lr [512]."),
    weight_decay: Optional[float] = typer.Option(None, help="AdamW weight decay [0.01]."),
    seed: Optional[int] = typer.Option(None, help="Random seed [0]."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N [auto]."),
    row_source: Optional[str] = typer.Option(None, help="memory (load rows) or stream (read Zarr chunks) [memory]."),
    stream_cache_chunks: Optional[int] = typer.Option(None, help="Streaming: decoded chunks cached per array (shuffle window = half) [64]."),
    validate_every: Optional[int] = typer.Option(None, help="Validate every N epochs; 0 = never [10]."),
    progress: bool = typer.Option(True, help="Show the progress bar."),
) -> None:
    """Train (or --resume) the anonymizer on a store."""
    from anonymize.config import TrainConfig
    from anonymize.resume import resume_config
    from anonymize.train import train as run_train

    given = dict(locals())
    if store is None and not resume:
        raise FeatstoreError("--store is required to start a run")
    overrides = {key: value for key, value in given.items()
                 if value is not None and key in TrainConfig.__dataclass_fields__ and key not in ("store", "out")}
    aam = {field: given[option] for option, field in AAM_OPTIONS.items() if given[option] is not None}
    identity = {field: given[option] for option, field in IDENTITY_OPTIONS.items() if given[option] is not None}
    if aam:
        overrides["aam"] = aam
    if identity:
        overrides["identity"] = identity
    if tad_head is not None and tad_store is None:
        raise FeatstoreError("--tad-head needs --tad-store (the store the TAD task trains on)")
    if store is not None:
        # every TaskSpec field, so that a resume compares them with the saved run's tasks one to one
        tasks = [{"name": "action", "store": str(store), "weight": 1.0 if w_action is None else w_action, "head": None}]
        for name, task_store, weight, head in (("tad", tad_store, w_tad, tad_head), ("ad", ad_store, w_ad, None)):
            if task_store is not None:
                tasks.append({"name": name, "store": str(task_store), "weight": 1.0 if weight is None else weight,
                              "head": None if head is None else str(head)})
        overrides["store"] = str(store)
        overrides["tasks"] = tasks
    elif any(v is not None for v in (tad_store, ad_store, w_action, w_tad, w_ad)):
        raise FeatstoreError("the task options need --store (on --resume they must match the saved run)")
    if resume:
        config = resume_config(out, overrides)
    else:
        config = TrainConfig(out=str(out), **overrides)
    result = run_train(config, resume=resume)
    last = result.history[-1]
    console.print(f"[bold]{result.run}[/]: {result.epochs_done} epochs; aam sha256 {result.aam_sha256[:16]}")
    if "val" in last:
        console.print("validation: " + ", ".join(f"{k} {v:.4f}" for k, v in last["val"].items()))


@app.command()
def export(
    run: Path = typer.Option(..., help="Run folder written by `anonymize train`."),
    store: Path = typer.Option(..., help="Store to anonymize (same encoder as the training store)."),
    out: Path = typer.Option(..., help="Anonymized store to write."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    batch_rows: int = typer.Option(4096, help="Rows per AAM forward."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out."),
    keep_private_labels: bool = typer.Option(False, "--keep-private-labels",
                                             help="Keep the attribute labels, subject ids and source paths (in-house "
                                                  "evaluation); by default they are dropped (evaluate joins them from "
                                                  "the raw store: --labels-from)."),
) -> None:
    """Apply a trained AAM to every clip and static embedding of a store."""
    from anonymize.export import export_store

    result = export_store(run, store, out, device=device, batch_rows=batch_rows, overwrite=overwrite,
                          keep_private_labels=keep_private_labels)
    console.print(f"[bold]{result.out}[/]: {result.rows} rows anonymized in {result.seconds:.1f}s "
                  f"({result.rows / max(result.seconds, 1e-9):.0f} rows/s); aam sha256 {result.aam_sha256[:16]}; "
                  f"private labels {'kept' if keep_private_labels else 'dropped'}")


@app.command()
def baseline(
    method: str = typer.Option(..., help="lda-action, pca, gaussian-noise, random-projection, leace or inlp "
                                         "(leace and inlp read the private attribute labels: supervised)."),
    store: Path = typer.Option(..., help="Store to fit on (its train split's clips)."),
    out: Path = typer.Option(..., help="Run folder to write (baseline.json, aam.safetensors)."),
    components: Optional[int] = typer.Option(None, help="pca, random-projection: dimensions kept, k in [1, D]."),
    noise_fraction: Optional[float] = typer.Option(None, help="gaussian-noise: noise std / each dimension's train std [1]."),
    iterations: Optional[int] = typer.Option(None, help="inlp: nullspace projection iterations [10]."),
    shrinkage: Optional[float] = typer.Option(None, help="lda-action: within-class covariance shrinkage in [0, 1] [0]."),
    fit_rows: Optional[str] = typer.Option(None, help="leace, inlp: fit on clips or clips+static [clips]."),
    max_rows: Optional[int] = typer.Option(None, help="inlp: rows subsampled for the classifiers [50000]."),
    seed: int = typer.Option(0, help="Seed (random-projection's matrix, gaussian-noise's noise, inlp's subsample)."),
    overwrite: bool = typer.Option(False, help="Replace a baseline run in --out."),
) -> None:
    """Fit a latent baseline on a store's train split: a run folder that export, info and evaluate accept."""
    from anonymize.baselines import BaselineConfig, fit_baseline

    config = BaselineConfig(method=method, store=str(store), out=str(out), seed=seed, components=components,
                            noise_fraction=noise_fraction, iterations=iterations, shrinkage=shrinkage,
                            fit_rows=fit_rows, max_rows=max_rows)
    result = fit_baseline(config, overwrite=overwrite)
    fitted = result.config.fitted
    console.print(f"[bold]{result.run}[/]: {result.config.label} fitted on {fitted.get('rows')} rows; "
                  f"{fitted.get('dims')} of {fitted.get('dim')} dims; sha256 {result.sha256[:16]}")


@app.command()
def info(run: Path = typer.Option(..., help="Run folder."), as_json: bool = typer.Option(False, "--json")) -> None:
    """Print a run's config, losses and trainable parameter counts (a baseline's method, fit and options)."""
    from anonymize.baselines import baseline_summary, is_baseline_run
    from anonymize.runinfo import run_summary

    baseline = is_baseline_run(run)
    summary = baseline_summary(run) if baseline else run_summary(run)
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
