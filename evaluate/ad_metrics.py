"""Frame-level anomaly detection metrics (MGFN/RTFM UCF-Crime convention).

- Every snippet score is repeated ``frames_per_snippet`` (16) times, one per frame of the snippet, and
  the videos of the test list are concatenated in order (:func:`expand_snippet_scores`).
- The ground-truth vector holds one 0/1 value per expanded frame: frame slot j of a snippet that spans
  [start_s, end_s) sits at ``start_s + j * (end_s - start_s) / frames_per_snippet`` seconds and is
  anomalous when that time falls in an annotated interval ``[seg_start, seg_end)``
  (:func:`frame_ground_truth`, defined in ``featstore.exporters`` so the MGFN export shares it). For clips of consecutive frames at the video's frame rate this is
  exactly "frame f is anomalous when seg_start * fps <= f < seg_end * fps".
- A video's ground truth must have exactly ``frames_per_snippet x snippets`` values
  (:func:`check_lengths` raises a clear error naming the first video that does not).
- ROC AUC = ``sklearn.metrics.auc`` of ``roc_curve``; PR AUC = ``auc(recall, precision)`` of
  ``precision_recall_curve`` (MGFN's ``test.py``; note this is the trapezoidal PR area, not AP).
- A test video without clips (shorter than one clip, or its extraction failed) has no snippet scores, but it
  stays in the ground truth: every one of its frames (:func:`all_frames_ground_truth`) gets
  :data:`NO_EVIDENCE_SCORE`, the lowest score MGFN's sigmoid can give. A detector that never saw the video
  raises no alarm on it: its anomalous frames count as missed at every threshold, its normal frames as quiet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from data_manifests.errors import FeatstoreError
from featstore.exporters import frame_ground_truth  # noqa: F401  (one definition, re-exported here)

FRAMES_PER_SNIPPET = 16
NO_EVIDENCE_SCORE = 0.0


def all_frames_ground_truth(n_frames: int, fps: float, intervals: np.ndarray) -> np.ndarray:
    """(n_frames,) 0/1 labels of every frame of a video: frame f is anomalous when
    seg_start * fps <= f < seg_end * fps (for a test video that has no clips)."""
    starts = np.arange(n_frames) / fps
    return frame_ground_truth(np.stack([starts, starts + 1 / fps], axis=1), intervals, 1)


def expand_snippet_scores(scores: Sequence[np.ndarray], frames_per_snippet: int = FRAMES_PER_SNIPPET) -> np.ndarray:
    """Per-video snippet scores -> one concatenated frame-level vector (each score repeated)."""
    if not scores:
        return np.zeros(0)
    return np.concatenate([np.repeat(np.asarray(s, dtype=np.float64).reshape(-1), frames_per_snippet) for s in scores])


def check_lengths(video_ids: Sequence[str], scores: Sequence[np.ndarray], ground_truth: Sequence[np.ndarray],
                  frames_per_snippet: int = FRAMES_PER_SNIPPET) -> None:
    """Every video's ground truth must have ``frames_per_snippet`` values per snippet score."""
    if not (len(video_ids) == len(scores) == len(ground_truth)):
        raise FeatstoreError(f"{len(video_ids)} videos, {len(scores)} score arrays and {len(ground_truth)} "
                             f"ground-truth arrays: they must be one per video")
    for video, score, truth in zip(video_ids, scores, ground_truth):
        expected = frames_per_snippet * len(np.asarray(score).reshape(-1))
        if len(truth) != expected:
            raise FeatstoreError(f"video {video}: frame-level ground truth has {len(truth)} values but "
                                 f"{len(np.asarray(score).reshape(-1))} snippets x {frames_per_snippet} frames = {expected}")


def check_concatenated_length(ground_truth: np.ndarray, scores: Sequence[np.ndarray],
                              frames_per_snippet: int = FRAMES_PER_SNIPPET) -> None:
    """For a single concatenated ground-truth file (MGFN's ``gt-ucf.npy``): the total length must match."""
    expected = frames_per_snippet * sum(len(np.asarray(s).reshape(-1)) for s in scores)
    if len(ground_truth) != expected:
        raise FeatstoreError(f"the ground-truth vector has {len(ground_truth)} frames but the test videos have "
                             f"{expected // frames_per_snippet} snippets x {frames_per_snippet} = {expected} frames")


def frame_level_auc(frame_scores: np.ndarray, frame_labels: np.ndarray) -> dict[str, float]:
    """ROC AUC and PR AUC of concatenated frame scores against 0/1 labels, as MGFN's test."""
    frame_scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
    frame_labels = np.asarray(frame_labels).reshape(-1)
    if len(frame_scores) != len(frame_labels):
        raise FeatstoreError(f"{len(frame_scores)} frame scores but {len(frame_labels)} ground-truth frames")
    positives = int(frame_labels.sum())
    if positives == 0 or positives == len(frame_labels):
        raise FeatstoreError("frame-level AUC needs both normal and anomalous frames in the test ground truth")
    fpr, tpr, _ = roc_curve(frame_labels, frame_scores)
    precision, recall, _ = precision_recall_curve(frame_labels, frame_scores)
    return {"roc_auc": float(auc(fpr, tpr)), "pr_auc": float(auc(recall, precision)),
            "anomalous_frame_rate": positives / len(frame_labels)}


def evaluate_videos(video_ids: Sequence[str], snippet_scores: Sequence[np.ndarray], ground_truth: Sequence[np.ndarray],
                    frames_per_snippet: int = FRAMES_PER_SNIPPET,
                    unscored_truth: Sequence[np.ndarray] = ()) -> dict[str, float]:
    """Length-check, expand and score per-video snippet scores against per-video frame labels.

    ``unscored_truth``: the frame labels of test videos without clips; their frames join the ground truth
    with :data:`NO_EVIDENCE_SCORE`."""
    check_lengths(video_ids, snippet_scores, ground_truth, frames_per_snippet)
    unscored = np.concatenate([np.zeros(0, dtype=np.int64), *(np.asarray(t).reshape(-1) for t in unscored_truth)])
    frame_scores = np.concatenate([expand_snippet_scores(snippet_scores, frames_per_snippet),
                                   np.full(len(unscored), NO_EVIDENCE_SCORE)])
    return frame_level_auc(frame_scores, np.concatenate([*ground_truth, unscored]))
