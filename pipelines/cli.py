"""``pipelines`` command line: run a named end-to-end recipe."""

from __future__ import annotations

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
    seed: int = typer.Option(0, help="Seed for the dataset and the random-init encoder."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run a recipe end to end (the demo needs no data and no GPU)."""
    from pipelines.demo import DemoConfig, run_demo

    if recipe not in RECIPES:
        raise FeatstoreError(f"unknown recipe {recipe!r} (available: {', '.join(RECIPES)})")
    run_demo(DemoConfig(out=out, data_root=data_root, seed=seed), show_progress=progress)


@app.command("list")
def list_recipes() -> None:
    """List the recipes."""
    for recipe in RECIPES:
        typer.echo(recipe)


def main() -> None:
    run_app(app)
