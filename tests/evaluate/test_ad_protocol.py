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


def test_centring_trains_and_scores_the_head_on_clips_minus_the_train_mean(ad_planted_store):
    import torch

    from evaluate.ad_metrics import evaluate_videos
    from evaluate.protocols import _anomaly_detector as detector

    store = Store.open(ad_planted_store)
    config = ADConfig(steps=5, seed=2, centre="train-mean", save_head=None, device="cpu")
    found = run(store, config)
    assert found["centre"] == "train-mean"
    # the same head by hand: MGFN's training and scoring on the clips minus the train split's mean clip
    train, test = load_ad_videos(store, "train"), load_ad_videos(store, "test")
    mean = detector.mean_clip(train)
    _, head, recipe = config.head_setup(store.dim, len(train))
    model, _ = detector.train_mgfn(detector.centred(train, mean), head, recipe.steps, recipe.lr, recipe.weight_decay,
                                   recipe.batch_per_class, 2, torch.device("cpu"))
    test = detector.centred(test, mean)
    truth = [frame_ground_truth(v.clip_times, v.intervals, 16) for v in test]
    by_hand = evaluate_videos([v.video_id for v in test], detector.score_videos(model, test, torch.device("cpu")),
                              truth, 16)
    assert found["roc_auc"] == by_hand["roc_auc"] and found["pr_auc"] == by_hand["pr_auc"]
    # the recipe reads the clips as stored, and this store's mean is far from 0: another head, another reading
    assert np.linalg.norm(mean) > 0.1
    assert run(store, ADConfig(steps=5, seed=2, save_head=None, device="cpu"))["roc_auc"] != found["roc_auc"]


def test_centred_clips_have_a_zero_train_mean(ad_planted_store):
    from evaluate.protocols._anomaly_detector import centred, mean_clip

    videos = load_ad_videos(Store.open(ad_planted_store), "train")
    moved = centred(videos, mean_clip(videos))
    stacked = np.concatenate([v.features for v in moved]).astype(np.float64)
    assert np.abs(stacked.mean(axis=0)).max() < 1e-5
    assert np.abs(stacked).max() > 1e-2  # not everything zeroed
    assert [v.video_id for v in moved] == [v.video_id for v in videos]


def test_a_saved_head_is_evaluated_with_its_own_centring(ad_planted_store, tmp_path):
    store = Store.open(ad_planted_store)
    head = tmp_path / "head.safetensors"
    trained = run(store, ADConfig(steps=5, centre="train-mean", save_head=str(head), device="cpu"))
    assert json.loads(head.with_suffix(".json").read_text())["centre"] == "train-mean"
    reloaded = run(store, ADConfig(head_checkpoint=str(head), centre="train-mean", device="cpu"))
    assert reloaded["roc_auc"] == trained["roc_auc"] and reloaded["pr_auc"] == trained["pr_auc"]
    with pytest.raises(FeatstoreError, match="trained with --centre train-mean"):
        run(store, ADConfig(head_checkpoint=str(head), device="cpu"))
    with pytest.raises(FeatstoreError, match="centre must be one of"):
        ADConfig(centre="test-mean")


def test_cli_centre_option_and_its_bad_value(ad_planted_store, tmp_path):
    out = tmp_path / "eval"
    done = run_cli("evaluate", "ad", "--store", str(ad_planted_store), "--out", str(out), "--steps", "2",
                   "--centre", "train-mean", "--no-progress", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "ad.json").read_text())["metrics"]["centre"] == "train-mean"
    bad = run_cli("evaluate", "ad", "--store", str(ad_planted_store), "--out", str(tmp_path / "bad"), "--steps", "2",
                  "--centre", "per-video", "--no-progress", "--device", "cpu")
    assert bad.returncode == 2 and "centre must be one of" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad" / "ad.json").exists()
