"""The report's extra figures: each PNG is written, and its data sidecar holds exactly what was given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from anonymize import checkpoint as ckpt
from pipelines import report_plots
from pipelines.label_placement import place_labels, text_box
from featstore.store import Store
from tests.anonymize.conftest import small_config, structured_store

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG


def _fake_run(folder: Path, history: list[dict], seed: int = 0, w_budget: float = 1.0) -> Path:
    folder.mkdir(parents=True)
    small_config(Path("store.zarr"), folder, seed=seed, w_budget=w_budget).save(folder / ckpt.CONFIG_FILE)
    (folder / ckpt.CHECKPOINT_JSON).write_text(json.dumps({"epoch": len(history), "history": history}))
    return folder


HISTORY = [{"epoch": 0, "identity_init": {}, "val": {"action.top1": 0.4}},
           {"epoch": 1, "loss": 1.0, "utility": 0.9, "privacy": -0.5, "lc": 0.2, "adversary": float("nan")},
           {"epoch": 2, "loss": 0.8, "utility": 0.7, "privacy": -0.6, "lc": 0.3, "adversary": float("nan"),
            "val": {"action.top1": 0.6}}]


def test_training_curves_follow_the_history_and_skip_baselines(tmp_path):
    run = _fake_run(tmp_path / "run", HISTORY)
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    (baseline / ckpt.BASELINE_FILE).write_text("{}")
    curves, skipped = report_plots.training_curves_data([run, baseline])
    assert list(skipped) == ["baseline"] and "no training history" in skipped["baseline"]
    curve = curves["run"]
    assert curve["epochs"] == [1, 2] and curve["train"]["loss"] == [1.0, 0.8] and curve["train"]["lc"] == [0.2, 0.3]
    assert "adversary" not in curve["train"]  # never finite: no panel
    assert curve["val_epochs"] == [0, 2] and curve["val"] == {"action.top1": [0.4, 0.6]}
    report_plots.plot_training_curves(curves, tmp_path / "curves.png")
    assert _is_png(tmp_path / "curves.png")
    assert json.loads((tmp_path / "curves.json").read_text()) == curves


def test_utility_bars_hold_every_utility_row(tmp_path):
    table1 = [{"pair": "p", "metric": "action top-1", "kind": "utility", "raw": 0.6, "anonymized": 0.5},
              {"pair": "p", "metric": "attribute cMAP", "kind": "privacy", "raw": 0.8, "anonymized": 0.6},
              {"pair": "q", "metric": "AD ROC AUC", "kind": "utility", "raw": 0.9, "anonymized": None}]
    rows = report_plots.utility_data(table1)
    assert [(r["pair"], r["metric"], r["raw"], r["anonymized"]) for r in rows] == \
        [("p", "action top-1", 0.6, 0.5), ("q", "AD ROC AUC", 0.9, None)]
    report_plots.plot_utility(rows, tmp_path / "utility.png")
    assert _is_png(tmp_path / "utility.png") and json.loads((tmp_path / "utility.json").read_text()) == rows


def test_projection_is_deterministic_and_uses_test_clips_only(tmp_path):
    raw = Store.open(structured_store(tmp_path / "raw.zarr", n_videos=24))
    first = report_plots.projection_data(raw, raw, "q", seed=3, max_points=12)
    again = report_plots.projection_data(raw, raw, "q", seed=3, max_points=12)
    assert first == again and len(first["rows"]) == 12
    videos, offsets = raw.videos(), raw.clip_offsets()
    video_of_row = np.searchsorted(offsets, first["rows"], side="right") - 1
    assert set(videos.split[video_of_row]) == {"test"}
    assert first["action"] == videos.label[video_of_row].tolist()
    assert first["attribute_value"] == videos.attributes[video_of_row, 1].tolist()
    assert np.asarray(first["pca_raw"]).shape == (12, 2) and first["tsne_raw"] == first["tsne_anon"]
    report_plots.plot_projection(first, "test", tmp_path / "projection.png")
    assert _is_png(tmp_path / "projection.png")
    assert json.loads((tmp_path / "projection.json").read_text()) == first


def _point(run: Path, utility: float, privacy: float) -> dict:
    return {"run": str(run), "name": run.name, "label": "aam direct", "kind": "aam", "w_budget": 1.0,
            "utility": utility, "privacy": privacy}


def test_seed_spread_groups_runs_that_differ_only_by_seed(tmp_path):
    runs = [_fake_run(tmp_path / f"s{seed}", HISTORY, seed=seed) for seed in (0, 1, 2)]
    other = _fake_run(tmp_path / "other", HISTORY, w_budget=4.0)
    points = [_point(runs[0], 0.5, 0.8), _point(runs[1], 0.7, 0.6), _point(runs[2], 0.6, 0.7), _point(other, 0.1, 0.1)]
    (group,) = report_plots.seed_spread_data(points)
    assert group["runs"] == ["s0", "s1", "s2"] and group["seeds"] == [0, 1, 2]
    assert group["utility"]["mean"] == pytest.approx(0.6) and (group["utility"]["min"], group["utility"]["max"]) == (0.5, 0.7)
    assert (group["privacy"]["min"], group["privacy"]["max"]) == (0.6, 0.8)
    report_plots.plot_seed_spread([group], "ar top1", "cMAP", tmp_path / "seeds.png")
    assert _is_png(tmp_path / "seeds.png") and json.loads((tmp_path / "seeds.json").read_text()) == [group]
    assert report_plots.seed_spread_data([points[0], points[3]]) == []  # no repeats: nothing to show


def test_labels_of_crowded_points_neither_overlap_nor_leave_the_axes():
    figure = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    anchors = [(0.33, 1.0), (0.335, 0.995), (0.34, 1.0), (0.0, 0.0), (0.001, 0.002), (1.0, 0.5)]
    labels = place_labels(axes, anchors, [f"w_B {i}" for i in range(len(anchors))], ["C0"] * len(anchors))
    renderer = figure.canvas.get_renderer()
    boxes = [text_box(label, renderer) for label in labels]
    frame = axes.get_window_extent(renderer)
    for index, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert not any(box.overlaps(other) for other in boxes[index + 1:])
