"""An anonymized store never looks like a raw one: `featstore info` and the exports show its anonymizer record."""

from __future__ import annotations

import json

import pytest

from featstore.exporters import export_opentad
from featstore.store import PRIVATE_LABELS_DROPPED, Store, write_transformed_store
from tests.conftest import run_in_process, write_tad_array_store

# the record anonymize/export.py writes into provenance.anonymizer (less what info and the exports leave out)
RECORD = {"run": "/runs/aam-7", "aam_sha256": "ab" * 32, "epoch": 12, "label": "aam",
          "source_store": "/stores/raw.zarr", "private_labels": PRIVATE_LABELS_DROPPED}


@pytest.fixture(scope="module")
def raw_and_anonymized(tmp_path_factory):
    folder = tmp_path_factory.mktemp("info-anonymized")
    raw = write_tad_array_store(folder / "raw.zarr", [("train", 3, [[0.0, 2.0, 0]]), ("test", 2, [[0.5, 1.5, 1]])],
                                ["jump", "run"])
    source = Store.open(raw)
    anonymizer = dict(RECORD, training_config={"seed": 0}, source_fingerprint="f" * 64)
    anonymized = folder / "anonymized.zarr"
    write_transformed_store(source, anonymized, lambda rows: rows,
                            {"provenance": dict(source.provenance, anonymizer=anonymizer)}, drop_private_labels=True)
    return raw, anonymized


def test_info_shows_the_anonymizer(raw_and_anonymized, monkeypatch, capsys):
    raw, anonymized = raw_and_anonymized
    code, out, _ = run_in_process(monkeypatch, capsys, "featstore", "info", str(anonymized))
    assert code == 0
    assert "(anonymized store)" in out
    assert "ANONYMIZED by" in out and "aam of run /runs/aam-7 (epoch 12, sha256 abababababab)" in out
    assert "/stores/raw.zarr" in out and "dropped" in out
    code, out, _ = run_in_process(monkeypatch, capsys, "featstore", "info", str(raw))
    assert code == 0 and "(raw store)" in out and "ANONYMIZED" not in out


def test_info_json_holds_the_anonymizer(raw_and_anonymized, monkeypatch, capsys):
    raw, anonymized = raw_and_anonymized
    code, out, _ = run_in_process(monkeypatch, capsys, "featstore", "info", str(anonymized), "--json")
    assert code == 0 and json.loads(out)["anonymizer"] == RECORD
    code, out, _ = run_in_process(monkeypatch, capsys, "featstore", "info", str(raw), "--json")
    assert code == 0 and json.loads(out)["anonymizer"] is None


def test_export_info_holds_the_anonymizer(raw_and_anonymized, tmp_path):
    raw, anonymized = raw_and_anonymized
    info = json.loads((export_opentad(anonymized, tmp_path / "anonymized") / "export_info.json").read_text())
    assert info["anonymizer"] == RECORD
    info = json.loads((export_opentad(raw, tmp_path / "raw") / "export_info.json").read_text())
    assert info["anonymizer"] is None
