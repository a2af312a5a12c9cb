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
    assert "missing 10 input(s)" in message
    assert "encoder 'i3d' needs --weights FILE" in message
    for folder in ("Kinetics400", "HMDB51", "VISPR", "THUMOS14", "UCF_Crime"):
        assert f"{tmp_path / folder} is not a folder" in message
    assert "ucf101:" in message and "vp-ucf101:" in message  # the UCF101 folder is there, its files are not
    # i3d adds the pixel baselines: blacken needs the person boxes of every dataset they extract (not k400: they
    # skip its column)
    assert ("pixel baseline Blackening (blacken) needs a person box file per dataset: --boxes NAME=CSV for vispr, "
            "ucf101, hmdb51, vp-ucf101, vp-hmdb51, thumos14, ucf-crime (or leave it out: --pixel-baselines "
            "Downsample-2x,Downsample-4x,Blurring)") in message
    assert not (tmp_path / "out").exists()  # nothing was started

    boxes = tmp_path / "vispr-boxes.csv"  # named, but not there
    code, _, err = pipelines(monkeypatch, capsys, "run", "table1", "--data-root", str(tmp_path), "--encoder", "i3d",
                             "--boxes", f"vispr={boxes}", "--out", str(tmp_path / "out"))
    message = " ".join(err.split())
    assert code == 2 and "missing 11 input(s)" in message and f"vispr: --boxes file {boxes} does not exist" in message
    assert "--boxes NAME=CSV for ucf101, hmdb51," in message
    code, _, err = pipelines(monkeypatch, capsys, "run", "table1", "--data-root", str(tmp_path), "--encoder", "i3d",
                             "--pixel-baselines", "none", "--out", str(tmp_path / "out"))
    message = " ".join(err.split())
    assert code == 2 and "missing 9 input(s)" in message and "pixel baseline" not in message


