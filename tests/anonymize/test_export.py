"""Export: anonymized rows = AAM(raw rows), every other array copied, no raw embeddings, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from anonymize import export
from anonymize.export import export_store, load_trained_aam, store_fingerprint
from anonymize.model import AAMConfig
from anonymize.train import train
from data_manifests.errors import FeatstoreError
from featstore.store import PRIVATE_COLUMNS, TABLE_COLUMNS, Store, write_transformed_store
from featstore.summary import open_for_info, verify_store
from tests.anonymize.conftest import small_config
from tests.conftest import run_cli
from tests.featstore._killed import run_until_killed
from tests.featstore.test_extract_cli import all_arrays, assert_same_arrays


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
    public_columns = [c for c in TABLE_COLUMNS if c not in PRIVATE_COLUMNS]  # the private ones: tests below
    for name in ("clips/offsets", "clips/frames", "clips/times", "static/offsets", "static/frames",
                 "videos/segments", "videos/segment_offsets", *(f"videos/{c}" for c in public_columns)):
        np.testing.assert_array_equal(anonymized.array(name), source.array(name))
    provenance = anonymized.provenance["anonymizer"]
    assert provenance["aam_sha256"] == aam.sha256 == result.aam_sha256
    assert provenance["source_store"] == str(array_store.resolve())
    assert provenance["source_fingerprint"] == store_fingerprint(source)
    assert provenance["training_config"]["budget_mode"] == "direct"
    assert anonymized.provenance["encoder"] == source.provenance["encoder"]


def test_export_with_a_progress_bar_counts_every_row_and_writes_the_same_store(array_store, trained_run, tmp_path,
                                                                               monkeypatch):
    bars, real_bar = [], export.progress_bar

    def recording_bar(enabled):
        bars.append(real_bar(enabled))
        return bars[-1]

    monkeypatch.setattr(export, "progress_bar", recording_bar)
    quiet, shown = tmp_path / "quiet.zarr", tmp_path / "shown.zarr"
    export_store(trained_run, array_store, quiet, device="cpu", batch_rows=7)
    result = export_store(trained_run, array_store, shown, device="cpu", batch_rows=7, show_progress=True)
    assert [bar.disable for bar in bars] == [True, False]
    source = Store.open(array_store)
    total = source.clip_embeddings.shape[0] + source.static_embeddings.shape[0]
    assert result.rows == total
    assert all(bar.tasks[0].total == bar.tasks[0].completed == total for bar in bars)
    for kind in ("clips", "static"):
        np.testing.assert_array_equal(Store.open(shown).group[f"{kind}/embeddings"][...],
                                      Store.open(quiet).group[f"{kind}/embeddings"][...])


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


def _stored_strings(store: Path) -> tuple[set[str], str]:
    """Every value of every string array (decoded: the chunks are compressed) and the text of every metadata
    file (the attributes: provenance, failures, ...) of a store."""
    values = set()
    group = zarr.open_group(str(store), mode="r")
    for folder in ("videos", "clips", "static"):
        for _, array in group[folder].arrays():
            if array.dtype.kind in "OUT":  # numpy's StringDType is "T"
                values.update(str(v) for v in array[...].ravel().tolist())
    metadata = "".join(path.read_text() for path in sorted(store.rglob("zarr.json")))
    return values, metadata


def test_default_export_drops_the_private_labels(array_store, trained_run, tmp_path):
    out = tmp_path / "anon.zarr"
    export_store(trained_run, array_store, out, device="cpu")
    assert verify_store(out) == []
    source, anonymized = Store.open(array_store), Store.open(out)
    raw, table = source.videos(), anonymized.videos()
    assert anonymized.provenance["anonymizer"]["private_labels"] == "dropped" and anonymized.private_labels_dropped
    np.testing.assert_array_equal(table.video_id, raw.video_id)  # the ids stay: labels join by them
    np.testing.assert_array_equal(table.label, raw.label)  # the action label is the utility task's, not private
    assert table.attributes.shape == raw.attributes.shape and set(np.unique(table.attributes)) == {-1}
    assert set(table.subject.tolist()) == {""} and set(table.path.tolist()) == {""}
    private = {value for column in ("subject", "path") for value in getattr(raw, column).tolist()}
    raw_values, raw_metadata = _stored_strings(array_store)
    assert private <= raw_values  # the scan sees them in the raw store
    values, metadata = _stored_strings(out)
    assert not private & values
    assert not any(json.dumps(value) in metadata for value in private)


def test_keep_private_labels_keeps_them_and_info_shows_the_state(array_store, trained_run, tmp_path):
    dropped, kept = tmp_path / "dropped.zarr", tmp_path / "kept.zarr"
    export_store(trained_run, array_store, dropped, device="cpu")
    done = run_cli("anonymize", "export", "--run", str(trained_run), "--store", str(array_store), "--out", str(kept),
                   "--device", "cpu", "--keep-private-labels")
    assert done.returncode == 0, done.stderr
    assert "private labels kept" in done.stdout
    source, anonymized = Store.open(array_store), Store.open(kept)
    assert anonymized.provenance["anonymizer"]["private_labels"] == "kept" and not anonymized.private_labels_dropped
    for column in PRIVATE_COLUMNS:
        np.testing.assert_array_equal(anonymized.array(f"videos/{column}"), source.array(f"videos/{column}"))
    shown = {store: run_cli("featstore", "info", str(store)) for store in (dropped, kept, array_store)}
    assert all(done.returncode == 0 for done in shown.values())
    rows = {store: [line for line in done.stdout.splitlines() if "private labels" in line] for store, done in shown.items()}
    assert len(rows[dropped]) == 1 and "dropped (attributes -1, subject and path empty)" in rows[dropped][0]
    assert len(rows[kept]) == 1 and "kept (attributes, subjects and source paths" in rows[kept][0]
    assert rows[array_store] == []  # a raw store holds them: nothing to say
    info = json.loads(run_cli("featstore", "info", "--json", str(dropped)).stdout)
    assert info["private_labels"] == "dropped"


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


def test_killed_export_is_rerun_without_overwrite_and_gives_the_same_store(array_store, trained_run, tmp_path):
    reference = tmp_path / "reference.zarr"
    export_store(trained_run, array_store, reference, device="cpu")
    out = tmp_path / "anon.zarr"
    run_until_killed(f"""
        from anonymize import export
        calls = []
        real_call = export.ClipTransform.__call__

        def call_then_die(self, block):
            calls.append(len(block))
            if len(calls) == 2:  # the clip rows are written, the static rows not
                kill_here()
            return real_call(self, block)

        export.ClipTransform.__call__ = call_then_die
        export.export_store({str(trained_run)!r}, {str(array_store)!r}, {str(out)!r}, device="cpu")
    """)
    assert not out.exists()
    [leftover] = [p for p in tmp_path.iterdir() if p.name.startswith("anon.zarr.partial-")]
    with pytest.raises(FeatstoreError, match=r"interrupted `anonymize export` into .*anon\.zarr, not a store"):
        open_for_info(leftover)
    export_store(trained_run, array_store, out, device="cpu")
    assert_same_arrays(out, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anon.zarr", "reference.zarr"]


def _export_stopped_in_place(source: Path, out: Path) -> None:
    """What `anonymize export` used to leave at OUT when stopped mid-way: the clip rows, state 'extracting'."""
    def stop_on_the_static_rows(block):
        if stop_on_the_static_rows.called:
            raise KeyboardInterrupt
        stop_on_the_static_rows.called = True
        return block

    stop_on_the_static_rows.called = False
    with pytest.raises(KeyboardInterrupt):
        write_transformed_store(Store.open(source), out, stop_on_the_static_rows, {})


def test_an_export_stopped_in_place_by_an_earlier_version_is_named_and_replaced(array_store, trained_run, tmp_path):
    out = tmp_path / "anon.zarr"
    _export_stopped_in_place(array_store, out)
    with pytest.raises(FeatstoreError, match="interrupted `anonymize export`, not a store: rerun that command"):
        open_for_info(out)
    export_store(trained_run, array_store, out, device="cpu")  # no --overwrite needed
    assert verify_store(out) == []


def test_featstore_info_names_an_interrupted_export(array_store, tmp_path):
    out = tmp_path / "anon.zarr"
    _export_stopped_in_place(array_store, out)
    done = run_cli("featstore", "info", str(out))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {out} is the partial output of an interrupted "
                                                "`anonymize export`, not a store: rerun that command"]


def test_overwrite_keeps_the_old_store_until_the_new_one_is_whole(array_store, trained_run, tmp_path, monkeypatch):
    out = tmp_path / "anon.zarr"
    export_store(trained_run, array_store, out, device="cpu")
    before = all_arrays(out)

    def fail(self, block):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export.ClipTransform, "__call__", fail)  # mid-way: the output folder is open
    with pytest.raises(RuntimeError, match="disk full"):
        export_store(trained_run, array_store, out, device="cpu", overwrite=True)
    after = all_arrays(out)
    assert sorted(after) == sorted(before) and all(np.array_equal(after[k], before[k]) for k in before)
    assert Store.open(out).provenance["anonymizer"]["run"] == str(trained_run.resolve())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anon.zarr"]


def test_unwritable_out_is_refused_at_once_in_one_line(array_store, tmp_path):
    # the run folder does not even exist: the --out check comes before any work
    done = run_cli("anonymize", "export", "--run", str(tmp_path / "run"), "--store", str(array_store),
                   "--out", "/proc/x.zarr")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == ["error: cannot create /proc/x.zarr: No such file or directory"]
    (tmp_path / "file").write_text("mine")
    with pytest.raises(FeatstoreError, match="is a file"):
        export_store(tmp_path / "run", array_store, tmp_path / "file", overwrite=True)
    assert (tmp_path / "file").read_text() == "mine"
