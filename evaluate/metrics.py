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