@pytest.mark.parametrize("args, message", [
    (["table1", "--sweep", "0.5"], "--sweep does not apply to recipe 'table1'"),
    (["demo", "--weights", "w.pt"], "--weights does not apply to recipe 'demo'"),
    (["table1", "--root", "ucf101"], "--root takes NAME=PATH"),
    (["table1", "--root", "kinetics=/x"], "--root kinetics=...: not a dataset of recipe 'table1'"),
    (["demo", "--pixel-baselines", "all"], "--pixel-baselines does not apply to recipe 'demo'"),
    (["table1", "--boxes", "vispr"], "--boxes takes NAME=PATH"),
    (["table1", "--encoder", "i3d", "--boxes", "kinetics=/x"], "--boxes kinetics=...: not a dataset of recipe"),
    (["table1", "--pixel-baselines", "none", "--boxes", "vispr=/x"], "--boxes: no pixel baseline row of this run "
                                                                       "reads"),
    (["table1", "--pixel-baselines", "Downsample-2x", "--boxes", "vispr=/x"], "--boxes: no pixel baseline row"),
    # the pixel rows skip K400's column, so it is not extracted for them: its box file would be read by nothing
    (["table1", "--encoder", "i3d", "--boxes", "k400=/x"], "--boxes k400=...: the pixel baseline rows of this run do "
                                                           "not extract k400"),
    (["table1", "--encoder", "i3d", "--boxes", "kinetics400=/x"], "do not extract kinetics400"),
    (["table1", "--pixel-baselines", "Downsample-2x,Blurr"], "--pixel-baselines: 'Blurr' is not a row of recipe "
                                                             "'table1' (all, none, or some of: Downsample-2x,"),
    (["tradeoff", "--pixel-baselines", "all"], "--pixel-baselines: recipe 'tradeoff' has no pixel-level baseline rows"),
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


def test_pixel_baseline_rows_sit_between_raw_and_anonymized_next_to_the_papers():
    recipe = load_recipe("table1")
    assert recipe.pixel_baselines.encoders == ["i3d"]
    assert {label: row.transform for label, row in recipe.pixel_baselines.rows.items()} == {
        "Downsample-2x": "downsample-2x", "Downsample-4x": "downsample-4x", "Blurring": "blur", "Blackening": "blacken"}
    assert recipe.pixel_baselines.skip_columns == ["K400 top-1"]  # the paper has no K400 number for them
    pixel = list(recipe.pixel_baselines.rows)
    values = {"raw": 0.5, "anonymized": 0.4, **{label: 0.3 - 0.05 * index for index, label in enumerate(pixel)}}
    # as the runner leaves them: no pixel row result for the skipped column
    results = {e.key: {label: {"top1": value, "worst_case": {"cmap": value}, "average_mAP": value, "roc_auc": value}
                       for label, value in values.items() if label not in pixel or e.column != "K400 top-1"}
               for e in recipe.evaluate}
    columns = table_rows(recipe, "i3d", results, pixel)
    assert list(columns[0]["values"]) == ["raw", *pixel, "anonymized"]
    assert columns[1]["column"] == "K400 top-1" and columns[1]["values"] == {
        "raw": 0.5, **dict.fromkeys(pixel), "anonymized": 0.4}
    markdown = render(recipe, "i3d", columns, pixel_labels=pixel)
    rows = [line.split(" |")[0] for line in markdown.splitlines() if line.startswith("| ")][2:]  # after the header
    assert rows == ["| Raw", *(f"| {label}" for label in pixel), "| Anonymized", "| Paper raw",
                    *(f"| Paper {label}" for label in pixel), "| Paper anonymized"]
    assert "| Blurring | 20.00 (-60.0%) | - | 20.00 (-60.0%) |" in markdown  # K400: not evaluated
    assert "The pixel baseline rows are not evaluated on K400 top-1" in markdown
    # the paper's I3D rows (Table 1): relative to its raw row; no Kinetics-400 number for the pixel baselines
    assert "| Paper Downsample-2x | 55.64 (-12.6%) | - | 81.78 (-9.4%) | - | - | - | 16.94 (-33.0%) | 76.09 (-2.0%) |" \
        in markdown
    assert "| Paper Blackening | 56.36 (-11.4%) | - | 68.62 (-24.0%) |" in markdown
    # without the rows (another encoder, or --pixel-baselines none) neither the measured nor the paper's rows appear
    assert "Downsample" not in render(recipe, "i3d", table_rows(recipe, "i3d", results))


def test_pixel_rows_by_encoder_and_choice_and_their_transforms(tmp_path):
    from pipelines.recipes.runner import RecipeRun

    recipe = load_recipe("table1")
    every = list(recipe.pixel_baselines.rows)
    assert list(RecipeRun(recipe, tmp_path, "i3d").pixel_rows()) == every  # the encoders the recipe lists
    assert RecipeRun(recipe, tmp_path, "videomae-b").pixel_rows() == {}
    assert list(RecipeRun(recipe, tmp_path, "videomae-b", pixel_baselines="all").pixel_rows()) == every
    assert RecipeRun(recipe, tmp_path, "i3d", pixel_baselines="none").pixel_rows() == {}
    assert list(RecipeRun(recipe, tmp_path, "i3d", pixel_baselines="Blackening, Downsample-2x").pixel_rows()) == \
        ["Downsample-2x", "Blackening"]  # the recipe's order
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("video_id,frame,x1,y1,x2,y2\n")
    run = RecipeRun(recipe, tmp_path, "i3d", boxes={"vispr": boxes, "ucf101": boxes})  # by store or dataset name
    rows = recipe.pixel_baselines.rows
    assert run.pixel_transform(rows["Blurring"], "vispr").boxes == str(boxes)
    assert run.pixel_transform(rows["Blurring"], "thumos14").boxes is None  # blur: the whole frame
    assert run.pixel_transform(rows["Downsample-4x"], "vispr").boxes is None  # a downsample reads no boxes
    assert run.pixel_transform(rows["Blackening"], "ucf101").name == "blacken"
    assert run.store_path("vispr", "Blurring") == tmp_path / "stores" / "i3d" / "Blurring" / "vispr.zarr"


def test_blur_without_boxes_is_named_in_the_table_and_its_json(tmp_path):
    """Blur over the whole frame is not the paper's person-box blur: table.md and table.json say where."""
    from pipelines.recipes.runner import RecipeRun
    from pipelines.recipes.table import TABLE_FILE, TABLE_JSON, write_table

    recipe = load_recipe("table1")
    boxes = tmp_path / "boxes.csv"
    rows = {label: recipe.pixel_baselines.rows[label] for label in ("Downsample-2x", "Blurring")}
    run = RecipeRun(recipe, tmp_path, "i3d", boxes={"vispr": boxes, "hmdb51": boxes})  # by store or dataset name
    whole_frame = run.whole_frame_blur(rows, ["vispr", "ucf101", "hmdb51", "thumos14"])
    assert whole_frame == {"Blurring": ["ucf101", "thumos14"]}  # the blur row only; a downsample reads no boxes
    assert RecipeRun(recipe, tmp_path, "i3d", boxes={"ucf101": boxes, "thumos14": boxes}).whole_frame_blur(
        rows, ["ucf101", "thumos14"]) == {}
    values = {"raw": {"top1": 0.5, "worst_case": {"cmap": 0.5}, "average_mAP": 0.5, "roc_auc": 0.5}}
    results = {e.key: {"raw": values["raw"], "anonymized": values["raw"], **dict.fromkeys(rows, values["raw"])}
               for e in recipe.evaluate}
    markdown = write_table(recipe, "i3d", results, tmp_path, None, list(rows), whole_frame).read_text()
    assert ("Blurring: no person box file (--boxes) for ucf101, thumos14: the whole frame was blurred there, not the "
            "person boxes as in the paper") in markdown
    assert "Downsample-2x: no person box file" not in markdown
    record = json.loads((tmp_path / TABLE_JSON).read_text())
    assert record["whole_frame_blur"] == {"Blurring": ["ucf101", "thumos14"]}
    assert record["pixel_skipped_columns"] == ["K400 top-1"]
    write_table(recipe, "i3d", results, tmp_path, None, list(rows), {})  # every dataset with its boxes: no note
    assert "whole frame" not in (tmp_path / TABLE_FILE).read_text()
    assert json.loads((tmp_path / TABLE_JSON).read_text())["whole_frame_blur"] == {}


def test_recipe_file_mistakes_are_caught_when_it_loads_or_its_table_is_made(tmp_path):
    recipe = yaml.safe_load((Path(pipelines_recipes.__file__).parent / "table1.yaml").read_text())
    broken = {**recipe, "published": {"i3d": {"raw": {"VISPR cmap": 63.64}}}}  # a misspelled column
    (tmp_path / "published.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(FeatstoreError, match="'VISPR cmap' must be one of the evaluated columns"):
        load_recipe(str(tmp_path / "published.yaml"))
    broken = {**recipe, "pixel_baselines": {"encoders": ["i3d"], "rows": {"Sepia": {"transform": "sepia"}}}}
    (tmp_path / "pixel.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(FeatstoreError, match="pixel_baselines must be a mapping with encoders"):
        load_recipe(str(tmp_path / "pixel.yaml"))
    broken = {**recipe, "pixel_baselines": {"rows": {"Blur": {"transform": "blur", "blur_sigma": 2}}}}
    (tmp_path / "sigma.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(FeatstoreError, match="row 'Blur': --blur-sigma must be in"):
        load_recipe(str(tmp_path / "sigma.yaml"))
    for skip, message in ((["K400 top1"], "skip_columns: 'K400 top1' is not one of the evaluated columns"),
                          ([column["column"] for column in recipe["evaluate"]], "leaves the rows no column"),
                          ("K400 top-1", "pixel_baselines must be a mapping")):
        broken = {**recipe, "pixel_baselines": {**recipe["pixel_baselines"], "skip_columns": skip}}
        (tmp_path / "skip.yaml").write_text(yaml.safe_dump(broken))
        with pytest.raises(FeatstoreError, match=message):
            load_recipe(str(tmp_path / "skip.yaml"))
    for sigma in (True, "abc"):  # a bool is no sigma; a string fails one line, not in a comparison
        broken = {**recipe, "pixel_baselines": {"rows": {"Blur": {"transform": "blur", "blur_sigma": sigma}}}}
        (tmp_path / "sigma.yaml").write_text(yaml.safe_dump(broken))
        with pytest.raises(FeatstoreError, match="row 'Blur': --blur-sigma must be in"):
            load_recipe(str(tmp_path / "sigma.yaml"))
    # two rows in one folder (stores/ENCODER/ROW, results/STORE/ROW) would overwrite each other's stores and results
    for rows, message in (({"raw": {"transform": "blur"}}, "row labels 'raw' and 'raw' have the same folder name"),
                          ({"Blur 2": {"transform": "blur"}, "Blur-2": {"transform": "downsample-2x"}},
                           "row labels 'Blur 2' and 'Blur-2' have the same folder name 'Blur-2'"),
                          ({"anonymized": {"transform": "blur"}}, "'anonymized' have the same folder name"),
                          ({"..": {"transform": "blur"}}, "row label '..' is no folder name")):
        (tmp_path / "pixel-rows.yaml").write_text(yaml.safe_dump({**recipe, "pixel_baselines": {"rows": rows}}))
        with pytest.raises(FeatstoreError, match=message):
            load_recipe(str(tmp_path / "pixel-rows.yaml"))
    tradeoff = yaml.safe_load((Path(pipelines_recipes.__file__).parent / "tradeoff.yaml").read_text())
    swept_too = {**tradeoff, "pixel_baselines": {"rows": {"w_budget 0.3": {"transform": "blur"}}}}  # a sweep row's
    (tmp_path / "pixel-sweep.yaml").write_text(yaml.safe_dump(swept_too))
    with pytest.raises(FeatstoreError, match="'w_budget=0.3' and 'w_budget 0.3' have the same folder name"):
        load_recipe(str(tmp_path / "pixel-sweep.yaml"))
    for axes, message in (({"utility": "PA-HMDB51 top-5", "privacy": "PA-HMDB51 cMAP"}, "tradeoff utility: 'PA-HMDB51 "
                                                                                          "top-5' must be one of"),
                          ({"utility": "PA-HMDB51 top-1", "privacy": "PA-HMDB51 top-1"}, "tradeoff privacy: .* of "
                                                                                          "protocol privacy or vp"),
                          (True, "tradeoff must be a mapping"),
                          ({"utility": ["PA-HMDB51 top-1"], "privacy": "PA-HMDB51 cMAP"}, "tradeoff must be a "
                                                                                          "mapping"),
                          ({"utility": "PA-HMDB51 top-1", "privacy": "PA-HMDB51 cMAP (mean)"}, "tradeoff privacy: "
                                                                                               ".* with a cmap metric"),
                          ({"utility": "PA-HMDB51 top-5", "privacy": "PA-HMDB51 cMAP"}, "tradeoff utility: .* with "
                                                                                         "a top1 metric")):
        evaluate = [*tradeoff["evaluate"],  # a privacy column of another metric, an ar column of another metric
                    {"column": "PA-HMDB51 cMAP (mean)", "store": "pa-hmdb51", "protocol": "vp", "metric": "mean_f1"},
                    {"column": "PA-HMDB51 top-5", "store": "pa-hmdb51", "protocol": "ar", "metric": "top5"}]
        (tmp_path / "tradeoff.yaml").write_text(yaml.safe_dump({**tradeoff, "tradeoff": axes, "evaluate": evaluate}))
        with pytest.raises(FeatstoreError, match=message):
            load_recipe(str(tmp_path / "tradeoff.yaml"))
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
