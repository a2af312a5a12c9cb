"""AD test videos without clips stay in the frame-level ground truth, scored as missed (`evaluate ad` and the
anonymizer's AD validation)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import auc, precision_recall_curve, roc_auc_score
from typer.testing import CliRunner

import anonymize.utility_ad  # noqa: F401  (registers "ad")
from anonymize.utility_tasks import build_task
from data_manifests.schema import Segment, VideoRecord
from evaluate.ad_metrics import all_frames_ground_truth, expand_snippet_scores, frame_ground_truth
from evaluate.cli import app
from evaluate.heads import load_head, save_head
from evaluate.heads.mgfn import MGFN
from evaluate.heads.mgfn_config import PRESETS, MGFNConfig
from evaluate.protocols._anomaly_detector import load_ad_videos, score_videos
from evaluate.protocols.ad import ADConfig, run
from featstore.store import STAGING_DIR, Part, StagingArea, Store, StoreContents, VideoResult, write_store

DIM = 8
FPS = 25.0
CLIP = 16
SHORT_FRAMES = 10  # below one clip
SHORT_INTERVAL = (0.12, 0.32)  # frames 3 .. 7 of the short video


def _video(rng, video_id: str, split: str, label: int, n_clips: int, segments: list[tuple[float, float]]):
    record = VideoRecord(video_id, f"{video_id}.mp4", split, label=label,
                         segments=[Segment(start, end, 1) for start, end in segments])
    frames = np.stack([np.arange(n_clips) * CLIP, np.arange(n_clips) * CLIP + CLIP], axis=1)
    times = frames / FPS
    embeddings = rng.normal(0, 0.5, (n_clips, DIM)).astype(np.float32)
    for start, end in segments:  # planted: clips overlapping an anomalous interval
        embeddings[(times[:, 1] > start) & (times[:, 0] < end), 0] += 3.0
    result = VideoResult(video_id, decoder="synthetic", n_frames=n_clips * CLIP, fps=FPS, duration=n_clips * CLIP / FPS,
                         clip_embeddings=embeddings, clip_frames=frames, clip_times=times,
                         static_embeddings=np.zeros((0, DIM), np.float32), static_frames=np.zeros(0, np.int64))
    return record, result


def write_ad_store(path: Path) -> Path:
    """Six training videos and two scored test videos, plus two test videos without clips: one shorter than a
    clip (its frame count is known) and one whose extraction failed (its frame count is not)."""
    rng = np.random.default_rng(0)
    pairs = [_video(rng, f"train_{i}", "train", i % 2, 10, [(1.28, 3.2)] if i % 2 else []) for i in range(6)]
    pairs += [_video(rng, "test_normal", "test", 0, 8, []), _video(rng, "test_anomalous", "test", 1, 8, [(1.92, 3.84)])]
    short = VideoRecord("test_short", "test_short.mp4", "test", label=1, segments=[Segment(*SHORT_INTERVAL, 1)])
    pairs.append((short, VideoResult("test_short", decoder="synthetic", n_frames=SHORT_FRAMES, fps=FPS,
                                     duration=SHORT_FRAMES / FPS, clip_embeddings=np.zeros((0, DIM), np.float32),
                                     clip_frames=np.zeros((0, 2), np.int64), clip_times=np.zeros((0, 2)),
                                     static_embeddings=np.zeros((0, DIM), np.float32), static_frames=np.zeros(0, np.int64))))
    broken = VideoRecord("test_broken", "test_broken.mp4", "test", label=1, segments=[Segment(0.5, 1.5, 1)])
    pairs.append((broken, VideoResult("test_broken", failed_reason="cannot decode")))
    staging = StagingArea(path, DIM, "float32")
    staging.root.mkdir(parents=True)
    staging.save_part(Part(0, [result for _, result in pairs]))
    attrs = {"config": {"sampling": {"clip_len": CLIP, "stride": CLIP}},
             "dataset": {"header": {"task": "ad", "class_names": ["normal", "anomaly"]}}}
    write_store(path, StoreContents([record for record, _ in pairs], [], attrs), staging, 1)
    shutil.rmtree(path / STAGING_DIR)
    return path


@pytest.fixture(scope="module")
def clipless_store(tmp_path_factory) -> Path:
    return write_ad_store(tmp_path_factory.mktemp("ad-clipless") / "ad.zarr")


@pytest.fixture(scope="module")
def head_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = MGFN(MGFNConfig(input_dim=DIM, **PRESETS["small"])).eval()
    return save_head(tmp_path_factory.mktemp("ad-head") / "head.safetensors", model)


def expected_aucs(store: Store, model, transform=None) -> dict:
    """By hand: scored frames, then every frame of the short video at score 0; the failed video has no frames."""
    videos = load_ad_videos(store, "test")
    scores = expand_snippet_scores(score_videos(model, videos, torch.device("cpu"), transform))
    truth = np.concatenate([frame_ground_truth(v.clip_times, v.intervals) for v in videos])
    short = all_frames_ground_truth(SHORT_FRAMES, FPS, np.array([SHORT_INTERVAL]))
    labels, frame_scores = np.r_[truth, short], np.r_[scores, np.zeros(SHORT_FRAMES)]
    precision, recall, _ = precision_recall_curve(labels, frame_scores)
    without = roc_auc_score(truth, scores)
    return {"roc_auc": roc_auc_score(labels, frame_scores), "pr_auc": auc(recall, precision), "roc_auc_without": without,
            "n_frames": len(labels)}


def test_evaluate_ad_counts_the_frames_of_videos_without_clips(clipless_store, head_file):
    store = Store.open(clipless_store)
    metrics = run(store, ADConfig(head_checkpoint=str(head_file), device="cpu"))
    expected = expected_aucs(store, load_head(head_file, "cpu", expected="mgfn")[0])
    assert metrics["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-12)
    assert metrics["pr_auc"] == pytest.approx(expected["pr_auc"], abs=1e-12)
    assert metrics["roc_auc"] != pytest.approx(expected["roc_auc_without"], abs=1e-6)  # the short video matters
    assert metrics["n_test_frames"] == expected["n_frames"] == 2 * 8 * CLIP + SHORT_FRAMES
    assert metrics["n_test_videos"] == 4
    assert metrics["test_videos_without_clips"] == {"n_videos": 2, "n_frames": SHORT_FRAMES, "n_anomalous_frames": 5,
                                                    "n_unknown_length": 1, "score": 0.0,
                                                    "video_ids": ["test_short", "test_broken"]}


def test_cli_reports_the_videos_without_clips(clipless_store, head_file, tmp_path):
    done = CliRunner().invoke(app, ["ad", "--store", str(clipless_store), "--out", str(tmp_path), "--head-checkpoint",
                                    str(head_file), "--device", "cpu", "--no-progress"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "2 test videos have no clips; their 10 frames are scored 0.0 (anomalous frames missed); 1 of them " \
           "have no known frame count and are left out" in done.output
    assert "test_videos_without_clips.n_videos" in done.output
    saved = json.loads((tmp_path / "ad.json").read_text())["metrics"]["test_videos_without_clips"]
    assert saved["n_videos"] == 2 and saved["n_frames"] == SHORT_FRAMES


def test_anonymizer_validation_counts_them_too(clipless_store):
    store = Store.open(clipless_store)
    task = build_task("ad", store, 1.0, "memory", 8)
    metrics = task.validate(lambda x, mask: x, torch.device("cpu"))
    expected = expected_aucs(store, task.head)
    assert metrics["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-12)
    assert metrics["pr_auc"] == pytest.approx(expected["pr_auc"], abs=1e-12)
    assert metrics["roc_auc"] != pytest.approx(expected["roc_auc_without"], abs=1e-6)
