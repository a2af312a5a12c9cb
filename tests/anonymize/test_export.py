"""Export: anonymized rows = AAM(raw rows), every other array copied, no raw embeddings, provenance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anonymize.export import export_store, load_trained_aam, store_fingerprint
from anonymize.model import AAMConfig
from anonymize.train import train
from featstore.errors import FeatstoreError
from featstore.store import TABLE_COLUMNS, Store
from featstore.summary import verify_store
from tests.anonymize.conftest import small_config


@pytest.fixture(scope="module")
def trained_run(array_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    train(small_config(array_store, out, epochs=2))
    return out


def test_export_round_trip(array_store, trained_run, tmp_path):
    out = tmp_path / "anon.zarr"
    result = export_store(trained_run, array_store, out, device="cpu", batch_rows=7)
    assert verify_store(out) == []
    source, anonymized = Store.open(array_store), Store.open(out)
    aam = load_trained_aam(trained_run, "cpu")
    for kind in ("clips", "static"):
        raw = source.load_embeddings(kind)
        expected = aam.module(torch.from_numpy(raw)).detach().numpy().astype(np.float16)
        np.testing.assert_array_equal(anonymized.group[f"{kind}/embeddings"][...], expected)
        assert anonymized.group[f"{kind}/embeddings"].dtype == source.group[f"{kind}/embeddings"].dtype
    assert result.rows == source.clip_embeddings.shape[0] + source.static_embeddings.shape[0]
    for name in ("clips/offsets", "clips/frames", "clips/times", "static/offsets", "static/frames",
                 "videos/segments", "videos/segment_offsets", *(f"videos/{c}" for c in TABLE_COLUMNS)):
        np.testing.assert_array_equal(anonymized.array(name), source.array(name))
    provenance = anonymized.provenance["anonymizer"]
    assert provenance["aam_sha256"] == aam.sha256 == result.aam_sha256
    assert provenance["source_store"] == str(array_store.resolve())
    assert provenance["source_fingerprint"] == store_fingerprint(source)
    assert provenance["training_config"]["budget_mode"] == "direct"
    assert anonymized.provenance["encoder"] == source.provenance["encoder"]


def test_export_contains_no_raw_embeddings(array_store, trained_run, tmp_path):
    out = tmp_path / "anon.zarr"
    export_store(trained_run, array_store, out, device="cpu")
    source = Store.open(array_store)
    raw_rows = {row.tobytes() for kind in ("clips", "static") for row in source.group[f"{kind}/embeddings"][...]}
    stored = b"".join(path.read_bytes() for path in out.rglob("*") if path.is_file())
    anonymized = Store.open(out)
    for kind in ("clips", "static"):
        rows = anonymized.group[f"{kind}/embeddings"][...]
        assert not any(row.tobytes() in raw_rows for row in rows)
    # No raw row's bytes appear anywhere in the output files (embeddings are stored uncompressed).
    assert not any(raw in stored for raw in list(raw_rows)[:50])


def test_temporal_export_equals_the_aam_over_each_whole_video(array_store, tmp_path):
    run = tmp_path / "run"
    train(small_config(array_store, run, epochs=1, aam=AAMConfig(mode="temporal", layers=2, heads=2, window=1)))
    out = tmp_path / "anon.zarr"
    export_store(run, array_store, out, device="cpu", batch_rows=5)
    source, anonymized = Store.open(array_store), Store.open(out)
    aam = load_trained_aam(run, "cpu")
    for kind, offsets in (("clips", source.clip_offsets()), ("static", source.static_offsets())):
        raw, got = source.load_embeddings(kind), anonymized.group[f"{kind}/embeddings"][...]
        for v in range(len(offsets) - 1):
            sequence = torch.from_numpy(raw[offsets[v] : offsets[v + 1]])[None]
            expected = aam.module(sequence, torch.ones(sequence.shape[:2], dtype=torch.bool))[0]
            np.testing.assert_allclose(got[offsets[v] : offsets[v + 1]], expected.detach().numpy(),
                                       rtol=2e-3, atol=2e-3)  # float16 storage


def test_export_errors(array_store, trained_run, tmp_path):
    out = tmp_path / "anon.zarr"
    export_store(trained_run, array_store, out, device="cpu")
    with pytest.raises(FeatstoreError, match="already exists"):
        export_store(trained_run, array_store, out, device="cpu")
    with pytest.raises(FeatstoreError, match="already anonymized"):
        export_store(trained_run, out, tmp_path / "twice.zarr", device="cpu")
    with pytest.raises(FeatstoreError, match="must differ"):
        export_store(trained_run, array_store, array_store, device="cpu", overwrite=True)
    with pytest.raises(FeatstoreError, match="no training config"):
        export_store(tmp_path / "nothing", array_store, tmp_path / "x.zarr", device="cpu")
