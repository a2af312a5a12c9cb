"""``pipelines`` command line: run a named end-to-end recipe."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Optional

import typer

from featstore.cli import run_app, tool_app
from data_manifests.errors import FeatstoreError
from pipelines.demo_config import DEMO_BASELINES, DemoConfig

# DemoConfig's defaults read off its fields: building one would run its checks, which import torch (slow --help)
DEFAULTS = {spec.name: spec.default_factory() if spec.default is MISSING else spec.default
            for spec in fields(DemoConfig)}

app = tool_app("pipelines", help="End-to-end recipes.")
RECIPES = ("demo",)


@app.command()
def run(
    recipe: str = typer.Argument("demo", help="Recipe name: demo."),
    out: str = typer.Option("runs/demo", help="Output folder for stores and reports."),
    data_root: Optional[str] = typer.Option(None, help="Where the synthetic dataset is (generated if absent) "
                                                       "[data/synth; data/synth-variant for --style variant]."),
    model: str = typer.Option("demo-c3d", help="Encoder (demo-c3d: pretrained on separate synthetic data)."),
    seed: int = typer.Option(0, help="Seed for the dataset, training and evaluation."),
    style: str = typer.Option("default", help="Synthetic dataset style: default (the defaults are chosen on it) or "
                                              "variant (other colours, textures, sizes, speeds; nothing tuned on it)."),
    budget_mode: str = typer.Option(DEFAULTS["budget_mode"], help="The anonymizer's budget mode (default: "
                                                                 "independence, self-supervised; see docs/anonymize.md)."),
    train_epochs: int = typer.Option(DEFAULTS["train_epochs"], help="Anonymizer training epochs."),
    batch_size: int = typer.Option(DEFAULTS["train_batch_size"], help="Anonymizer batch size (paper: 512)."),
    lr: float = typer.Option(DEFAULTS["train_lr"],
                             help="Anonymizer learning rate at --batch-size (paper: 1e-4 at 512)."),
    w_lc: float = typer.Option(DEFAULTS["train_w_lc"], help="Latent consistency weight (paper: 100)."),
    w_within_video: float = typer.Option(DEFAULTS["train_w_within_video"],
                                         help="Within-video consistency weight (beyond the paper; 0 = off)."),
    w_budget: float = typer.Option(DEFAULTS["train_w_budget"], help="Budget weight w_B of the main run (paper: 1)."),
    sweep: list[float] = typer.Option(DEFAULTS["sweep_budgets"], "--sweep",
                                      help="Extra budget weights w_B of the default objective for the trade-off (repeat)."),
    paper_objective: bool = typer.Option(DEFAULTS["paper_objective"], help="Add the paper's objective (direct "
                                                                           "NT-Xent on static clips) as a trade-off point."),
    baseline: list[str] = typer.Option(DEFAULTS["baselines"], "--baseline",
                                       help="Unsupervised latent baselines for the trade-off (repeat): "
                                            + ", ".join(DEMO_BASELINES) + "."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Fit no baseline."),
    eval_epochs: Optional[int] = typer.Option(None, help="Probe/attacker epochs in the report "
                                                         "(default: each protocol's official preset)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda[:N]."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run a recipe end to end (the demo needs no data and no GPU)."""
    from featstore.device import resolve_device
    from pipelines.demo import run_demo

    if recipe not in RECIPES:
        raise FeatstoreError(f"unknown recipe {recipe!r} (available: {', '.join(RECIPES)})")
    resolve_device(device)  # an unusable device is refused before any work
    config = DemoConfig(out=out, data_root=data_root, model=model, seed=seed, style=style, budget_mode=budget_mode,
                        train_epochs=train_epochs, train_batch_size=batch_size, train_lr=lr, train_w_lc=w_lc,
                        train_w_within_video=w_within_video,
                        train_w_budget=w_budget, sweep_budgets=list(sweep), paper_objective=paper_objective,
                        baselines=[] if no_baselines else list(baseline), eval_epochs=eval_epochs, device=device)
    run_demo(config, show_progress=progress)


@app.command("list")
def list_recipes() -> None:
    """List the recipes."""
    for recipe in RECIPES:
        typer.echo(recipe)


def main() -> None:
    run_app(app)
