import json

import numpy as np
import pytest

from data_manifests.schema import Manifest
from data_manifests.errors import FeatstoreError
from featstore.store import CLIP_EMBEDDINGS, FORMAT_VERSION, STATIC_EMBEDDINGS, Store, chunk_rows
from featstore.summary import summarize, verify_store


def test_chunk_rows_target_about_a_megabyte():
    assert chunk_rows(1280, 2) == 512  # the extraction.md figure for ViT-H float16
    assert chunk_rows(192, 2) * 192 * 2 >= 1 << 20
    assert chunk_rows(1 << 21, 4) == 1


def test_layout_matches_the_manifest(tiny_store, trimmed_manifest):
    store = Store.open(tiny_store)
    manifest = Manifest.load(trimmed_manifest)
    table = store.videos()
    assert table.video_id.tolist() == [r.video_id for r in manifest.records]
    assert table.split.tolist() == [r.split for r in manifest.records]
    assert table.label.tolist() == [r.label for r in manifest.records]
    assert table.attributes.tolist() == [r.attributes for r in manifest.records]
    assert table.subject.tolist() == [r.subject for r in manifest.records]
    assert table.n_frames.tolist() == [r.n_frames for r in manifest.records]
    assert store.attrs["featstore"] == {**store.attrs["featstore"], "format_version": FORMAT_VERSION, "state": "complete"}
    assert store.clip_embeddings.dtype == np.float16 and store.dim == 192


