"""`evaluate ad` end to end on a tiny synthetic AD store (plumbing, ground truth, checkpoint reload)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluate.heads import load_head
from evaluate.protocols._anomaly_detector import load_ad_videos, snippet_frames
from evaluate.protocols.ad import ADConfig, run
from data_manifests.errors import FeatstoreError
from featstore.exporters import frame_ground_truth
from featstore.store import Store
from tests.conftest import run_cli


@pytest.fixture(autouse=True)
def one_thread_subprocesses(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_ground_truth_of_the_store_matches_its_frames(ad_store):
    store = Store.open(ad_store)
    assert snippet_frames(store) == 16
    frames = store.array("clips/frames")
    fps = store.videos().fps
    for video in load_ad_videos(store, "test"):
        truth = frame_ground_truth(video.clip_times, video.intervals, 16)
        assert len(truth) == 16 * len(video.features)
        first = frames[store.clip_offsets()[video.index]:store.clip_offsets()[video.index + 1], 0]
        frame_numbers = (first[:, None] + np.arange(16)[None, :]).reshape(-1)
        expected = np.zeros(len(frame_numbers), dtype=int)
        for start, end in video.intervals:
            expected |= (frame_numbers >= round(start * fps[video.index])) & (frame_numbers < round(end * fps[video.index]))
        np.testing.assert_array_equal(truth, expected)


def test_cli_trains_reports_and_reloads(ad_planted_store, tmp_path):
    out = tmp_path / "eval"
    done = run_cli("evaluate", "ad", "--store", str(ad_planted_store), "--out", str(out), "--steps", "5",
                   "--no-progress", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "ad.json").read_text())["metrics"]
    assert 0 <= metrics["roc_auc"] <= 1 and 0 <= metrics["pr_auc"] <= 1
    assert metrics["chance_roc_auc"] == 0.5 and metrics["n_test_frames"] % 16 == 0
    reloaded = run(Store.open(ad_planted_store), ADConfig(head_checkpoint=str(out / "ad-head.safetensors"), device="cpu"))
    assert reloaded["roc_auc"] == metrics["roc_auc"] and reloaded["pr_auc"] == metrics["pr_auc"]


def test_the_authors_copy_loss_variant_reaches_the_head(ad_planted_store, tmp_path):
    head = tmp_path / "head.safetensors"
    run(Store.open(ad_planted_store), ADConfig(steps=2, loss_variant="authors-copy", save_head=str(head), device="cpu"))
    model, _ = load_head(head, "cpu", expected="mgfn")
    assert model.config.loss_variant == "authors-copy"


def test_bad_inputs(tad_store, tmp_path):
    # a TAD store has no normal/anomalous video labels (the CLI turns this into one line + exit 2, see the TAD test)
    with pytest.raises(FeatstoreError, match="task 'ad'"):
        run(Store.open(tad_store), ADConfig(steps=1, device="cpu"))
    with pytest.raises(FeatstoreError, match="loss_variant"):
        ADConfig(loss_variant="other")
    with pytest.raises(FeatstoreError, match="steps"):
        ADConfig(steps=0)


def test_overlapping_snippets_are_refused(ad_store, tmp_path):
    from featstore.store import write_transformed_store

    source = Store.open(ad_store)
    out = tmp_path / "overlap.zarr"
    attrs = dict(source.attrs["config"])
    attrs["sampling"] = {**attrs.get("sampling", {}), "stride": 4}
    write_transformed_store(source, out, lambda x: x, {"config": attrs})
    with pytest.raises(FeatstoreError, match="non-overlapping"):
        run(Store.open(out), ADConfig(steps=1, device="cpu"))


def test_several_seeds_report_the_mean_of_their_heads(ad_planted_store, tmp_path):
    store = Store.open(ad_planted_store)
    single = [run(store, ADConfig(steps=5, seed=seed, save_head=None, device="cpu")) for seed in (3, 4)]
    head = tmp_path / "head.safetensors"
    both = run(store, ADConfig(steps=5, seed=3, seeds=2, save_head=str(head), device="cpu"))
    assert [entry["seed"] for entry in both["per_seed"]] == [3, 4]
    for entry, alone in zip(both["per_seed"], single):
        assert entry["roc_auc"] == alone["roc_auc"] and entry["pr_auc"] == alone["pr_auc"]
    assert both["roc_auc"] == pytest.approx(np.mean([alone["roc_auc"] for alone in single]))
    assert both["pr_auc"] == pytest.approx(np.mean([alone["pr_auc"] for alone in single]))
    assert "per_seed" not in single[0]
    # the saved head is the first seed's
    assert run(store, ADConfig(head_checkpoint=str(head), device="cpu"))["roc_auc"] == single[0]["roc_auc"]
    with pytest.raises(FeatstoreError, match="--seeds trains several heads"):
        ADConfig(seeds=2, head_checkpoint=str(head))
    with pytest.raises(FeatstoreError, match="seeds must be >= 1"):
        ADConfig(seeds=0)
