"""The bias recipe end to end on generated NTU RGB+D 60, Toyota Smarthome and Kinetics-400 roots in their official
layouts (tests/_layouts.py), after its missing-inputs check names the absent gender table."""

from __future__ import annotations

import json

import pytest

from pipelines.recipes.table import TABLE_FILE, TABLE_JSON
from tests._layouts import make_bias_root
from tests.conftest import run_in_process
from tests.pipelines.test_recipes_table1 import FAST


@pytest.mark.slow
def test_bias_end_to_end(monkeypatch, capsys, tmp_path):
    data = make_bias_root(tmp_path / "data")
    out = tmp_path / "out"
    table = data / "Toyota_Smarthome" / "genders.csv"
    text = table.read_text()
    table.unlink()
    code, _, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "bias", "--data-root", str(data),
                                  "--out", str(out), *FAST)
    assert code == 2 and "Traceback" not in err
    assert f"toyota: bias --genders file {table} does not exist" in " ".join(err.split())
    assert not out.exists()

    table.write_text(text)
    code, printed, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "bias", "--data-root", str(data),
                                        "--out", str(out), *FAST)
    assert code == 0, err
    columns = {column["column"]: column["values"] for column in json.loads((out / TABLE_JSON).read_text())["columns"]}
    assert len(columns) == 12 and "TSH gap" in columns and "NTU-Bias-M overall" in columns
    for values in columns.values():
        assert 0 <= values["raw"] <= 1 and 0 <= values["anonymized"] <= 1, values
    steps = [line for line in printed.splitlines() if "evaluate bias" in line]
    assert len(steps) == 6  # three protocols, raw and anonymized; each result serves its four columns
    assert "| Raw |" in (out / TABLE_FILE).read_text()
