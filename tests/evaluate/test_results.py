"""Result files: config, metrics and provenance, written whole."""

import json

import pytest

from data_manifests.errors import FeatstoreError
from evaluate.protocols.privacy import PrivacyConfig
from evaluate.results import save_result
from featstore.store import Store


def test_save_result_writes_config_metrics_and_provenance(tiny_store, tmp_path):
    store = Store.open(tiny_store)
    config = PrivacyConfig(epochs=3)
    path = save_result(tmp_path / "out", "privacy", config, {"cmap": 0.7, "per_attribute": {"a": float("nan")}},
                       store)
    document = json.loads(path.read_text())
    assert path == tmp_path / "out" / "privacy.json"
    assert set(document) == {"protocol", "config", "metrics", "store", "store_provenance", "finished"}
    assert document["config"]["epochs"] == 3 and document["config"]["attacker"] == "all"  # the default: every attacker
    assert document["metrics"]["per_attribute"]["a"] is None  # nan is written as null
    assert document["store"] == str(tiny_store)
    assert document["store_provenance"]["encoder"] == "tiny-vit" and document["store_provenance"]["dim"] == 192
    (tmp_path / "file").write_text("x")
    with pytest.raises(FeatstoreError, match="not a folder"):
        save_result(tmp_path / "file", "privacy", config, {}, store)
