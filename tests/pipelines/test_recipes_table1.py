"""The table1 recipe end to end on generated roots in the official layouts (tests/_layouts.py): every dataset
extracted with the test encoder, the AAM co-trained with AR, TAD and AD for two epochs, every store exported and
evaluated, the pixel-level baseline rows (every dataset but Kinetics-400, whose column they skip, extracted again
from transformed frames and evaluated), the table written; then rerun: finished steps are skipped, a step whose record is gone is redone, and a changed training
setting trains a new run while a changed box file redoes only the blur and blacken steps of its dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_manifests.registry import resolve_dataset
from featstore.store import Store
from pipelines.recipes.loader import load_recipe
from pipelines.recipes.runner import STEPS_FILE
from pipelines.recipes.table import TABLE_FILE, TABLE_JSON
from tests._layouts import make_table1_root, write_person_boxes
from tests.conftest import run_in_process

# a few seconds of training and probing instead of the paper's 100 epochs
FAST = ["--encoder", "tiny-vit", "--set", "epochs=2", "--set", "batch_size=16", "--set", "aam={layers: 1, heads: 2}",
        "--set", "identity={preset: zero}", "--set", "head_init_epochs=2", "--set", "validate_every=1",
        "--eval-epochs", "2", "--device", "cpu", "--no-progress"]
COLUMNS = ["VISPR cMAP", "K400 top-1", "UCF101 top-1", "HMDB51 top-1", "VP-UCF101 cMAP", "VP-HMDB51 cMAP",
           "THUMOS14 mAP", "UCF-Crime AUC"]
# one of the four pixel baselines (each extracts seven datasets again, about a minute here), the one that needs the
# person boxes; the choice of rows and each row's transform settings: tests/pipelines/test_recipes.py
PIXEL_ROWS = {"Blackening": "blacken"}


@pytest.mark.slow
def test_table1_end_to_end_then_resumed(monkeypatch, capsys, tmp_path):
    data = make_table1_root(tmp_path / "data")
    out = tmp_path / "out"
    # pixel baselines (all of them by default for i3d only): the person boxes of every dataset they extract (not
    # k400: they skip its column) for blacken
    recipe = load_recipe("table1")
    box_files = {store: write_person_boxes(tmp_path / "boxes" / f"{store}.csv", [
        record.video_id for record in resolve_dataset(spec.dataset, data / spec.folder, spec.fold).records])
        for store, spec in recipe.datasets.items() if store != "k400"}
    pixel = ["--pixel-baselines", ",".join(PIXEL_ROWS), *(f"--boxes={store}={path}" for store, path in box_files.items())]

    def table1(*args: str) -> str:
        code, printed, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "table1", "--data-root",
                                            str(data), "--out", str(out), *FAST, *pixel, *args)
        assert code == 0, err
        return printed

    printed = table1()
    # the plan, before any work: videos, clips and a time from the clips/s measured here, the extra extractions
    assert f"ucf101: ucf101 at {data / 'UCF101'}: 18 videos" in printed
    assert "clips/s (measured here)" in printed
    assert printed.count("pixel baseline, 7 datasets extracted again from transformed frames") == len(PIXEL_ROWS)
    table = json.loads((out / TABLE_JSON).read_text())
    columns = {column["column"]: column["values"] for column in table["columns"]}
    assert list(columns) == COLUMNS and table["pixel_baselines"] == list(PIXEL_ROWS)
    for column, values in columns.items():
        assert list(values) == ["raw", *PIXEL_ROWS, "anonymized"]
        skipped = [label for label in PIXEL_ROWS if column == "K400 top-1"]  # not evaluated: no number
        assert all(values[label] is None for label in skipped), values
        assert all(0 <= value <= 1 for label, value in values.items() if label not in skipped), values
    markdown = (out / TABLE_FILE).read_text()
    assert f"| Raw | {columns['VISPR cMAP']['raw'] * 100:.2f} |" in markdown
    for label in PIXEL_ROWS:  # measured, with the relative change to raw; K400 (the second column): '-'
        cell = f"{columns['VISPR cMAP'][label] * 100:.2f} ("
        assert any(line.startswith(f"| {label} | {cell}") and line.split(" | ")[2] == "-"
                   for line in markdown.splitlines()), label
        assert not (out / "stores" / "tiny-vit" / label / "k400.zarr").exists()  # k400 is not extracted for it
    assert "The paper publishes no numbers of this recipe for tiny-vit." in markdown
    raw_features = np.asarray(Store.open(out / "stores" / "tiny-vit" / "ucf101.zarr").clip_embeddings[:])
    for label, transform in PIXEL_ROWS.items():  # each row's stores: extracted from its transformed frames
        identity = Store.open(out / "stores" / "tiny-vit" / label / "vp-hmdb51.zarr").identity["pixel_transform"]
        assert identity["name"] == transform and ("boxes_sha256" in identity) == (transform == "blacken")
        transformed = np.asarray(Store.open(out / "stores" / "tiny-vit" / label / "ucf101.zarr").clip_embeddings[:])
        assert transformed.shape == raw_features.shape and not np.allclose(transformed, raw_features)
    # a pixel row is evaluated like a raw store: its own attribute labels, not the raw store's
    result = json.loads((out / "results" / "vp-hmdb51" / "Blackening" / "vp-raw.json").read_text())
    assert result["config"]["labels_from"] is None

    steps = json.loads((out / STEPS_FILE).read_text())
    # extract, train, export, evaluate raw + anon; per pixel row extract and evaluate again all but k400
    assert len(steps) == 8 + 1 + 8 + 2 * 8 + len(PIXEL_ROWS) * 2 * 7
    assert not [name for name in steps if "k400 [" in name]
    printed = table1()
    assert printed.count("skip ") == len(steps)
    assert json.loads((out / TABLE_JSON).read_text()) == table

    # a step without its record (killed before it finished) is redone; the others are kept
    del steps["evaluate ar hmdb51 anon"]
    (out / STEPS_FILE).write_text(json.dumps(steps))
    printed = table1()
    assert printed.count("skip ") == len(steps) and "skip evaluate ar hmdb51 anon" not in printed
    assert "evaluate ar hmdb51 anon" in printed

    # a changed training setting trains a new run (its folder named by its fingerprint) and redoes what follows; a
    # changed box file redoes the blacken extraction of its dataset and its evaluation, nothing else
    write_person_boxes(box_files["thumos14"], [line.split(",")[0] for line in box_files["thumos14"].read_text()
                                               .splitlines()[1:]][:1])
    printed = table1("--set", "w_lc=10")
    assert "skip extract k400" in printed and "skip train" not in printed and "skip export" not in printed
    assert len(list((out / "runs" / "tiny-vit").iterdir())) == 2
    redone = [name for name in steps if "[" in name and f"skip {name}:" not in printed]  # the pixel rows' steps
    assert sorted(redone) == ["evaluate tad thumos14 raw [Blackening]", "extract thumos14 [Blackening]"]
