"""`evaluate tad` end to end on a tiny synthetic TAD store (2 training videos: plumbing, mapping, determinism;
learning itself is tested on planted sequences in tests/evaluate/heads/test_tridet.py)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from evaluate.cli import main
from evaluate.heads import save_head
from evaluate.heads.tridet import TriDet
from evaluate.protocols._action_detector import ClipLessVideos, FeatureGrid, ground_truth_of, load_tad_videos
from evaluate.protocols.tad import TADConfig, run
from evaluate.tad_metrics import Segments, evaluate_detections
from data_manifests.errors import FeatstoreError
from featstore.store import Store
from tests.conftest import run_cli, write_tad_array_store

FAST = ["--epochs", "2", "--warmup-epochs", "0", "--no-progress", "--device", "cpu"]


@pytest.fixture(autouse=True)
def one_thread_subprocesses(monkeypatch):
    """CLI runs are fresh processes: keep them to one intra-op thread on the shared test machines."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_store_sequences_follow_the_recorded_clip_times(tad_store):
    store = Store.open(tad_store)
    videos = load_tad_videos(store, "train")
    times = store.array("clips/times")
    video = videos[0]
    centres = times[video.rows].mean(1)
    np.testing.assert_allclose(video.grid.to_index(centres), np.arange(len(video.rows)), atol=1e-9)
    assert isinstance(video.grid, FeatureGrid) and video.grid.uniform
    assert len(video.features) == len(video.rows) and video.features.shape[1] == store.dim


def test_ground_truth_survives_the_grid_round_trip(tad_store):
    """Detections made from the ground truth through seconds -> feature grid -> seconds score mAP 1."""
    videos = load_tad_videos(Store.open(tad_store), "test")
    gt = ground_truth_of(videos)
    ids, starts, ends, labels = [], [], [], []
    for video in videos:
        seconds = video.grid.to_seconds(video.grid_segments.astype(np.float64))
        ids += [video.video_id] * len(seconds)
        starts.append(seconds[:, 0])
        ends.append(seconds[:, 1])
        labels.append(video.labels)
    predictions = Segments(np.array(ids), np.concatenate(starts), np.concatenate(ends), np.concatenate(labels),
                           np.ones(len(ids)))
    np.testing.assert_allclose(evaluate_detections(gt, predictions).mAP, 1.0)


def test_cli_trains_reports_and_reloads_the_head(tad_planted_store, tmp_path):
    out = tmp_path / "eval"
    done = run_cli("evaluate", "tad", "--store", str(tad_planted_store), "--out", str(out), *FAST)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "tad.json").read_text())
    metrics = result["metrics"]
    assert list(metrics["mAP"]) == ["0.3", "0.4", "0.5", "0.6", "0.7"]
    assert metrics["average_mAP"] == pytest.approx(np.mean(list(metrics["mAP"].values())))
    assert 0 <= metrics["chance_average_mAP"] <= 1 and 0 <= metrics["class_agnostic_average_mAP"] <= 1
    assert "tIoU 0.3" in done.stdout and "average" in done.stdout
    assert (out / "tad-head.safetensors").is_file() and (out / "tad-head.json").is_file()
    assert result["config"]["preset"] == "auto" and metrics["head"]["preset"] == "small"

    reloaded = run(Store.open(tad_planted_store),
                   TADConfig(head_checkpoint=str(out / "tad-head.safetensors"), device="cpu"))
    assert reloaded["mAP"] == metrics["mAP"]
    assert reloaded["head"]["trained_on"] == str(tad_planted_store)


def test_bad_inputs_are_one_line_errors(tiny_store, tad_store, tmp_path):
    # a trimmed action store has classes but no temporal annotations
    done = run_cli("evaluate", "tad", "--store", str(tiny_store), "--out", str(tmp_path), *FAST)
    assert done.returncode == 2 and "no annotated segments" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(FeatstoreError, match="preset must be one of"):
        TADConfig(preset="huge")
    with pytest.raises(FeatstoreError, match="does not exist"):
        TADConfig(head_checkpoint=str(tmp_path / "none.safetensors"))
    with pytest.raises(FeatstoreError, match="max_seq_len"):
        TADConfig(max_seq_len=-1)


