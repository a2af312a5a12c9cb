"""The ablation recipes end to end on generated Kinetics-400, HMDB51, VISPR, THUMOS14 and UCF-Crime roots in their
official layouts (tests/_layouts.py): one AAM per row of the sweep, one table row each beside the paper's numbers."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from rich.console import Console

from pipelines.cli import parse_settings
from pipelines.recipes.loader import load_recipe
from pipelines.recipes.plan import check_inputs
from pipelines.recipes.runner import STEPS_FILE, RecipeRun, StepLog, extract_step, training_config
from pipelines.recipes.table import TABLE_FILE, TABLE_JSON
from tests._layouts import make_hmdb51, make_kinetics400, make_thumos14, make_ucf_crime, make_vispr
from tests.conftest import run_in_process

# FAST of the other recipe tests without the AAM's size (ablation-arch sweeps it, ablation-heads its heads) and
# without an identity initialization (the zero preset needs the attention AAM)
FAST = ["--encoder", "tiny-vit", "--set", "epochs=2", "--set", "batch_size=16",
        "--set", "identity={preset: none}", "--set", "head_init_epochs=2", "--set", "validate_every=1",
        "--eval-epochs", "2", "--device", "cpu", "--no-progress"]
# the table's columns and what each run's config.json records of its row
ABLATIONS = {
    "ablation-wlc": (["VISPR cMAP", "HMDB51 top-1", "UCF-Crime AUC"], lambda config: float(config["w_lc"])),
    "ablation-heads": (["VISPR cMAP", "HMDB51 top-1", "UCF-Crime AUC"], lambda config: config["aam"]["heads"]),
    "ablation-arch": (["VISPR cMAP", "K400 top-1", "UCF-Crime AUC", "THUMOS14 mAP"],
                      lambda config: {"aam": {k: config["aam"][k] for k in ("architecture", "layers")}}),
    "ablation-tasks": (["VISPR cMAP", "K400 top-1", "THUMOS14 mAP", "UCF-Crime AUC"],
                       lambda config: {"tasks": sorted(task["name"] for task in config["tasks"])}),
    "ablation-losses": (["VISPR cMAP", "HMDB51 top-1", "THUMOS14 mAP"],
                        lambda config: {"budget_mode": config.get("budget_mode", "direct"),
                                        **{k: float(config[k]) for k in ("w_utility", "w_budget", "w_lc")}}),
}


@pytest.fixture(scope="module")
def ablation_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation-data")
    make_kinetics400(root / "Kinetics400")
    make_hmdb51(root / "HMDB51")
    make_vispr(root / "VISPR")
    make_thumos14(root / "THUMOS14")
    make_ucf_crime(root / "UCF_Crime")
    return root


@pytest.fixture(scope="module")
def ablation_stores(ablation_root, tmp_path_factory):
    """Every store the ablation recipes read, extracted once by the runner's own step (the recipes share their
    datasets); each test starts from a copy, so its extraction resumes a finished store (extracting from nothing:
    test_recipes_table1.py, test_demo.py)."""
    shared = tmp_path_factory.mktemp("ablation-stores")
    log, console = StepLog(shared / STEPS_FILE), Console(quiet=True)  # a store two recipes read is extracted once
    for recipe in ABLATIONS:
        run = RecipeRun(recipe=load_recipe(recipe), out=shared, encoder="tiny-vit", data_root=ablation_root,
                        device="cpu", show_progress=False)
        for plan in check_inputs(run.recipe, run.encoder, None, ablation_root, {}, {}, [], {}).values():
            extract_step(run, plan, log, console)
    return shared / "stores"


# the rows trained end to end (each recipe's every row is checked without training below): two per recipe, the
# ones whose code paths differ most (both architectures; TAD alone and a task set without it; no utility term
# and the cross-view budget; no latent consistency; the fewest and the most heads)
TRAINED_ROWS = {
    "ablation-wlc": ["w_lc=0", "w_lc=100"],
    "ablation-heads": ["aam.heads=4", "aam.heads=16"],
    "ablation-arch": ["MLP (3 layers)", "Self-Attn (1 layer)"],
    "ablation-tasks": ["(c) TAD", "(f) AR+AD"],
    "ablation-losses": ["without utility", "budget cross-view"],
}


def recipe_with_rows(recipe: str, labels: list[str], folder) -> str:
    """A copy of the recipe whose sweep (and published numbers) has only the rows ``labels``, as a file
    ``pipelines run`` takes."""
    loaded = load_recipe(recipe)
    spec = yaml.safe_load(loaded.path.read_text())
    sweep = spec["sweep"]
    if "rows" in sweep:
        sweep["rows"] = {label: sweep["rows"][label] for label in labels}
    else:
        sweep["values"] = [value for value in sweep["values"] if loaded.sweep.label(value) in labels]
    for encoder, rows in spec.get("published", {}).items():
        spec["published"][encoder] = {label: values for label, values in rows.items() if label in ["raw", *labels]}
    path = folder / f"{recipe}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(ABLATIONS))
def test_ablation_end_to_end(monkeypatch, capsys, tmp_path, ablation_root, ablation_stores, recipe):
    out = tmp_path / "out"
    shutil.copytree(ablation_stores, out / "stores")
    labels = TRAINED_ROWS[recipe]
    code, _, err = run_in_process(monkeypatch, capsys, "pipelines", "run", recipe_with_rows(recipe, labels, tmp_path),
                                  "--data-root", str(ablation_root), "--out", str(out), *FAST)
    assert code == 0, err
    expected_columns, recorded = ABLATIONS[recipe]
    rows = {label: changed for label, changed in load_recipe(recipe).sweep.variants().items() if label in labels}
    assert list(rows) == labels
    columns = json.loads((out / TABLE_JSON).read_text())["columns"]
    assert [column["column"] for column in columns] == expected_columns
    for column in columns:
        assert list(column["values"]) == ["raw", *rows]
        assert all(0 <= value <= 1 for value in column["values"].values()), column
    runs = [json.loads((run / "config.json").read_text()) for run in (out / "runs" / "tiny-vit").iterdir()]
    assert len(runs) == len(rows)  # one AAM per row, each trained with its row's settings
    trained = sorted(json.dumps(recorded(config), sort_keys=True) for config in runs)
    assert trained == sorted(json.dumps(recorded(expected_config(recipe, changed)), sort_keys=True)
                             for changed in rows.values())
    markdown = (out / TABLE_FILE).read_text()
    assert all(f"| {label} |" in markdown for label in rows) and "| Paper raw |" not in markdown


@pytest.mark.parametrize("recipe", list(ABLATIONS))
def test_every_row_of_the_ablation_trains_its_own_settings(tmp_path, recipe):
    """What each row's run would be trained with (the end-to-end test trains two rows per recipe)."""
    _, recorded = ABLATIONS[recipe]
    loaded = load_recipe(recipe)
    run = RecipeRun(recipe=loaded, out=tmp_path, encoder="tiny-vit",
                    train_overrides=parse_settings([FAST[i + 1] for i, option in enumerate(FAST) if option == "--set"]))
    rows = loaded.sweep.variants()
    configs = [json.loads(json.dumps(training_config(run, {}, changed).to_json())) for changed in rows.values()]
    assert [recorded(config) for config in configs] == [recorded(expected_config(recipe, changed))
                                                        for changed in rows.values()]
    assert len({config["out"] for config in configs}) == len(rows)  # a run folder per row


def expected_config(recipe: str, changed: dict) -> dict:
    """What a row's run records, from the recipe's settings and the row's changes (tasks by name)."""
    spec = load_recipe(recipe).train
    config = {**spec.settings, "tasks": spec.tasks, "aam": {"architecture": "attention", "layers": 3, "heads": 8}}
    for key, value in changed.items():
        if "." in key:
            section, name = key.split(".")
            config[section] = {**config[section], name: value}
        else:
            config[key] = {**config[key], **value} if key == "aam" else value
    return config


def test_setting_the_swept_setting_is_refused(monkeypatch, capsys, tmp_path):
    code, _, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "ablation-heads", "--set", "aam={heads: 2}",
                                  "--out", str(tmp_path / "out"))
    assert code == 2 and "--set aam would overwrite the setting recipe 'ablation-heads' sweeps (aam.heads)" in err
