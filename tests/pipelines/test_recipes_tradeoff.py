"""The tradeoff recipe end to end on a generated PA-HMDB51 root in its official layout (tests/_layouts.py): one AAM
per w_B value, each exported and evaluated once, the table with one row per w_B, and the trade-off (points, Pareto
front, normalized hypervolume, plot) built from the table's own columns without exporting or evaluating again."""

from __future__ import annotations

import json

import pytest

from evaluate.metrics import normalized_hypervolume, pareto_front
from pipelines import tradeoff
from pipelines.recipes.loader import load_recipe
from pipelines.recipes.runner import STEPS_FILE
from pipelines.recipes.table import TABLE_FILE, TABLE_JSON
from pipelines.tradeoff_command import PLOT_FILE
from tests._layouts import make_pa_hmdb51
from tests.conftest import run_in_process
from tests.pipelines.test_recipes_table1 import FAST


@pytest.mark.slow
def test_tradeoff_end_to_end(monkeypatch, capsys, tmp_path):
    make_pa_hmdb51(tmp_path / "data" / "HMDB51")
    out = tmp_path / "out"

    def refuse(*args, **kwargs):
        raise AssertionError("the recipe's trade-off exported or evaluated again")

    # the trade-off's own export and evaluation: the recipe has the numbers already
    for name in ("run", "evaluate_store", "anonymized_store", "export_store"):
        monkeypatch.setattr(tradeoff, name, refuse)
    code, printed, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "tradeoff", "--data-root",
                                        str(tmp_path / "data"), "--out", str(out), *FAST)
    assert code == 0, err
    recipe = load_recipe("tradeoff")
    labels = [f"w_budget={value}" for value in recipe.sweep.values]
    table = json.loads((out / TABLE_JSON).read_text())
    columns = {column["column"]: column["values"] for column in table["columns"]}
    for values in columns.values():
        assert list(values) == ["raw", *labels]
        assert all(0 <= value <= 1 for value in values.values()), values

    # the points are the table's columns the recipe names as the axes
    utility, privacy = columns[recipe.tradeoff.utility], columns[recipe.tradeoff.privacy]
    result = table["tradeoff"]
    assert [point["label"] for point in result["points"]] == labels
    assert [(point["utility"], point["privacy"]) for point in result["points"]] == \
        [(utility[label], privacy[label]) for label in labels]
    assert (result["raw"]["utility"], result["raw"]["privacy"]) == (utility["raw"], privacy["raw"])
    coordinates = [(utility[label], 1 - privacy[label]) for label in labels]
    assert result["front"] == [labels[index] for index in pareto_front(coordinates)]
    assert result["hypervolume"] == pytest.approx(normalized_hypervolume(coordinates, (0.0, 0.0)))
    assert result["raw_hypervolume"] == pytest.approx(normalized_hypervolume([(utility["raw"], 1 - privacy["raw"])],
                                                                             (0.0, 0.0)))
    assert (out / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and result["plot"] == PLOT_FILE

    # each run exported and evaluated once: extract, then per w_B train and export, and the two evaluations of
    # raw and of every row
    steps = json.loads((out / STEPS_FILE).read_text())
    assert len(steps) == 1 + 2 * len(labels) + 2 * (1 + len(labels))
    assert not (out / "tradeoff").exists() and not any((out / "runs" / "tiny-vit").glob("*/anon.zarr"))
    markdown = (out / TABLE_FILE).read_text()
    assert all(f"| {label} |" in markdown for label in labels)
    assert f"normalized hypervolume of the Pareto front {result['hypervolume']:.4f}" in markdown
    assert len(list((out / "runs" / "tiny-vit").iterdir())) == len(labels)  # one AAM per w_B
