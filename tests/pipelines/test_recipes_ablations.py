"""The ablation recipes end to end on generated Kinetics-400, HMDB51, VISPR, THUMOS14 and UCF-Crime roots in their
official layouts (tests/_layouts.py): one AAM per row of the sweep, one table row each beside the paper's numbers."""

from __future__ import annotations

import json

import pytest

from pipelines.recipes.loader import load_recipe
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


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(ABLATIONS))
def test_ablation_end_to_end(monkeypatch, capsys, tmp_path, ablation_root, recipe):
    out = tmp_path / "out"
    code, _, err = run_in_process(monkeypatch, capsys, "pipelines", "run", recipe, "--data-root", str(ablation_root),
                                  "--out", str(out), *FAST)
    assert code == 0, err
    expected_columns, recorded = ABLATIONS[recipe]
    rows = load_recipe(recipe).sweep.variants()
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
