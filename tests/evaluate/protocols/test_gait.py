"""Gait: subject retrieval with gallery = first walks, probes = last walks."""

import numpy as np
import pytest

from evaluate.protocols.gait import GaitConfig, gallery_and_probes, order_walks, run
from featstore.errors import FeatstoreError
from featstore.store import Store


def test_gallery_and_probes_follow_store_order_per_subject():
    subjects = np.array(["a"] * 7 + ["b"] * 6 + ["c"] * 3)
    video_ids = np.array([f"v{i}" for i in range(16)])
    gallery, probes, used, skipped = gallery_and_probes(subjects, video_ids, np.arange(16), GaitConfig())
    assert gallery.tolist() == [0, 1, 2, 3, 7, 8, 9, 10]
    assert probes.tolist() == [5, 6, 11, 12]  # a's 5th video (index 4) is neither
    assert (used, skipped) == (2, 1)  # c has only 3 walks


def test_walk_pattern_groups_views_and_orders_walks_numerically():
    ids = ["001-nm-10-090", "001-nm-02-000", "001-nm-02-090", "001-nm-1-000"]
    assert order_walks(ids, r"nm-(\d+)") == [[3], [1, 2], [0]]
    with pytest.raises(FeatstoreError, match="does not match"):
        order_walks(["x"], r"nm-(\d+)")
    with pytest.raises(FeatstoreError, match="one group"):
        GaitConfig(walk_pattern=r"nm-\d+")


def test_planted_subjects_are_recognised(subject_store, noise_store):
    # tiny store: the 8 training subjects have 10 videos each (every other subject has 1)
    config = GaitConfig(gallery_walks=4, probe_walks=2)
    planted = run(Store.open(subject_store), config)
    noise = run(Store.open(noise_store), config)
    assert planted["top1"] == 1.0 and planted["n_subjects"] == 8
    assert noise["top1"] < planted["top1"]  # 8 subjects: chance is 0.125
    assert planted["n_probes"] == 2 * planted["n_subjects"]


def test_too_few_walks_is_a_clear_error(tiny_store):
    with pytest.raises(FeatstoreError, match="subjects have at least 12 walks"):
        run(Store.open(tiny_store), GaitConfig(gallery_walks=8, probe_walks=4))
