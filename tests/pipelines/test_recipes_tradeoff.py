"""The tradeoff recipe end to end on a generated PA-HMDB51 root in its official layout (tests/_layouts.py): one AAM
per w_B value, each exported and evaluated, the table with one row per w_B and the normalized hypervolume."""

from __future__ import annotations

import json

import pytest

from pipelines.recipes.loader import load_recipe
from pipelines.recipes.table import TABLE_FILE, TABLE_JSON
from tests._layouts import make_pa_hmdb51
from tests.conftest import run_in_process
from tests.pipelines.test_recipes_table1 import FAST


@pytest.mark.slow
def test_tradeoff_end_to_end(monkeypatch, capsys, tmp_path):
    make_pa_hmdb51(tmp_path / "data" / "HMDB51")
    out = tmp_path / "out"
    code, printed, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "tradeoff", "--data-root",
                                        str(tmp_path / "data"), "--out", str(out), *FAST)
    assert code == 0, err
    labels = [f"w_budget={value}" for value in load_recipe("tradeoff").sweep.values]
    table = json.loads((out / TABLE_JSON).read_text())
    assert [point["label"] for point in table["tradeoff"]["points"]] == labels
    assert 0 <= table["tradeoff"]["hypervolume"] <= 1 and set(table["tradeoff"]["front"]) <= set(labels)
    for column in table["columns"]:
        assert list(column["values"]) == ["raw", *labels]
        assert all(0 <= value <= 1 for value in column["values"].values()), column
    markdown = (out / TABLE_FILE).read_text()
    assert all(f"| {label} |" in markdown for label in labels)
    assert "normalized hypervolume of the Pareto front" in markdown
    assert len(list((out / "runs" / "tiny-vit").iterdir())) == len(labels)  # one AAM per w_B
