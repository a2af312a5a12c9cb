"""``pipelines`` command line: run a named end-to-end recipe."""

from __future__ import annotations

from typing import Optional

import typer

from featstore.cli import run_app
from featstore.errors import FeatstoreError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="End-to-end recipes.")
RECIPES = ("demo",)


@app.command()
def run(
    recipe: str = typer.Argument("demo", help="Recipe name: demo."),
    out: str = typer.Option("runs/demo", help="Output folder for stores and reports."),
    data_root: str = typer.Option("data/synth", help="Where the synthetic dataset is (generated if absent)."),
    model: str = typer.Option("demo-c3d", help="Encoder (demo-c3d: pretrained on separate synthetic data)."),
    seed: int = typer.Option(0, help="Seed for the dataset, training and evaluation."),
    train_epochs: int = typer.Option(100, help="Anonymizer training epochs (paper: 100)."),
    batch_size: int = typer.Option(32, help="Anonymizer batch size (paper: 512; see docs/anonymize.md)."),
    lr: float = typer.Option(1e-3, help="Anonymizer learning rate at --batch-size (paper: 1e-4 at 512)."),
    w_lc: float = typer.Option(10.0, help="Latent consistency weight (paper: 100)."),
    sweep: list[float] = typer.Option([0.25, 4.0], "--sweep", help="Extra budget weights w_B for the trade-off "
                                                                    "(repeat; w_B = 1 is always trained)."),
    eval_epochs: Optional[int] = typer.Option(None, help="Probe/attacker epochs in the report "
                                                         "(default: each protocol's official preset)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda[:N]."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run a recipe end to end (the demo needs no data and no GPU)."""
    from pipelines.demo import DemoConfig, run_demo

    if recipe not in RECIPES:
        raise FeatstoreError(f"unknown recipe {recipe!r} (available: {', '.join(RECIPES)})")
    config = DemoConfig(out=out, data_root=data_root, model=model, seed=seed, train_epochs=train_epochs,
                        train_batch_size=batch_size, train_lr=lr, train_w_lc=w_lc,
                        sweep_budgets=list(sweep), eval_epochs=eval_epochs, device=device)
    run_demo(config, show_progress=progress)


@app.command("list")
def list_recipes() -> None:
    """List the recipes."""
    for recipe in RECIPES:
        typer.echo(recipe)


def main() -> None:
    run_app(app)
