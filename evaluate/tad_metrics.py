"""Temporal action detection mAP, reproducing the ActionFormer/TriDet ``ANETdetection`` evaluator exactly.

The rules (docs/heads.md repeats them):

- **Ground truth**: per video, an annotation that repeats an earlier *kept* one of the same label with
  start and end within 1e-3 s is dropped. Class ids are the sorted unique ground-truth labels, remapped
  to 0..K-1; zero-length segments (start == end) are dropped *after* the ids are fixed.
- **Predictions** get the same remapping. As in the reference (pandas ``replace`` with a dict), a
  predicted label that is not a ground-truth label keeps its raw value, and is therefore counted under
  the class whose *index* equals it. ``drop_unknown_labels=True`` discards such predictions instead
  (a class absent from the ground truth is not scored, so they cannot help).
- **Matching**, per class and tIoU threshold: predictions are visited in decreasing score order
  (``np.argsort(scores)[::-1]`` on the class's predictions in input order, so ties fall exactly as in
  the reference). Each prediction scans the ground truth of its video and class in decreasing tIoU
  (``np.argsort(tiou)[::-1]``): the first one below the threshold ends the scan (false positive), an
  already matched one is skipped, otherwise it is a true positive and becomes matched. A prediction
  on a video without ground truth of its class is a false positive.
- **AP**: all-point interpolation (VOC 2011): recall padded with 0 and 1, precision with 0 and 0,
  precision made monotone from the right, summed over the recall steps. A class without predictions
  has AP 0. mAP per threshold = mean over classes; the reported average = mean over thresholds.

The implementation is vectorized: the greedy matching of a (class, video) group runs once per true
positive (not once per prediction), with per-ground-truth pointers to the next candidate prediction.
Every float operation that decides a result (tIoU, sort orders, cumulative sums, the AP sum) is the
same numpy call on the same float64 values as the reference, so results are identical, not just close.
One documented difference: the reference crashes when a class has only zero-length ground truth; here
that class gets AP 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_manifests.errors import FeatstoreError

TIOU_THRESHOLDS = np.linspace(0.3, 0.7, 5)  # THUMOS14: 0.3:0.1:0.7
DUPLICATE_TOLERANCE = 1e-3


@dataclass
class Segments:
    """Temporal segments of many videos: one row each. ``score`` is None for ground truth."""

    video: np.ndarray  # (N,) video ids (any hashable dtype: str or int)
    start: np.ndarray  # (N,) seconds
    end: np.ndarray  # (N,) seconds
    label: np.ndarray  # (N,) int class ids
    score: np.ndarray | None = None  # (N,) confidence, predictions only

    def __post_init__(self):
        self.video = np.asarray(self.video)
        self.start = np.asarray(self.start, dtype=np.float64).reshape(-1)
        self.end = np.asarray(self.end, dtype=np.float64).reshape(-1)
        self.label = np.asarray(self.label).reshape(-1).astype(np.int64)
        n = len(self.start)
        arrays = {"video": self.video.reshape(-1), "end": self.end, "label": self.label}
        if self.score is not None:
            self.score = np.asarray(self.score, dtype=np.float64).reshape(-1)
            arrays["score"] = self.score
        self.video = arrays["video"]
        for name, values in arrays.items():
            if len(values) != n:
                raise FeatstoreError(f"segments: {name} has {len(values)} entries but start has {n}")
        for name in ("start", "end", "score"):
            values = getattr(self, name)
            if values is not None and not np.all(np.isfinite(values)):
                raise FeatstoreError(f"segments: {name} contains NaN or infinite values")

    def __len__(self) -> int:
        return len(self.start)

    def take(self, rows: np.ndarray) -> Segments:
        return Segments(self.video[rows], self.start[rows], self.end[rows], self.label[rows],
                        None if self.score is None else self.score[rows])

    @classmethod
    def concatenate(cls, parts: list[Segments]) -> Segments:
        if not parts:
            raise ValueError("nothing to concatenate")
        scores = None if parts[0].score is None else np.concatenate([p.score for p in parts])
        return cls(np.concatenate([p.video for p in parts]), np.concatenate([p.start for p in parts]),
                   np.concatenate([p.end for p in parts]), np.concatenate([p.label for p in parts]), scores)


@dataclass
class DetectionResult:
    """mAP per tIoU threshold, their average, and the AP table (thresholds x classes)."""

    tiou_thresholds: np.ndarray
    mAP: np.ndarray  # (n_thresholds,)
    average_mAP: float
    ap: np.ndarray  # (n_thresholds, n_classes)
    class_labels: np.ndarray  # original label of each AP column

    def to_json(self) -> dict:
        return {
            "tiou_thresholds": [round(float(t), 4) for t in self.tiou_thresholds],
            "mAP": {f"{t:.1f}": float(m) for t, m in zip(self.tiou_thresholds, self.mAP)},
            "average_mAP": float(self.average_mAP),
            "ap_per_class": {str(int(c)): [float(a) for a in self.ap[:, i]] for i, c in enumerate(self.class_labels)},
        }


def remove_duplicate_annotations(gt: Segments, tol: float = DUPLICATE_TOLERANCE) -> Segments:
    """Drop annotations that repeat an earlier kept one of the same video and label within ``tol``."""
    keep = np.ones(len(gt), dtype=bool)
    _, video_codes = np.unique(gt.video, return_inverse=True)
    order = np.argsort(video_codes, kind="stable")
    bounds = np.flatnonzero(np.diff(video_codes[order])) + 1
    for rows in np.split(order, bounds):
        if len(rows) < 2:
            continue
        s, e, lab = gt.start[rows], gt.end[rows], gt.label[rows]
        close = (np.abs(s[:, None] - s[None, :]) <= tol) & (np.abs(e[:, None] - e[None, :]) <= tol) \
            & (lab[:, None] == lab[None, :])
        close = np.tril(close, k=-1)  # j < i: earlier annotations only
        suspects = np.flatnonzero(close.any(axis=1))
        if len(suspects) == 0:
            continue
        # Rare: resolve in order, since only *kept* earlier annotations count.
        kept_local = np.ones(len(rows), dtype=bool)
        for i in suspects:
            if np.any(close[i] & kept_local):
                kept_local[i] = False
        keep[rows[~kept_local]] = False
    return gt.take(np.flatnonzero(keep))


def segment_iou(start: np.ndarray, end: np.ndarray, gt_start: np.ndarray, gt_end: np.ndarray) -> np.ndarray:
    """(P, G) tIoU between predictions and ground truth, with the reference's float operations."""
    tt1 = np.maximum(start[:, None], gt_start[None, :])
    tt2 = np.minimum(end[:, None], gt_end[None, :])
    inter = (tt2 - tt1).clip(0)
    union = ((gt_end - gt_start)[None, :] + (end - start)[:, None]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point interpolated AP (VOC 2011), as ``interpolated_prec_rec`` of the reference."""
    mprec = np.hstack([[0.0], precision, [0.0]])
    mrec = np.hstack([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.where(mrec[1::] != mrec[0:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _greedy_match(valid: np.ndarray, order: list[list[int]]) -> list[int]:
    """Rows (in score order) that become true positives for one (class, video, threshold).

    ``valid`` (P, G): tIoU >= threshold. Equivalent to scanning every row in order and taking the first
    unmatched ground truth in its descending-tIoU ``order`` that is valid, but it only visits the rows
    that actually match: the next such row is the smallest "next valid row" over unmatched columns.
    """
    n_cols = valid.shape[1]
    cols, rows_of = np.nonzero(valid.T)  # column-major: each column's rows come out sorted
    column_rows = np.split(rows_of, np.cumsum(np.bincount(cols, minlength=n_cols))[:-1])
    column_rows = [rows.tolist() for rows in column_rows]
    pointer = [0] * n_cols
    infinity = valid.shape[0]
    next_row = [rows[0] if rows else infinity for rows in column_rows]
    matched = [False] * n_cols
    tp_rows = []
    while True:
        row = min(next_row)
        if row >= infinity:
            return tp_rows
        valid_row = valid[row]
        for g in order[row]:
            if not matched[g] and valid_row[g]:
                break
        matched[g] = True
        next_row[g] = infinity
        tp_rows.append(row)
        for c in range(n_cols):  # every column waiting on this row moves to its next candidate
            if next_row[c] == row:
                pointer[c] += 1
                rows = column_rows[c]
                next_row[c] = rows[pointer[c]] if pointer[c] < len(rows) else infinity


def average_precision_detection(gt_video: np.ndarray, gt_start: np.ndarray, gt_end: np.ndarray,
                                pred_video: np.ndarray, pred_start: np.ndarray, pred_end: np.ndarray,
                                pred_score: np.ndarray, tiou_thresholds: np.ndarray) -> np.ndarray:
    """AP at each threshold for one class. Video ids are integer codes shared by gt and predictions."""
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
    ap = np.zeros(len(thresholds))
    if len(pred_score) == 0:
        return ap
    npos = float(len(gt_video))
    sort_idx = pred_score.argsort()[::-1]
    p_video, p_start, p_end = pred_video[sort_idx], pred_start[sort_idx], pred_end[sort_idx]
    n_pred = len(sort_idx)
    lowest = thresholds.min()
    tp = np.zeros((len(thresholds), n_pred))

    gt_order = np.argsort(gt_video, kind="stable")  # per video, ground truth stays in input order
    gt_videos, gt_first = np.unique(gt_video[gt_order], return_index=True)
    gt_bounds = np.append(gt_first, len(gt_order))
    with_gt = np.isin(p_video, gt_videos)
    rows_with_gt = np.flatnonzero(with_gt)
    if len(rows_with_gt):
        by_video = rows_with_gt[np.argsort(p_video[rows_with_gt], kind="stable")]  # score order within a video
        vids, first = np.unique(p_video[by_video], return_index=True)
        bounds = np.append(first, len(by_video))
        gt_slot = np.searchsorted(gt_videos, vids)
        for k in range(len(vids)):
            rows = by_video[bounds[k]:bounds[k + 1]]
            g = gt_order[gt_bounds[gt_slot[k]]:gt_bounds[gt_slot[k] + 1]]
            tiou = segment_iou(p_start[rows], p_end[rows], gt_start[g], gt_end[g])
            # Only rows reaching the lowest threshold somewhere can match; sort just their tIoU rows.
            candidates = np.flatnonzero((tiou >= lowest).any(axis=1))
            if len(candidates) == 0:
                continue
            tiou = tiou[candidates]
            order = np.argsort(tiou, axis=1)[:, ::-1].tolist()
            for t, threshold in enumerate(thresholds):
                valid = tiou >= threshold
                if not valid.any():
                    continue
                tp[t, rows[candidates[_greedy_match(valid, order)]]] = 1
    fp = 1.0 - tp
    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp_cumsum / npos
        precision = tp_cumsum / (tp_cumsum + fp_cumsum)
    for t in range(len(thresholds)):
        ap[t] = interpolated_ap(precision[t, :], recall[t, :])
    return ap


def evaluate_detections(ground_truth: Segments, predictions: Segments,
                        tiou_thresholds: np.ndarray = TIOU_THRESHOLDS, drop_unknown_labels: bool = False) -> DetectionResult:
    """ActionFormer/TriDet mAP of ``predictions`` against ``ground_truth`` (see the module docstring)."""
    if predictions.score is None:
        raise FeatstoreError("predictions need scores")
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
    gt = remove_duplicate_annotations(ground_truth)
    if len(gt) == 0:
        raise FeatstoreError("no ground-truth segments to evaluate against")
    class_labels = np.unique(gt.label)
    gt = gt.take(np.flatnonzero(gt.start != gt.end))
    gt_class = np.searchsorted(class_labels, gt.label)

    # Remap prediction labels like pandas ``replace(dict)``: known labels -> index, unknown stay raw.
    slot = np.clip(np.searchsorted(class_labels, predictions.label), 0, len(class_labels) - 1)
    known = class_labels[slot] == predictions.label
    pred_class = np.where(known, slot, predictions.label)
    keep = known if drop_unknown_labels else np.ones(len(predictions), dtype=bool)

    videos, codes = np.unique(np.concatenate([gt.video, predictions.video]), return_inverse=True)
    gt_codes, pred_codes = codes[:len(gt)], codes[len(gt):]

    pred_rows = np.flatnonzero(keep & (pred_class >= 0) & (pred_class < len(class_labels)))
    pred_rows = pred_rows[np.argsort(pred_class[pred_rows], kind="stable")]  # input order within a class
    pred_classes_sorted = pred_class[pred_rows]
    gt_rows = np.argsort(gt_class, kind="stable")
    gt_classes_sorted = gt_class[gt_rows]

    ap = np.zeros((len(thresholds), len(class_labels)))
    for c in range(len(class_labels)):
        g = gt_rows[np.searchsorted(gt_classes_sorted, c, "left"):np.searchsorted(gt_classes_sorted, c, "right")]
        p = pred_rows[np.searchsorted(pred_classes_sorted, c, "left"):np.searchsorted(pred_classes_sorted, c, "right")]
        if len(g) == 0:
            continue  # only zero-length ground truth: the reference crashes here; AP stays 0
        ap[:, c] = average_precision_detection(
            gt_codes[g], gt.start[g], gt.end[g],
            pred_codes[p], predictions.start[p], predictions.end[p], predictions.score[p], thresholds)
    mAP = ap.mean(axis=1)
    return DetectionResult(thresholds, mAP, float(mAP.mean()), ap, class_labels)
