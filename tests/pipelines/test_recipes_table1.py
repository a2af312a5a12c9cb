"""The table1 recipe end to end on generated roots in the official layouts (tests/_layouts.py): every dataset
extracted with the test encoder, the AAM co-trained with AR, TAD and AD for two epochs, every store exported and
evaluated, the table written; then rerun: finished steps are skipped, a step whose record is gone is redone, and a
changed training setting trains a new run."""

from __future__ import annotations

import json

import pytest

from pipelines.recipes.runner import STEPS_FILE
from pipelines.recipes.table import TABLE_FILE, TABLE_JSON
from tests._layouts import make_table1_root
from tests.conftest import run_in_process

# a few seconds of training and probing instead of the paper's 100 epochs
FAST = ["--encoder", "tiny-vit", "--set", "epochs=2", "--set", "batch_size=16", "--set", "aam={layers: 1, heads: 2}",
        "--set", "identity={preset: zero}", "--set", "head_init_epochs=2", "--set", "validate_every=1",
        "--eval-epochs", "2", "--device", "cpu", "--no-progress"]
COLUMNS = ["VISPR cMAP", "K400 top-1", "UCF101 top-1", "HMDB51 top-1", "VP-UCF101 cMAP", "VP-HMDB51 cMAP",
           "THUMOS14 mAP", "UCF-Crime AUC"]


@pytest.mark.slow
def test_table1_end_to_end_then_resumed(monkeypatch, capsys, tmp_path):
    data = make_table1_root(tmp_path / "data")
    out = tmp_path / "out"

    def table1(*args: str) -> str:
        code, printed, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "table1", "--data-root",
                                            str(data), "--out", str(out), *FAST, *args)
        assert code == 0, err
        return printed

    printed = table1()
    # the plan, before any work: videos, clips and a time from the clips/s measured here
    assert f"ucf101: ucf101 at {data / 'UCF101'}: 18 videos" in printed
    assert "clips/s (measured here)" in printed
    table = json.loads((out / TABLE_JSON).read_text())
    columns = {column["column"]: column["values"] for column in table["columns"]}
    assert list(columns) == COLUMNS
    for values in columns.values():
        assert 0 <= values["raw"] <= 1 and 0 <= values["anonymized"] <= 1, values
    markdown = (out / TABLE_FILE).read_text()
    assert f"| Raw | {columns['VISPR cMAP']['raw'] * 100:.2f} |" in markdown
    assert "The paper publishes no numbers of this recipe for tiny-vit." in markdown

    steps = json.loads((out / STEPS_FILE).read_text())
    assert len(steps) == 8 + 1 + 8 + 2 * 8  # extract, train, export, evaluate raw + anon
    printed = table1()
    assert printed.count("skip ") == len(steps)
    assert json.loads((out / TABLE_JSON).read_text()) == table

    # a step without its record (killed before it finished) is redone; the others are kept
    del steps["evaluate ar hmdb51 anon"]
    (out / STEPS_FILE).write_text(json.dumps(steps))
    printed = table1()
    assert printed.count("skip ") == len(steps) and "skip evaluate ar hmdb51 anon" not in printed
    assert "evaluate ar hmdb51 anon" in printed

    # a changed training setting trains a new run (its folder named by its fingerprint) and redoes what follows
    printed = table1("--set", "w_lc=10")
    assert "skip extract k400" in printed and "skip train" not in printed and "skip export" not in printed
    assert len(list((out / "runs" / "tiny-vit").iterdir())) == 2
