"""Video retrieval: test queries vs train gallery on mean clip embeddings."""

import pytest

from evaluate.protocols.retrieval import RetrievalConfig, run
from data_manifests.errors import FeatstoreError
from featstore.store import Store


def test_planted_labels_are_retrieved(planted_store, noise_store):
    planted = run(Store.open(planted_store), RetrievalConfig())
    noise = run(Store.open(noise_store), RetrievalConfig())
    assert planted["R@1"] == 1.0 and planted["n_queries"] == 10 and planted["n_gallery"] == 80
    assert planted["R@1"] <= planted["R@5"] <= planted["R@10"]
    assert planted["mAP"] > noise["mAP"] + 0.3
    assert noise["R@1"] <= 0.3


def test_bad_config():
    with pytest.raises(FeatstoreError):
        RetrievalConfig(ks=[0])
    with pytest.raises(FeatstoreError):
        RetrievalConfig(query_split="train")
