"""Evaluation metrics, vectorized over samples (numpy in, Python floats out).

Definitions (docs/evaluate.md repeats them):

- **Average precision (AP)** of one score column against 0/1 targets is the area under the
  step-wise precision-recall curve, ``AP = sum_n (R_n - R_{n-1}) * P_n`` over the *distinct* score
  thresholds ``n`` in decreasing order. Samples with tied scores enter at the same threshold, so AP
  does not depend on how ties are ordered; it equals scikit-learn's ``average_precision_score``.
  A column with no positives has no AP: ``nan``.
- **cMAP** ("class mean AP") of a multi-label problem is the mean AP over attributes. Targets of
  ``-1`` (unknown) are left out of that attribute's AP. An attribute with no positive among its known
  test targets has AP ``nan``; it is *excluded* from the mean and reported as ``nan`` (``null`` in
  JSON). If no attribute has a positive, cMAP is ``nan``.
- **Top-k accuracy**: a sample is correct when its label is among the k highest scores (ties broken
  by the lower class index); k larger than the number of classes counts every sample correct.
- **Video-level accuracy over clips**: each clip's logits go through a softmax, the probabilities
  of a video's clips (the 5 evenly spaced clips, repeats included) are averaged, and top-k is taken
  on the averaged probabilities.
- **Retrieval**: R@k is the share of queries whose k nearest gallery items contain at least one
  relevant item (same label); a query with no relevant item in the gallery counts as a miss. mAP
  is the mean over queries of the AP of the whole ranked gallery (ties handled as above); queries
  with no relevant item are left out of mAP. Nearest = highest cosine similarity; equal
  similarities keep gallery order.
- **Pareto front** of points (u, q), both maximized: the points no other point dominates; a
  dominates b when a >= b in both coordinates and a > b in at least one. Equal points do not
  dominate each other, so duplicates on the front are all listed.
- **Normalized hypervolume** of points (u, q) with reference (r_u, r_q) in [0, 1)^2: the area of the
  union of the rectangles [r_u, min(u_i, 1)] x [r_q, min(q_i, 1)] divided by (1 - r_u)(1 - r_q), the
  area of the part of the unit square above the reference. Only front points can add area, so
  dominated points and duplicates do not change it; a point with u_i <= r_u or q_i <= r_q adds
  nothing; no points: 0. In 1 (the whole square) only when some point reaches (1, 1).
- **Leakage removed** by an anonymizer: ``(raw - anon) / (raw - chance)`` of the raw and anonymized
  cMAPs and the chance cMAP: 1 = down to chance, 0 = nothing removed, < 0 = more leakage, > 1 = below
  chance. Undefined (``nan``) when the raw features leak nothing (raw <= chance) or an input is nan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

QUERY_CHUNK = 256


def average_precision_columns(scores: np.ndarray, targets: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """AP of every column of ``scores`` (N, M) against 0/1 ``targets`` (N, M); ``nan`` without positives.

    ``known`` (N, M) bool marks the entries that take part (default: all). Tied scores form one
    threshold: every sample of a tie group is credited with the precision at the end of its group.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"scores and targets must both be (N, M); got {scores.shape} and {targets.shape}")
    weight = np.ones(scores.shape, dtype=np.float64) if known is None else np.asarray(known, dtype=np.float64)
    n = scores.shape[0]
    if n == 0:
        return np.full(scores.shape[1], np.nan)
    order = np.argsort(-scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    sorted_weight = np.take_along_axis(weight, order, axis=0)
    sorted_hits = np.take_along_axis((targets > 0).astype(np.float64), order, axis=0) * sorted_weight
    true_positives = np.cumsum(sorted_hits, axis=0)
    retrieved = np.cumsum(sorted_weight, axis=0)
    # the last index of each run of equal scores, found for every position by a reversed running min
    is_group_end = np.ones(scores.shape, dtype=bool)
    is_group_end[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    end_index = np.where(is_group_end, np.arange(n)[:, None], n)
    end_index = np.minimum.accumulate(end_index[::-1], axis=0)[::-1]
    precision_at_group_end = np.take_along_axis(true_positives / np.maximum(retrieved, 1.0), end_index, axis=0)
    n_positive = sorted_hits.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (sorted_hits * precision_at_group_end).sum(axis=0) / n_positive
    ap[n_positive == 0] = np.nan
    return ap


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one score vector against 0/1 targets (see the module docstring); ``nan`` without positives."""
    scores = np.asarray(scores).reshape(-1, 1)
    return float(average_precision_columns(scores, np.asarray(targets).reshape(-1, 1))[0])


def per_attribute_ap(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(A,) AP per attribute; targets (N, A) in {0, 1, -1 = unknown}; ``nan`` where no known positive."""
    targets = np.asarray(targets)
    return average_precision_columns(scores, targets == 1, known=targets >= 0)


def cmap(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean AP over the attributes that have a positive (the others are excluded; ``nan`` if none has)."""
    return mean_defined(per_attribute_ap(scores, targets))


def mean_defined(values: np.ndarray) -> float:
    """Mean of the non-nan values; ``nan`` when there are none."""
    values = np.asarray(values, dtype=np.float64)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


def positive_rates(targets: np.ndarray) -> np.ndarray:
    """(A,) share of positives among the known targets of each attribute: the AP of a random scorer."""
    targets = np.asarray(targets)
    known = (targets >= 0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = (targets == 1).sum(axis=0) / known
    return np.where(known > 0, rates, np.nan)


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(N,) bool: label among the k highest scores; ties go to the lower class index."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    k = min(k, scores.shape[1])
    label_scores = np.take_along_axis(scores, labels[:, None], axis=1)
    # rank = classes scoring strictly higher + lower-index classes scoring equally
    higher = (scores > label_scores).sum(axis=1)
    tied_before = ((scores == label_scores) & (np.arange(scores.shape[1])[None, :] < labels[:, None])).sum(axis=1)
    return higher + tied_before < k


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """{k: share of samples whose label is among the top k scores}."""
    if len(labels) == 0:
        return {k: math.nan for k in ks}
    return {k: float(topk_correct(scores, labels, k).mean()) for k in ks}


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def video_probabilities(clip_logits: np.ndarray) -> np.ndarray:
    """(V, K, C) logits of K clips per video -> (V, C) softmax probabilities averaged over the clips."""
    return softmax(np.asarray(clip_logits, dtype=np.float64), axis=-1).mean(axis=1)


def video_topk_accuracy(clip_logits: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Top-k of the clip-averaged softmax probabilities (the 5-clip video-level protocol)."""
    return topk_accuracy(video_probabilities(clip_logits), labels, ks)


def cosine_similarity(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    return unit(queries) @ unit(gallery).T


def retrieval_metrics(similarity: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray,
                      ks: Sequence[int] = (1, 5, 10)) -> dict:
    """R@k and mAP of queries (rows of ``similarity``) against a gallery (columns); relevant = same label.

    Returns ``{"recall": {k: R@k}, "map": mAP, "n_queries": Q, "n_without_relevant": ...}``.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    query_labels = np.asarray(query_labels)
    gallery_labels = np.asarray(gallery_labels)
    n_queries = similarity.shape[0]
    hits = {k: 0 for k in ks}
    ap_values = []
    for start in range(0, n_queries, QUERY_CHUNK):  # chunks bound the (chunk x gallery) sort's memory
        sim = similarity[start : start + QUERY_CHUNK]
        relevant = query_labels[start : start + QUERY_CHUNK, None] == gallery_labels[None, :]
        order = np.argsort(-sim, axis=1, kind="stable")
        ranked_relevant = np.take_along_axis(relevant, order, axis=1)
        for k in ks:
            hits[k] += int(ranked_relevant[:, :k].any(axis=1).sum())
        ap_values.append(average_precision_columns(sim.T, relevant.T))
    ap = np.concatenate(ap_values) if ap_values else np.zeros(0)
    return {
        "recall": {k: (hits[k] / n_queries if n_queries else math.nan) for k in ks},
        "map": mean_defined(ap),
        "n_queries": int(n_queries),
        "n_without_relevant": int(np.isnan(ap).sum()),
    }


def hit_at_1(similarity: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray) -> float:
    """Share of queries whose most similar gallery item has the same label (first one on ties)."""
    if similarity.shape[0] == 0:
        return math.nan
    nearest = np.argmax(np.asarray(similarity), axis=1)
    return float((np.asarray(gallery_labels)[nearest] == np.asarray(query_labels)).mean())


def _points_array(points) -> np.ndarray:
    """(n, 2) float64 of finite (u, q) pairs; an error for anything else (an undefined point has no place)."""
    values = np.asarray(points, dtype=np.float64)
    if values.size == 0:
        return np.zeros((0, 2))
    if values.ndim != 2 or values.shape[1] != 2:
        raise ValueError(f"points must be (n, 2) pairs, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("points must be finite (a point with an undefined coordinate cannot be placed)")
    return values


def pareto_front(points) -> list[int]:
    """Indices of the non-dominated points of (u, q) pairs (both maximized; see the module docstring),
    sorted by u, then by index. Quadratic in the number of points (sweeps have tens)."""
    values = _points_array(points)
    if len(values) == 0:
        return []
    at_least = (values[:, None, :] >= values[None, :, :]).all(axis=2)  # [a, b]: a >= b in both
    better_somewhere = (values[:, None, :] > values[None, :, :]).any(axis=2)
    dominated = (at_least & better_somewhere).any(axis=0)
    front = np.flatnonzero(~dominated)
    return front[np.lexsort((front, values[front, 0]))].tolist()


def normalized_hypervolume(points, reference: Sequence[float] = (0.0, 0.0)) -> float:
    """Area dominated by (u, q) points above ``reference`` in the unit square, over that region's area
    (see the module docstring). No points: 0.0."""
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != (2,) or not np.isfinite(ref).all() or (ref < 0).any() or (ref >= 1).any():
        raise ValueError(f"the reference point must be two numbers in [0, 1), got {reference}")
    values = np.minimum(_points_array(points), 1.0)
    values = values[(values > ref).all(axis=1)]
    area, covered_q = 0.0, ref[1]
    # sweep from the highest u down: each point adds the strip of q it raises the covered height by
    for u, q in values[np.argsort(-values[:, 0], kind="stable")]:
        if q > covered_q:
            area += (u - ref[0]) * (q - covered_q)
            covered_q = q
    return float(area / ((1.0 - ref[0]) * (1.0 - ref[1])))


def leakage_removed(raw_cmap: float, anon_cmap: float, chance: float) -> float:
    """Share of the raw features' leakage above chance that anonymization removed:
    ``(raw - anon) / (raw - chance)``; ``nan`` (not an error) when raw <= chance or an input is nan."""
    raw, anon, chance = float(raw_cmap), float(anon_cmap), float(chance)
    if math.isnan(raw) or math.isnan(anon) or math.isnan(chance) or raw <= chance:
        return math.nan
    return (raw - anon) / (raw - chance)
