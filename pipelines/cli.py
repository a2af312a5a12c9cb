"""``pipelines`` command line: run a named end-to-end recipe (pipelines/recipes/*.yaml; ``pipelines list``)."""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Optional

import typer

from featstore.cli import run_app, tool_app
from data_manifests.errors import FeatstoreError
from pipelines.demo_config import DEMO_BASELINES, DemoConfig

# DemoConfig's defaults read off its fields: building one would run its checks, which import torch (slow --help)
DEFAULTS = {spec.name: spec.default_factory() if spec.default is MISSING else spec.default
            for spec in fields(DemoConfig)}

app = tool_app("pipelines", help="End-to-end recipes.")
DEMO_MODEL = "demo-c3d"
# the options only the demo reads; a table recipe refuses them when given
DEMO_ONLY = ("style", "budget_mode", "train_epochs", "batch_size", "lr", "w_lc", "w_within_video", "w_budget",
             "output_floor", "output_centre", "lr_schedule", "sweep", "paper_objective", "baseline", "no_baselines")
TABLE_ONLY = ("weights", "root", "set_", "pixel_baselines", "boxes")


@app.command()
def run(
    ctx: typer.Context,
    recipe: str = typer.Argument("demo", help="Recipe name (see `pipelines list`) or a recipe .yaml file."),
    out: Optional[str] = typer.Option(None, help="Output folder for stores, runs and tables.",
                                      show_default="runs/RECIPE"),
    data_root: Optional[str] = typer.Option(None, help="demo: where the synthetic dataset is (generated if absent). "
                                                       "Other recipes: one folder holding each dataset under its "
                                                       "official folder name (UCF101/, HMDB51/, ...).",
                                            show_default="demo: data/synth, data/synth-STYLE for another --style, "
                                                         "-seedN for --seed N"),
    model: Optional[str] = typer.Option(None, "--encoder", "--model",
                                        help="Encoder (demo-c3d: pretrained on separate synthetic data).",
                                        show_default="demo: demo-c3d; other recipes: the recipe's encoder"),
    weights: Optional[str] = typer.Option(None, help="The encoder's checkpoint (table recipes)."),
    root: list[str] = typer.Option([], "--root", help="NAME=PATH: one dataset's root, NAME a store or dataset name "
                                                      "of the recipe (repeat; table recipes)."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE: a training setting over the recipe's, e.g. "
                                                     "epochs=2 (repeat; table recipes; see anonymize train)."),
    pixel_baselines: Optional[str] = typer.Option(
        None, help="The recipe's pixel-level baseline rows (table1: Downsample-2x, Downsample-4x, Blurring, Blackening; "
                   "the datasets of their columns extracted again from transformed frames; table1 skips "
                   "Kinetics-400, which the paper does not report for them): all, none, or labels "
                   "separated by commas.", show_default="all for the encoders the recipe lists (i3d), else none"),
    boxes: list[str] = typer.Option([], "--boxes", help="NAME=CSV: one dataset's person box file for the blur and "
                                                        "blacken baselines (repeat; video_id,frame,x1,y1,x2,y2, see "
                                                        "featstore extract --boxes). Blur without one blurs the whole "
                                                        "frame; blacken needs one per dataset."),
    seed: int = typer.Option(0, help="Seed for the dataset, training and evaluation."),
    style: str = typer.Option("default", help="Synthetic dataset style: default (the defaults are chosen on it), "
                                              "variant (other colours, textures, sizes, speeds; nothing tuned on it) "
                                              "or dev (a third look, to tune on next to default)."),
    budget_mode: str = typer.Option(DEFAULTS["budget_mode"], help="The anonymizer's budget mode (the default "
                                                                 "is self-supervised; see docs/anonymize.md)."),
    train_epochs: int = typer.Option(DEFAULTS["train_epochs"], help="Anonymizer training epochs."),
    batch_size: int = typer.Option(DEFAULTS["train_batch_size"], help="Anonymizer batch size (paper: 512)."),
    lr: float = typer.Option(DEFAULTS["train_lr"],
                             help="Anonymizer learning rate at --batch-size (paper: 1e-4 at 512)."),
    w_lc: float = typer.Option(DEFAULTS["train_w_lc"], help="Latent consistency weight (paper: 100)."),
    w_within_video: float = typer.Option(DEFAULTS["train_w_within_video"],
                                         help="Within-video consistency weight (beyond the paper; 0 = off)."),
    w_budget: float = typer.Option(DEFAULTS["train_w_budget"], help="Budget weight w_B of the main run (paper: 1)."),
    output_floor: float = typer.Option(DEFAULTS["train_output_floor"],
                                       help="After training, drop the anonymizer's output directions whose variance is "
                                            "under this x the mean (0 = keep all)."),
    output_centre: bool = typer.Option(DEFAULTS["train_output_centre"],
                                       help="After training, subtract the anonymizer's mean output over the train clips."),
    lr_schedule: str = typer.Option(DEFAULTS["train_lr_schedule"],
                                    help="Anonymizer learning-rate schedule: cosine (annealed to 0), or constant "
                                         "(the default before 2026-12-05)."),
    sweep: list[float] = typer.Option(DEFAULTS["sweep_budgets"], "--sweep",
                                      help="Extra budget weights w_B of the default objective for the trade-off (repeat)."),
    paper_objective: bool = typer.Option(DEFAULTS["paper_objective"], help="Add the paper's objective (direct "
                                                                           "NT-Xent on static clips) as a trade-off point."),
    baseline: list[str] = typer.Option(DEFAULTS["baselines"], "--baseline",
                                       help="Unsupervised latent baselines for the trade-off (repeat): "
                                            + ", ".join(DEMO_BASELINES) + "."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Fit no baseline."),
    eval_epochs: Optional[int] = typer.Option(None, help="Probe/attacker epochs in the report.",
                                              show_default="each protocol's official preset"),
    device: str = typer.Option("auto", help="auto | cpu | cuda[:N]."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run a recipe end to end: check its inputs, print the plan, run (or resume) every step, write its table.

    The demo needs no data and no GPU."""
    from pipelines.recipes.loader import load_recipe

    loaded = load_recipe(recipe)
    # typer carries its own click: the source enum is compared by name
    given = [name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]
    refused = [name for name in given if name in (TABLE_ONLY if loaded.runner == "demo" else DEMO_ONLY)]
    if refused:
        option = "--" + refused[0].rstrip("_").replace("_", "-")
        raise FeatstoreError(f"{option} does not apply to recipe {loaded.name!r} "
                             f"(see `pipelines list` and docs/recipes.md)")
    if loaded.runner == "table":
        run_table_recipe(loaded, out, data_root, model, weights, root, set_, eval_epochs, seed, device, progress,
                         pixel_baselines, boxes)
        return
    from featstore.device import resolve_device
    from pipelines.demo import run_demo

    resolve_device(device)  # an unusable device is refused before any work
    config = DemoConfig(out=out or "runs/demo", data_root=data_root, model=model or DEMO_MODEL, seed=seed, style=style,
                        budget_mode=budget_mode,
                        train_epochs=train_epochs, train_batch_size=batch_size, train_lr=lr, train_w_lc=w_lc,
                        train_w_within_video=w_within_video,
                        train_w_budget=w_budget, train_output_floor=output_floor,
                        train_output_centre=output_centre, train_lr_schedule=lr_schedule, sweep_budgets=list(sweep),
                        paper_objective=paper_objective,
                        baselines=[] if no_baselines else list(baseline), eval_epochs=eval_epochs, device=device)
    run_demo(config, show_progress=progress)


def run_table_recipe(recipe, out: Optional[str], data_root: Optional[str], encoder: Optional[str],
                     weights: Optional[str], roots: list[str], settings: list[str], eval_epochs: Optional[int],
                     seed: int, device: str, progress: bool, pixel_baselines: Optional[str],
                     boxes: list[str]) -> None:
    from featstore.device import resolve_device
    from pipelines.recipes.plan import parse_named_paths
    from pipelines.recipes.runner import RecipeRun, run_recipe

    resolve_device(device)  # an unusable device is refused before any work
    run_recipe(RecipeRun(recipe=recipe, out=Path(out or f"runs/{recipe.name}"), encoder=encoder or recipe.encoder,
                         weights=weights, data_root=None if data_root is None else Path(data_root),
                         roots=parse_named_paths(roots, "--root", "ucf101=/data/UCF101"),
                         train_overrides=parse_settings(settings), eval_epochs=eval_epochs, seed=seed,
                         device=device, show_progress=progress, pixel_baselines=pixel_baselines,
                         boxes=parse_named_paths(boxes, "--boxes", "vispr=/data/boxes/vispr.csv")))


def parse_settings(values: list[str]) -> dict:
    """``--set KEY=VALUE`` values -> {KEY: value}, the value read as YAML (2 -> int, 1e-4 -> float, true -> bool)."""
    import yaml

    settings = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise FeatstoreError(f"--set takes KEY=VALUE (e.g. epochs=2), got {value!r}")
        try:
            settings[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise FeatstoreError(f"--set {key}: cannot read the value {text!r}") from None
    return settings


@app.command("list")
def list_recipes(as_json: bool = typer.Option(False, "--json", help="Print JSON: [{name, description, source}].")) -> None:
    """List the recipes with a one-line description."""
    import json

    from pipelines.recipes.loader import load_recipe, recipe_names

    recipes = [load_recipe(name) for name in recipe_names()]
    if as_json:
        typer.echo(json.dumps([{"name": r.name, "description": r.description, "source": r.source} for r in recipes],
                              indent=2))
        return
    width = max(len(r.name) for r in recipes)
    for r in recipes:
        typer.echo(f"{r.name:<{width}}  {r.description}")


def main() -> None:
    run_app(app)