def test_run_is_seeded(tad_planted_store):
    config = TADConfig(epochs=2, warmup_epochs=0, device="cpu", seed=5)
    first = run(Store.open(tad_planted_store), config)
    second = run(Store.open(tad_planted_store), config)
    assert first["mAP"] == second["mAP"]


# two training videos; test: one video with clips and one whose decoding failed (annotated, no clips)
WITH_A_FAILED_TEST_VIDEO = [("train", 40, [[5, 12, 0], [20, 28, 1]]), ("train", 36, [[3, 9, 1], [18, 26, 0]]),
                            ("test", 30, [[4, 10, 0], [16, 24, 1]]), ("test", 0, [[2, 6, 0], [8, 12, 1]])]


@pytest.fixture(scope="module")
def failed_video_store(tmp_path_factory):
    return write_tad_array_store(tmp_path_factory.mktemp("tad") / "failed.zarr", WITH_A_FAILED_TEST_VIDEO, ["a", "b"])


def perfect_detections(videos) -> Segments:
    ids = [v.video_id for v in videos for _ in v.labels]
    return Segments(np.array(ids), np.concatenate([v.segments[:, 0] for v in videos]),
                    np.concatenate([v.segments[:, 1] for v in videos]), np.concatenate([v.labels for v in videos]),
                    np.ones(len(ids)))


def test_segments_of_test_videos_without_clips_count_as_missed(failed_video_store):
    store = Store.open(failed_video_store)
    videos = load_tad_videos(store, "test")
    clipless = ClipLessVideos.of(store, "test")
    assert [v.video_id for v in videos] == ["t0002"] and clipless.video_ids == ["t0003"]
    assert clipless.segments.start.tolist() == [2.0, 8.0] and clipless.segments.label.tolist() == [0, 1]
    gt = ground_truth_of(videos, clipless)
    assert len(gt) == 4
    # every segment of the video with clips found; each class has a second, missed one: recall 1/2, AP 1/2
    result = evaluate_detections(gt, perfect_detections(videos))
    np.testing.assert_allclose(result.mAP, 0.5)
    assert ClipLessVideos.of(store, "train").video_ids == []


def test_cli_reports_the_test_videos_without_clips(failed_video_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["evaluate", "tad", "--store", str(failed_video_store), "--out", str(tmp_path),
                                      *FAST])
    with pytest.raises(SystemExit) as exited:
        main()
    out = capsys.readouterr().out
    assert exited.value.code in (0, None)
    metrics = json.loads((tmp_path / "tad.json").read_text())["metrics"]
    assert metrics["n_test_videos"] == 1 and metrics["n_test_segments"] == 4
    assert metrics["n_test_videos_without_clips"] == 1 and metrics["n_missed_segments_without_clips"] == 2
    assert "test videos without clips: 1 (their 2 segments count as missed)" in " ".join(out.split())


def test_a_head_for_other_classes_is_refused(failed_video_store, tmp_path):
    store = Store.open(failed_video_store)
    config = TADConfig().model_config("small", store.dim, 2, [40])
    for meta, message in [({"class_names": ["a", "walk"]}, "class 1 is 'walk'"), ({}, None)]:
        head = save_head(tmp_path / "head.safetensors", TriDet(config), meta)
        if message is None:
            assert run(store, TADConfig(head_checkpoint=str(head), device="cpu"))["n_test_videos_without_clips"] == 1
            continue
        with pytest.raises(FeatstoreError, match=message):
            run(store, TADConfig(head_checkpoint=str(head), device="cpu"))
    three = save_head(tmp_path / "three.safetensors", TriDet(TADConfig().model_config("small", store.dim, 3, [40])), {})
    with pytest.raises(FeatstoreError, match="expects 8-d features and 3 classes"):
        run(store, TADConfig(head_checkpoint=str(three), device="cpu"))
