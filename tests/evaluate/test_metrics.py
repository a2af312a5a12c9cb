"""Metrics against hand-worked examples (and scikit-learn where it defines the same quantity)."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from evaluate.metrics import (
    average_precision,
    average_precision_columns,
    cmap,
    hit_at_1,
    normalized_hypervolume,
    pareto_front,
    per_attribute_ap,
    positive_rates,
    retrieval_metrics,
    topk_accuracy,
    video_probabilities,
    video_topk_accuracy,
)


def test_ap_with_ties_uses_one_threshold_per_tie_group():
    # 0.9: TP 0 of 1 retrieved; 0.7 group: TP 2 of 4 (P 1/2, recall +2/3); 0.2: TP 3 of 5 (P 3/5, recall +1/3)
    scores = [0.9, 0.7, 0.7, 0.7, 0.2]
    targets = [0, 1, 0, 1, 1]
    assert average_precision(scores, targets) == pytest.approx(2 / 3 * 1 / 2 + 1 / 3 * 3 / 5)
    # all tied: one threshold, precision 2/3 at full recall, whatever order the ties are listed in
    assert average_precision([0.8, 0.8, 0.8], [1, 0, 1]) == pytest.approx(2 / 3)
    assert average_precision([0.8, 0.8, 0.8], [0, 1, 1]) == pytest.approx(2 / 3)


def test_ap_without_ties_is_the_mean_precision_at_each_positive():
    # ranks of the positives: 1, 3, 4 -> (1/1 + 2/3 + 3/4) / 3
    assert average_precision([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 1, 0]) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_ap_without_positives_is_nan():
    assert math.isnan(average_precision([0.3, 0.2], [0, 0]))


@pytest.mark.parametrize("seed", range(5))
def test_ap_matches_scikit_learn_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=(200, 3)).astype(float)  # heavy ties
    targets = rng.integers(0, 2, size=(200, 3))
    ours = average_precision_columns(scores, targets)
    for column in range(3):
        assert ours[column] == pytest.approx(average_precision_score(targets[:, column], scores[:, column]))


def test_cmap_excludes_an_attribute_without_positives_and_ignores_unknown_targets():
    scores = np.array([[0.9, 0.5, 0.2],
                       [0.1, 0.4, 0.9],
                       [0.8, 0.3, 0.5],
                       [0.2, 0.6, 0.7]])
    targets = np.array([[1, 0, 1],
                        [0, 0, -1],  # unknown: left out of attribute 2
                        [1, 0, 0],
                        [0, 0, 1]])
    per_attribute = per_attribute_ap(scores, targets)
    assert per_attribute[0] == pytest.approx(1.0)
    assert math.isnan(per_attribute[1])  # no positive: no AP
    assert per_attribute[2] == pytest.approx((1 / 1 + 2 / 3) / 2)  # known order 0.7(+) 0.5(-) 0.2(+)
    assert cmap(scores, targets) == pytest.approx((1.0 + (1 + 2 / 3) / 2) / 2)
    assert math.isnan(cmap(scores[:, 1:2], targets[:, 1:2]))
    rates = positive_rates(targets)
    assert rates[0] == pytest.approx(0.5) and rates[1] == 0 and rates[2] == pytest.approx(2 / 3)


def test_topk_accuracy_ties_go_to_the_lower_class_and_k_is_capped():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    labels = np.array([1, 0, 1])
    assert topk_accuracy(scores, labels, ks=(1, 2, 5)) == {1: pytest.approx(2 / 3), 2: 1.0, 5: 1.0}


def test_video_top1_over_five_clips_averages_softmax_probabilities():
    # video 0 (label 1): four clips mildly for class 1, one clip extremely for class 0.
    # logit mean would pick class 0 (20 vs 2.4); averaged softmax picks class 1.
    video0 = np.array([[0.0, 3.0, 0.0]] * 4 + [[100.0, 0.0, 0.0]])
    video1 = np.array([[0.0, 0.0, 1.0]] * 5)  # label 2
    logits = np.stack([video0, video1])
    mild = np.exp(3) / (np.exp(3) + 2)
    expected_class1 = 4 * mild / 5
    probabilities = video_probabilities(logits)
    assert probabilities[0, 1] == pytest.approx(expected_class1)
    assert probabilities[0, 0] == pytest.approx((4 * (1 - mild) / 2 + 1.0) / 5)
    assert video_topk_accuracy(logits, np.array([1, 2]), ks=(1,)) == {1: 1.0}
    assert logits[0].mean(axis=0).argmax() == 0  # what plain logit averaging would have said


def test_retrieval_recall_at_k_and_map_by_hand():
    gallery_labels = np.array(["B", "A", "B", "A"])
    query_labels = np.array(["A", "C", "B"])
    similarity = np.array([
        [0.9, 0.8, 0.1, 0.2],    # A: ranking B A A B -> first hit at rank 2; AP (1/2 + 2/3) / 2
        [0.5, 0.4, 0.3, 0.2],    # C: nothing relevant -> a miss for R@k, left out of mAP
        [0.95, 0.1, 0.2, 0.3],   # B: ranking B A B A -> hit at rank 1; AP (1 + 2/3) / 2
    ])
    result = retrieval_metrics(similarity, query_labels, gallery_labels, ks=(1, 2, 5))
    assert result["recall"] == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 5: pytest.approx(2 / 3)}
    assert result["map"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + (1 + 2 / 3) / 2) / 2)
    assert result["n_without_relevant"] == 1 and result["n_queries"] == 3
    assert hit_at_1(similarity, query_labels, gallery_labels) == pytest.approx(1 / 3)


def test_retrieval_chunks_give_the_same_answer(monkeypatch):
    rng = np.random.default_rng(1)
    similarity = rng.standard_normal((50, 30))
    queries, gallery = rng.integers(0, 4, 50), rng.integers(0, 4, 30)
    whole = retrieval_metrics(similarity, queries, gallery)
    monkeypatch.setattr("evaluate.metrics.QUERY_CHUNK", 7)
    assert retrieval_metrics(similarity, queries, gallery) == whole


# Trade-off: points are (utility u, q = 1 - privacy), both maximized.
THREE_POINT_FRONT = [(0.2, 0.9), (0.5, 0.6), (0.8, 0.3)]


def test_hypervolume_of_a_three_point_front_by_hand():
    # sweep from the highest u: 0.8 * 0.3 + 0.5 * (0.6 - 0.3) + 0.2 * (0.9 - 0.6) = 0.24 + 0.15 + 0.06
    assert normalized_hypervolume(THREE_POINT_FRONT) == pytest.approx(0.45)
    assert normalized_hypervolume(THREE_POINT_FRONT[::-1]) == pytest.approx(0.45)  # order does not matter
    # reference (0.1, 0.2): 0.7 * 0.1 + 0.4 * 0.3 + 0.1 * 0.3 = 0.22, over (1 - 0.1) * (1 - 0.2) = 0.72
    assert normalized_hypervolume(THREE_POINT_FRONT, reference=(0.1, 0.2)) == pytest.approx(0.22 / 0.72)
    assert pareto_front(THREE_POINT_FRONT[::-1]) == [2, 1, 0]  # sorted by utility


def test_dominated_points_and_duplicates_change_neither_front_nor_hypervolume():
    points = [(0.5, 0.6), (0.4, 0.5), (0.8, 0.3), (0.2, 0.9), (0.8, 0.2), (0.5, 0.6), (0.1, 0.1)]
    # (0.4, 0.5) < (0.5, 0.6); (0.8, 0.2) is beaten by (0.8, 0.3) in q alone; the repeat of (0.5, 0.6) stays
    assert pareto_front(points) == [3, 0, 5, 2]
    assert normalized_hypervolume(points) == pytest.approx(0.45)


def test_single_point_hypervolume_is_its_rectangle():
    assert normalized_hypervolume([(0.6, 0.5)]) == pytest.approx(0.30)
    assert normalized_hypervolume([(0.6, 0.5)], reference=(0.5, 0.5)) == 0.0  # on the reference's q: no area
    assert normalized_hypervolume([(1.0, 1.0)]) == pytest.approx(1.0)
    assert pareto_front([(0.6, 0.5)]) == [0]


def test_points_at_or_below_the_reference_add_nothing_and_values_are_clipped_to_the_square():
    reference = (0.2, 0.2)
    assert normalized_hypervolume([(0.2, 0.9), (0.9, 0.1), (0.1, 0.1)], reference=reference) == 0.0
    # only (0.6, 0.6) counts: 0.4 * 0.4 / 0.64
    assert normalized_hypervolume([(0.6, 0.6), (0.9, 0.2), (0.1, 0.95)], reference=reference) == pytest.approx(0.25)
    # a point outside the square is clipped to it: (1.5, 0.5) counts as (1, 0.5)
    assert normalized_hypervolume([(1.5, 0.5)]) == pytest.approx(0.5)
    # the front ignores the reference: a point below it is still non-dominated
    assert pareto_front([(0.6, 0.6), (0.9, 0.1)]) == [0, 1]


def test_empty_input_has_zero_hypervolume_and_no_front():
    assert normalized_hypervolume([]) == 0.0
    assert pareto_front([]) == []


@pytest.mark.parametrize("points, reference", [
    ([(0.5, math.nan)], (0.0, 0.0)),  # an undefined coordinate
    ([(0.5, 0.5, 0.5)], (0.0, 0.0)),  # not pairs
    ([(0.5, 0.5)], (1.0, 0.0)),  # reference must be below 1: the normalizing area would be 0
    ([(0.5, 0.5)], (-0.1, 0.0)),
])
def test_bad_points_or_reference_are_errors(points, reference):
    with pytest.raises(ValueError):
        normalized_hypervolume(points, reference=reference)


@pytest.mark.parametrize("seed", range(3))
def test_hypervolume_matches_a_grid_count_and_the_front_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 21, size=(12, 2)) / 20  # on a 1/20 grid, with ties and duplicates
    reference = (0.1, 0.25)
    # count the 1/40-grid cell centres dominated by some point above the reference
    centres = (np.arange(40) + 0.5) / 40
    uu, qq = np.meshgrid(centres, centres, indexing="ij")
    inside = (uu > reference[0]) & (qq > reference[1])
    covered = np.zeros_like(inside)
    for u, q in points:
        covered |= inside & (uu <= u) & (qq <= q)
    expected = covered.sum() / inside.sum()  # reference and points lie on cell edges, so this is exact
    assert normalized_hypervolume(points, reference=reference) == pytest.approx(expected)
    brute = [i for i, a in enumerate(points)
             if not any((b >= a).all() and (b > a).any() for b in points)]
    assert sorted(pareto_front(points)) == brute
    assert [points[i][0] for i in pareto_front(points)] == sorted(points[i][0] for i in brute)
