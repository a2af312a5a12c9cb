"""TAD mAP: hand-built cases and randomized comparison with a straightforward per-prediction evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from evaluate.tad_metrics import (
    TIOU_THRESHOLDS,
    Segments,
    evaluate_detections,
    interpolated_ap,
    remove_duplicate_annotations,
)
from data_manifests.errors import FeatstoreError


# ------------------------------------------------------------------ an independent, literal evaluator
def _straight_iou(s, e, gs, ge):
    out = []
    for a, b in zip(gs, ge):
        inter = max(0.0, min(e, b) - max(s, a))
        out.append(inter / ((b - a) + (e - s) - inter))
    return np.array(out)


def _straight_interp(prec, rec):
    mprec = [0.0] + list(prec) + [0.0]
    mrec = [0.0] + list(rec) + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    steps = [(mrec[i] - mrec[i - 1]) * mprec[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]]
    return float(np.sum(steps))  # numpy's pairwise sum, as the published code (a Python sum differs in the last ulp)


def _straight_evaluate(gt_rows, pred_rows, thresholds):
    """gt_rows: [(video, s, e, label)], pred_rows: [(video, s, e, label, score)]; a plain transcription of the
    published algorithm: one prediction at a time, one ground truth at a time."""
    kept = []
    for row in gt_rows:
        if not any(k[0] == row[0] and abs(k[1] - row[1]) <= 1e-3 and abs(k[2] - row[2]) <= 1e-3 and k[3] == row[3]
                   for k in kept):
            kept.append(row)
    labels = sorted({r[3] for r in kept})
    index = {lab: i for i, lab in enumerate(labels)}
    kept = [r for r in kept if r[1] != r[2]]
    ap = np.zeros((len(thresholds), len(labels)))
    for lab in labels:
        cidx = index[lab]
        gts = [r for r in kept if r[3] == lab]
        preds = [p for p in pred_rows if index.get(p[3], p[3]) == cidx]
        if not preds:
            continue
        scores = np.array([p[4] for p in preds])
        preds = [preds[i] for i in scores.argsort()[::-1]]
        lock = np.full((len(thresholds), len(gts)), -1)
        tp = np.zeros((len(thresholds), len(preds)))
        fp = np.zeros((len(thresholds), len(preds)))
        for idx, p in enumerate(preds):
            mine = [j for j, g in enumerate(gts) if g[0] == p[0]]
            if not mine:
                fp[:, idx] = 1
                continue
            tiou = _straight_iou(p[1], p[2], [gts[j][1] for j in mine], [gts[j][2] for j in mine])
            for t, thr in enumerate(thresholds):
                for jdx in tiou.argsort()[::-1]:
                    if tiou[jdx] < thr:
                        fp[t, idx] = 1
                        break
                    if lock[t, mine[jdx]] >= 0:
                        continue
                    tp[t, idx] = 1
                    lock[t, mine[jdx]] = idx
                    break
                if tp[t, idx] == 0 and fp[t, idx] == 0:
                    fp[t, idx] = 1
        tpc, fpc = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
        for t in range(len(thresholds)):
            ap[t, cidx] = _straight_interp(tpc[t] / (tpc[t] + fpc[t]), tpc[t] / len(gts))
    return ap


def _segments(rows, with_score):
    cols = list(zip(*rows))
    return Segments(np.array(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]),
                    np.array(cols[4]) if with_score else None)


# ------------------------------------------------------------------ hand-built cases
def test_perfect_predictions_score_one():
    gt = [("a", 1.0, 3.0, 0), ("a", 5.0, 9.0, 1), ("b", 0.0, 2.0, 0)]
    preds = [(v, s, e, lab, 0.9) for v, s, e, lab in gt]
    result = evaluate_detections(_segments(gt, False), _segments(preds, True))
    np.testing.assert_array_equal(result.mAP, np.ones(5))
    assert result.average_mAP == 1.0


def test_duplicate_prediction_is_a_false_positive_and_threshold_matters():
    gt = [("a", 0.0, 10.0, 0)]
    # tIoU of [0, 5] with [0, 10] is 0.5: a true positive up to 0.5 and a false positive above.
    preds = [("a", 0.0, 5.0, 0, 0.9), ("a", 0.0, 10.0, 0, 0.8)]
    result = evaluate_detections(_segments(gt, False), _segments(preds, True))
    # <= 0.5: first is TP (precision 1 at recall 1) -> AP 1; above: first FP, second TP -> precision 0.5 -> AP 0.5
    np.testing.assert_allclose(result.mAP, [1.0, 1.0, 1.0, 0.5, 0.5])


def test_prediction_in_a_video_without_that_class_is_a_false_positive():
    gt = [("a", 0.0, 4.0, 0), ("b", 0.0, 4.0, 1)]
    preds = [("b", 0.0, 4.0, 0, 0.95), ("a", 0.0, 4.0, 0, 0.5), ("b", 0.0, 4.0, 1, 0.5)]
    result = evaluate_detections(_segments(gt, False), _segments(preds, True))
    # class 0: FP then TP -> precision 0.5 at recall 1 -> AP 0.5; class 1: AP 1
    np.testing.assert_allclose(result.ap[:, 0], 0.5)
    np.testing.assert_allclose(result.ap[:, 1], 1.0)


def test_matched_ground_truth_is_skipped_for_the_next_best():
    gt = [("a", 0.0, 10.0, 0), ("a", 1.0, 11.0, 0)]
    # both predictions overlap the first GT best; the second must fall back to the other GT.
    preds = [("a", 0.0, 10.0, 0, 0.9), ("a", 0.0, 10.5, 0, 0.8)]
    result = evaluate_detections(_segments(gt, False), _segments(preds, True), tiou_thresholds=np.array([0.5]))
    assert result.ap[0, 0] == 1.0


def test_duplicates_and_zero_length_ground_truth_are_removed():
    gt = _segments([("a", 1.0, 2.0, 3), ("a", 1.0005, 2.0004, 3), ("a", 1.0, 2.0, 4), ("a", 7.0, 7.0, 5)], False)
    cleaned = remove_duplicate_annotations(gt)
    assert cleaned.label.tolist() == [3, 4, 5]
    preds = _segments([("a", 1.0, 2.0, 3, 0.9), ("a", 1.0, 2.0, 4, 0.9)], True)
    result = evaluate_detections(gt, preds)
    # labels 3, 4, 5 become classes 0, 1, 2; class 2 only had a zero-length segment (AP 0 here).
    assert result.class_labels.tolist() == [3, 4, 5]
    np.testing.assert_allclose(result.mAP, 2 / 3)


def test_unknown_prediction_labels_follow_the_reference_or_are_dropped():
    gt = _segments([("a", 0.0, 1.0, 5), ("a", 2.0, 3.0, 7)], False)
    # label 0 is not a ground-truth label: the reference keeps it raw, so it lands in class index 0 (label 5).
    preds = _segments([("a", 2.0, 3.0, 0, 0.99), ("a", 0.0, 1.0, 5, 0.5), ("a", 2.0, 3.0, 7, 0.5)], True)
    reference = evaluate_detections(gt, preds)
    np.testing.assert_allclose(reference.ap[:, 0], 0.5)
    dropped = evaluate_detections(gt, preds, drop_unknown_labels=True)
    np.testing.assert_allclose(dropped.ap, 1.0)


def test_interpolation_envelope():
    # precision 1, 0.5, 0.67 at recalls 1/3, 1/3, 2/3 -> 1/3*1 + 1/3*0.67 ; recall 1 never reached.
    ap = interpolated_ap(np.array([1.0, 0.5, 2 / 3]), np.array([1 / 3, 1 / 3, 2 / 3]))
    assert ap == pytest.approx(1 / 3 + (2 / 3) * (1 / 3))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(FeatstoreError, match="NaN"):
        Segments(np.array(["a"]), np.array([np.nan]), np.array([1.0]), np.array([0]))
    with pytest.raises(FeatstoreError, match="entries"):
        Segments(np.array(["a", "b"]), np.array([0.0]), np.array([1.0]), np.array([0]))
    gt = _segments([("a", 0.0, 1.0, 0)], False)
    with pytest.raises(FeatstoreError, match="scores"):
        evaluate_detections(gt, gt)


# ------------------------------------------------------------------ randomized equivalence
@pytest.mark.parametrize("seed", range(6))
def test_matches_the_straightforward_evaluator_exactly(seed):
    rng = np.random.default_rng(seed)
    n_videos, n_classes = 6, 4
    gt_rows = []
    for v in range(n_videos):
        for _ in range(rng.integers(1, 7)):
            s = float(rng.uniform(0, 50))
            gt_rows.append((f"v{v}", s, s + float(rng.uniform(0.5, 10)), int(rng.integers(0, n_classes))))
    gt_rows.append(gt_rows[0])  # an exact duplicate
    pred_rows = []
    for _ in range(400):
        if rng.random() < 0.5:  # jittered copies of ground truth, often overlapping several
            v, s, e, lab = gt_rows[rng.integers(len(gt_rows))]
            s, e = s + rng.normal(0, 1.5), e + rng.normal(0, 1.5)
            if e <= s:
                e = s + 0.1
        else:
            v, s = f"v{rng.integers(n_videos + 1)}", float(rng.uniform(0, 55))
            e, lab = s + float(rng.uniform(0.2, 12)), int(rng.integers(0, n_classes + 1))
        score = float(np.round(rng.random(), 2))  # coarse scores: many ties
        pred_rows.append((v, float(s), float(e), lab, score))
    expected = _straight_evaluate(gt_rows, pred_rows, TIOU_THRESHOLDS)
    result = evaluate_detections(_segments(gt_rows, False), _segments(pred_rows, True))
    np.testing.assert_array_equal(result.ap, expected)
    np.testing.assert_array_equal(result.mAP, expected.mean(axis=1))