def test_offsets_spans_and_times_agree(tiny_store):
    store = Store.open(tiny_store)
    table = store.videos()
    offsets = store.clip_offsets()
    frames, times = store.array("clips/frames"), store.array("clips/times")
    for v in range(len(table)):
        rows = slice(offsets[v], offsets[v + 1])
        n_frames = int(table.n_frames[v])
        assert offsets[v + 1] - offsets[v] == n_frames // 16  # non-overlapping, tail dropped
        np.testing.assert_array_equal(frames[rows][:, 0], np.arange(n_frames // 16) * 16)
        np.testing.assert_array_equal(frames[rows][:, 1] - frames[rows][:, 0], 16)
        np.testing.assert_allclose(times[rows], frames[rows] / table.fps[v])
    static_offsets = store.static_offsets()
    assert np.all(np.diff(static_offsets) == 10)


def test_provenance_records_what_reproduces_the_features(tiny_store):
    prov = Store.open(tiny_store).provenance
    assert prov["encoder"] == "tiny-vit"
    assert len(prov["weights_sha256"]) == 64
    assert prov["preprocess"] == {"resize_short": 73, "crop": 64, "mean": [0.485, 0.456, 0.406],
                                  "std": [0.229, 0.224, 0.225], "interpolation": "bilinear", "antialias": True}
    assert prov["sampling"] == {"clip_len": 16, "stride": 16, "fps": None, "tail": "drop", "static_per_video": 10,
                                  "static_positions": "centres"}
    for package in ("torch", "numpy", "zarr"):
        assert package in prov["versions"]


def test_recorded_metadata_reads_as_typed_properties(tiny_store, trimmed_manifest):
    store = Store.open(tiny_store)
    header = Manifest.load(trimmed_manifest).header
    assert store.header == store.attrs["dataset"]["header"]
    assert (store.dataset_name, store.task) == (header.name, header.task)
    assert (store.class_names, store.attribute_names) == (header.class_names, header.attribute_names)
    assert store.fingerprint == Manifest.load(trimmed_manifest).fingerprint()
    assert store.sampling == store.config["sampling"] and store.sampling["clip_len"] == 16
    assert store.format_record["state"] == "complete" and store.finalized == store.attrs["featstore"]["finalized"]
    assert store.anonymizer == {} and not store.private_labels_dropped  # a raw store
    assert store.embeddings("clips").path == CLIP_EMBEDDINGS and store.embeddings("static").path == STATIC_EMBEDDINGS


def test_read_rows_returns_rows_in_the_order_asked(tiny_store):
    store = Store.open(tiny_store)
    everything = store.clip_embeddings[...]
    rows = np.array([5, 0, 5, len(everything) - 1, 2])
    np.testing.assert_array_equal(store.read_rows(store.clip_embeddings, rows), everything[rows])


def test_video_accessors_slice_by_offsets(tiny_store):
    store = Store.open(tiny_store)
    offsets = store.clip_offsets()
    np.testing.assert_array_equal(store.video_clips(1), store.clip_embeddings[offsets[1] : offsets[2]])
    assert store.video_static(0).shape == (10, 192)


def test_summary_counts(tiny_store):
    summary = summarize(Store.open(tiny_store))
    assert summary["n_videos"] == 90 and summary["n_failed"] == 0
    assert summary["splits"] == {"test": 10, "train": 80}
    assert summary["n_static"] == 900


def test_verify_passes_on_a_sound_store(tiny_store):
    assert verify_store(tiny_store) == []


def test_verify_finds_nan_rows_and_bad_offsets(tiny_store, tmp_path):
    import shutil

    import zarr

    broken = tmp_path / "broken.zarr"
    shutil.copytree(tiny_store, broken)
    group = zarr.open_group(str(broken), mode="r+")
    rows = group["clips/embeddings"][...]
    rows[3, 7] = np.nan
    group["clips/embeddings"][...] = rows
    offsets = group["clips/offsets"][...]
    offsets[-1] += 1
    group["clips/offsets"][...] = offsets
    problems = verify_store(broken)
    assert any("NaN" in p for p in problems)
    assert any("clips/offsets ends at" in p for p in problems)


def test_verify_finds_a_video_neither_done_nor_failed(tiny_store, tmp_path):
    import shutil

    import zarr

    broken = tmp_path / "broken.zarr"
    shutil.copytree(tiny_store, broken)
    group = zarr.open_group(str(broken), mode="r+")
    attrs = group.attrs.asdict()
    # Pretend video 0 failed without removing its rows: verify must notice the contradiction.
    attrs["failures"] = [{"video_id": "trim_00000", "path": "x", "reason": "test"}]
    group.attrs.put(attrs)
    assert any("recorded as failed but has rows" in p for p in verify_store(broken))


def test_open_refuses_non_stores_and_other_versions(tmp_path, tiny_store):
    with pytest.raises(FeatstoreError, match="no store"):
        Store.open(tmp_path / "missing.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FeatstoreError, match="not a featstore store"):
        Store.open(tmp_path / "plain")
    import shutil

    future = tmp_path / "future.zarr"
    shutil.copytree(tiny_store, future)
    meta = json.loads((future / "zarr.json").read_text())
    meta["attributes"]["featstore"]["format_version"] = 99
    (future / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(FeatstoreError, match="format version 99"):
        Store.open(future)


def test_evenly_spaced_clip_rows_and_split_indices(tiny_store):
    store = Store.open(tiny_store)
    offsets = store.clip_offsets()
    rows = store.evenly_spaced_clip_rows(5)
    assert rows.shape == (store.n_videos, 5)
    for v in range(store.n_videos):
        assert offsets[v] <= rows[v].min() and rows[v].max() < offsets[v + 1]
        assert np.all(np.diff(rows[v]) >= 0)
    # 3 clips over 5 positions: bin centres 0.3, 0.9, 1.5, 2.1, 2.7 -> clips 0, 0, 1, 2, 2
    three = next(v for v in range(store.n_videos) if offsets[v + 1] - offsets[v] == 3)
    assert (rows[three] - offsets[three]).tolist() == [0, 0, 1, 2, 2]
    train, test = store.split_indices("train"), store.split_indices("test")
    assert len(train) == 80 and len(test) == 10 and not set(train) & set(test)


def test_transformed_copy_has_only_transformed_rows(tiny_store, tmp_path):
    from featstore.store import write_transformed_store

    source = Store.open(tiny_store)
    out = tmp_path / "t.zarr"
    write_transformed_store(source, out, lambda rows: rows.astype(np.float32) * 2 + 1, {"note": {"by": "test"}})
    copy = Store.open(out)
    assert verify_store(out) == []
    for kind in ("clips", "static"):
        expected = (source.load_embeddings(kind) * 2 + 1).astype(np.float16)
        np.testing.assert_array_equal(copy.group[f"{kind}/embeddings"][...], expected)
    np.testing.assert_array_equal(copy.clip_offsets(), source.clip_offsets())
    assert copy.videos().video_id.tolist() == source.videos().video_id.tolist()
    assert copy.attrs["note"] == {"by": "test"} and copy.provenance == source.provenance


def test_transformed_copy_reports_every_block_it_wrote(tiny_store, tmp_path):
    from featstore.store import write_transformed_store

    source = Store.open(tiny_store)
    written = []
    write_transformed_store(source, tmp_path / "t.zarr", lambda rows: rows, {}, on_rows=written.append)
    n_clips, n_static = source.clip_embeddings.shape[0], source.static_embeddings.shape[0]
    assert sum(written) == n_clips + n_static and all(n > 0 for n in written)
    assert len(written) >= 2  # the clip array's blocks, then the static array's
