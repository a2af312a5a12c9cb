"""Recipes (pipelines/recipes): the list, the one-message check of missing inputs, refused options, the table form
next to the paper's numbers. The recipes end to end: tests/pipelines/test_recipes_table1.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import pipelines.recipes as pipelines_recipes
from data_manifests.errors import FeatstoreError
from pipelines.recipes.loader import load_recipe, recipe_names
from pipelines.recipes.table import render, table_rows
from tests.conftest import run_in_process


def pipelines(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return run_in_process(monkeypatch, capsys, "pipelines", *args)


def test_list_shows_every_recipe_with_a_description(monkeypatch, capsys):
    code, out, _ = pipelines(monkeypatch, capsys, "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == recipe_names()
    assert {"demo", "table1"} <= set(recipe_names())
    code, out, _ = pipelines(monkeypatch, capsys, "list", "--json")
    listed = {entry["name"]: entry for entry in json.loads(out)}
    assert "Table 1" in listed["table1"]["source"] and listed["table1"]["description"]


def test_table1_transcribes_the_papers_numbers():
    recipe = load_recipe("table1")
    assert recipe.published["vjepa-h"]["raw"]["VISPR cMAP"] == 72.44
    assert recipe.published["i3d"]["anonymized"]["UCF-Crime AUC"] == 75.69
    settings = recipe.train.settings  # the paper's lr: 1e-4 at batch 512, scaled linearly
    assert (settings["lr"], settings["batch_size"], settings["lr_scaling"], settings["w_lc"]) == (1e-4, 512, "linear", 100)
    assert {task["name"] for task in recipe.train.tasks} == {"action", "tad", "ad"}


def test_missing_inputs_are_listed_in_one_message(monkeypatch, capsys, tmp_path):
    (tmp_path / "UCF101").mkdir()  # a root without its annotation files
    code, out, err = pipelines(monkeypatch, capsys, "run", "table1", "--data-root", str(tmp_path), "--encoder", "i3d",
                               "--out", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    message = " ".join(err.split())
    assert "missing 9 input(s)" in message
    assert "encoder 'i3d' needs --weights FILE" in message
    for folder in ("Kinetics400", "HMDB51", "VISPR", "THUMOS14", "UCF_Crime"):
        assert f"{tmp_path / folder} is not a folder" in message
    assert "ucf101:" in message and "vp-ucf101:" in message  # the UCF101 folder is there, its files are not
    assert not (tmp_path / "out").exists()  # nothing was started


@pytest.mark.parametrize("args, message", [
    (["table1", "--sweep", "0.5"], "--sweep does not apply to recipe 'table1'"),
    (["demo", "--weights", "w.pt"], "--weights does not apply to recipe 'demo'"),
    (["table1", "--root", "ucf101"], "--root takes NAME=PATH"),
    (["table1", "--root", "kinetics=/x"], "--root kinetics=...: not a dataset of recipe 'table1'"),
    (["table1", "--set", "epochz=2", "--root", "k400=/x"], "epochz"),
    (["table1", "--set", "seed=3"], "--set seed: use --seed"),
    (["table1", "--set", "device=cpu"], "--set device: use --device"),
    (["table1", "--set", "tasks=[1]"], "tasks[0]: a mapping with a name and a store among"),
    (["table1", "--set", "tasks=[{name: action}]"], "tasks[0]: a mapping with a name and a store among"),
    (["table1", "--set", "tasks=[{name: action, store: nowhere}]"], "tasks[0]: a mapping with a name and a store"),
    (["nosuch"], "unknown recipe 'nosuch'"),
])
def test_wrong_options_are_one_line_errors(monkeypatch, capsys, tmp_path, args, message):
    code, _, err = pipelines(monkeypatch, capsys, "run", *args, "--out", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    assert message in " ".join(err.split())


def test_table_form_sits_next_to_the_published_numbers():
    recipe = load_recipe("table1")
    metrics = {"privacy": ("worst_case", "cmap"), "ar": ("top1",), "vp": ("worst_case", "cmap"),
               "tad": ("average_mAP",), "ad": ("roc_auc",)}

    def nested(path, value):
        return {path[0]: nested(path[1:], value)} if path else value

    results = {e.key: {"raw": nested(metrics[e.protocol], 0.5),
                                       "anonymized": nested(metrics[e.protocol], 0.4)} for e in recipe.evaluate}
    columns = table_rows(recipe, "videomae-b", results)
    assert [column["column"] for column in columns][:3] == ["VISPR cMAP", "K400 top-1", "UCF101 top-1"]
    markdown = render(recipe, "videomae-b", columns)
    assert "| Anonymized | 40.00 (-20.0%) | 40.00 (-20.0%) |" in markdown
    # the paper's VideoMAE-B row of Table 1 with its relative change; HMDB51 is not in Table 1
    assert "| Paper raw | 70.47 | 74.86 | 96.80 | - |" in markdown
    assert "| Paper anonymized | 49.92 (-29.2%) | 74.23 (-0.8%) | 96.11 (-0.7%) | - |" in markdown


def test_recipe_file_mistakes_are_caught_when_it_loads_or_its_table_is_made(tmp_path):
    recipe = yaml.safe_load((Path(pipelines_recipes.__file__).parent / "table1.yaml").read_text())
    broken = {**recipe, "published": {"i3d": {"raw": {"VISPR cmap": 63.64}}}}  # a misspelled column
    (tmp_path / "published.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(FeatstoreError, match="'VISPR cmap' must be one of the evaluated columns"):
        load_recipe(str(tmp_path / "published.yaml"))
    broken = {**recipe, "train": {**recipe["train"], "tasks": ["action"]}}
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(FeatstoreError, match="tasks are a list of mappings with a name and a store"):
        load_recipe(str(tmp_path / "tasks.yaml"))
    # a metric path that is not in the protocol's result is an error, not an empty cell
    loaded = load_recipe("table1")
    results = {e.key: {"raw": {"top1": 0.5}, "anonymized": {"top1": 0.4}} for e in loaded.evaluate}
    with pytest.raises(FeatstoreError, match="column VISPR cMAP: no number at 'worst_case.cmap'"):
        table_rows(loaded, "i3d", results)


def test_evaluations_that_differ_in_split_or_options_get_their_own_result():
    from pipelines.recipes.loader import EvalSpec

    base = dict(store="k400", protocol="ar", metric="top1")
    same = [EvalSpec(column="a", **base), EvalSpec(column="b", **base)]
    assert same[0].key == same[1].key and same[0].name == same[1].name == "ar"  # one result, two columns
    val = EvalSpec(column="c", test_split="val", **base)
    other = EvalSpec(column="d", options={"eval_clips": 3}, **base)
    assert len({same[0].key, val.key, other.key}) == 3
    assert len({same[0].name, val.name, other.name}) == 3 and val.name == "ar val"
