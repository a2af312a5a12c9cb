"""Frame-level AD metrics: snippet expansion, ground truth from intervals, length checks, AUCs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import auc, precision_recall_curve, roc_auc_score

from evaluate.ad_metrics import (
    NO_EVIDENCE_SCORE,
    all_frames_ground_truth,
    check_concatenated_length,
    check_lengths,
    evaluate_videos,
    expand_snippet_scores,
    frame_level_auc,
)
from data_manifests.errors import FeatstoreError
from featstore.exporters import frame_ground_truth


def test_expansion_repeats_each_snippet():
    expanded = expand_snippet_scores([np.array([0.1, 0.9]), np.array([0.5])], frames_per_snippet=3)
    np.testing.assert_allclose(expanded, [0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5])


def test_ground_truth_marks_the_frames_of_the_intervals():
    fps = 25.0
    frames = np.arange(4) * 16
    times = np.stack([frames, frames + 16], axis=1) / fps
    truth = frame_ground_truth(times, np.array([[20 / fps, 40 / fps, 1.0]]))  # frames 20..39, label column ignored
    expected = np.zeros(64, dtype=int)
    expected[20:40] = 1
    np.testing.assert_array_equal(truth, expected)
    assert frame_ground_truth(times, np.zeros((0, 3))).sum() == 0


def test_length_checks_name_the_video():
    with pytest.raises(FeatstoreError, match="video b: frame-level ground truth has 30 values but 2 snippets"):
        check_lengths(["a", "b"], [np.zeros(1), np.zeros(2)], [np.zeros(16), np.zeros(30)])
    with pytest.raises(FeatstoreError, match="one per video"):
        check_lengths(["a"], [np.zeros(1), np.zeros(1)], [np.zeros(16)])
    with pytest.raises(FeatstoreError, match="3 snippets x 16"):
        check_concatenated_length(np.zeros(40), [np.zeros(1), np.zeros(2)])
    check_concatenated_length(np.zeros(48), [np.zeros(1), np.zeros(2)])


def test_aucs_match_sklearn_and_need_both_classes():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.2).astype(int)
    scores = labels * 0.3 + rng.random(500)
    result = frame_level_auc(scores, labels)
    precision, recall, _ = precision_recall_curve(labels, scores)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert result["pr_auc"] == pytest.approx(auc(recall, precision))
    with pytest.raises(FeatstoreError, match="both normal and anomalous"):
        frame_level_auc(scores, np.zeros(500))
    with pytest.raises(FeatstoreError, match="frame scores"):
        frame_level_auc(scores[:10], labels)


def test_evaluate_videos_end_to_end():
    scores = [np.array([0.1, 0.9]), np.array([0.2])]
    truth = [np.r_[np.zeros(16), np.ones(16)], np.zeros(16)]
    result = evaluate_videos(["a", "b"], scores, truth)
    assert result["roc_auc"] == 1.0 and result["anomalous_frame_rate"] == pytest.approx(1 / 3)


def test_all_frames_ground_truth_uses_the_frame_rate():
    truth = all_frames_ground_truth(10, 25.0, np.array([[0.12, 0.32]]))  # frames 3 .. 7 (0.12 * 25 = 3, 0.32 * 25 = 8)
    np.testing.assert_array_equal(truth, [0, 0, 0, 1, 1, 1, 1, 1, 0, 0])


def test_frames_of_videos_without_clips_count_as_missed():
    scores = [np.array([0.2, 0.8])]
    truth = [np.r_[np.zeros(16), np.ones(16)]]
    assert evaluate_videos(["a"], scores, truth)["roc_auc"] == 1.0
    unscored = [np.array([1, 1, 0, 0])]  # a clip-less video: 2 anomalous, 2 normal frames, all at the lowest score
    result = evaluate_videos(["a"], scores, truth, unscored_truth=unscored)
    # 18 anomalous frames: 16 at 0.8 rank above every normal frame; 2 at 0.0 tie with 2 of the 18 normal frames
    assert NO_EVIDENCE_SCORE == 0.0
    assert result["roc_auc"] == pytest.approx(16 / 18 + 2 / 18 * (2 / 18) / 2)
    labels = np.r_[truth[0], unscored[0]]
    frame_scores = np.r_[np.repeat(scores[0], 16), np.zeros(4)]
    precision, recall, _ = precision_recall_curve(labels, frame_scores)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, frame_scores))
    assert result["pr_auc"] == pytest.approx(auc(recall, precision))
    assert result["anomalous_frame_rate"] == pytest.approx(18 / 36)
