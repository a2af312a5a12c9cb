"""`featstore export --format opentad|mgfn`: per-video layouts that ActionFormer/TriDet and MGFN read unchanged."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from featstore import exporters
from data_manifests.errors import FeatstoreError
from featstore.exporters import export_mgfn, export_opentad, frame_ground_truth
from featstore.store import Store
from tests.conftest import run_cli
from tests.featstore._killed import folder_files, run_until_killed


def test_opentad_export_matches_the_store(tad_store, tmp_path):
    out = export_opentad(tad_store, tmp_path / "opentad")
    store = Store.open(tad_store)
    table, offsets = store.videos(), store.clip_offsets()
    database = json.loads((out / "annotations.json").read_text())["database"]
    info = json.loads((out / "export_info.json").read_text())
    assert info["feat_stride"] == 16 and info["num_frames"] == 16 and info["grid_matches_formula"]
    assert info["input_dim"] == store.dim and len(database) == store.n_videos
    for v, video_id in enumerate(table.video_id):
        features = np.load(out / "features" / f"{video_id}.npy")
        assert features.dtype == np.float32 and features.shape == (offsets[v + 1] - offsets[v], store.dim)
        np.testing.assert_array_equal(features, store.clip_embeddings[offsets[v]:offsets[v + 1]].astype(np.float32))
        entry = database[video_id]
        assert entry["subset"] == exporters.OPENTAD_SUBSET_NAMES[table.split[v]] and entry["fps"] == table.fps[v]
        assert [a["segment"] for a in entry["annotations"]] == table.segments[v][:, :2].tolist()
        # ActionFormer's seconds -> feature index formula lands on the recorded clip centres
        times = store.array("clips/times")[offsets[v]:offsets[v + 1]]
        index = (times.mean(1) * entry["fps"] - 0.5 * info["num_frames"]) / info["feat_stride"]
        np.testing.assert_allclose(index, np.arange(len(times)), atol=1e-6)


def test_mgfn_export_layout(ad_store, tmp_path):
    out = export_mgfn(ad_store, tmp_path / "mgfn", crops=3)
    store = Store.open(ad_store)
    table, offsets = store.videos(), store.clip_offsets()
    info = json.loads((out / "export_info.json").read_text())
    train = (out / "train.list").read_text().splitlines()
    test = (out / "test.list").read_text().splitlines()
    assert info["crops"] == 3 and info["n_anomalous_train"] + info["n_normal_train"] == len(train)
    labels = {str(vid): int(lab) for vid, lab in zip(table.video_id, table.label)}
    train_labels = [labels[path.rsplit("/", 1)[1][:-4]] for path in train]
    assert train_labels == sorted(train_labels, reverse=True)  # anomalous first, as MGFN's list[:810]
    total = 0
    for path in test:
        video_id = path.rsplit("/", 1)[1][:-4]
        v = int(np.flatnonzero(table.video_id == video_id)[0])
        features = np.load(path)
        assert features.shape == (offsets[v + 1] - offsets[v], 3, store.dim)
        np.testing.assert_array_equal(features[:, 0], features[:, 2])
        total += 16 * len(features)
    gt = np.load(out / "gt.npy")
    assert len(gt) == total == info["gt_frames"] and set(np.unique(gt)) <= {0.0, 1.0}
    first = np.flatnonzero(table.video_id == test[0].rsplit("/", 1)[1][:-4])[0]
    rows = slice(offsets[first], offsets[first + 1])
    np.testing.assert_array_equal(gt[:16 * (offsets[first + 1] - offsets[first])],
                                  frame_ground_truth(store.array("clips/times")[rows], table.segments[first]))


def test_refusals(tad_store, ad_store, tmp_path):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(FeatstoreError, match="not an empty folder"):
        export_opentad(tad_store, occupied)
    assert (occupied / "keep.txt").read_text() == "mine"
    with pytest.raises(FeatstoreError, match="labels 0"):
        export_mgfn(tad_store, tmp_path / "wrong")  # a TAD store has no normal/anomalous labels
    with pytest.raises(FeatstoreError, match="crops"):
        export_mgfn(ad_store, tmp_path / "nocrops", crops=0)


def test_cli_formats(ad_store, tmp_path):
    done = run_cli("featstore", "export", str(ad_store), "--format", "mgfn", "--out", str(tmp_path / "m"), "--crops", "1")
    assert done.returncode == 0, done.stderr
    assert np.load(next((tmp_path / "m" / "features").glob("*.npy"))).shape[1] == 1
    done = run_cli("featstore", "export", str(ad_store), "--format", "csv", "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "unknown export format 'csv'" in done.stderr and "Traceback" not in done.stderr


def test_refused_export_leaves_nothing_and_the_rerun_matches_an_uninterrupted_one(tad_store, tmp_path, monkeypatch):
    out = tmp_path / "opentad"
    reference = folder_files(export_opentad(tad_store, out))  # config_hint.yaml names OUT: same OUT for both
    shutil.rmtree(out)
    real_safe_name, calls = exporters._safe_name, []

    def refuse_the_second_video(video_id):
        calls.append(video_id)
        if len(calls) == 2:
            raise FeatstoreError(f"video id {video_id!r} cannot be used as a file name")
        return real_safe_name(video_id)

    monkeypatch.setattr(exporters, "_safe_name", refuse_the_second_video)
    with pytest.raises(FeatstoreError, match="cannot be used as a file name"):
        export_opentad(tad_store, out)
    assert list(tmp_path.iterdir()) == []  # no OUT, no staging folder
    monkeypatch.setattr(exporters, "_safe_name", real_safe_name)
    assert folder_files(export_opentad(tad_store, out)) == reference


def test_killed_export_is_rerun_without_trouble_and_gives_the_same_files(ad_store, tmp_path):
    out = tmp_path / "mgfn"
    reference = folder_files(export_mgfn(ad_store, out, crops=2))
    shutil.rmtree(out)
    run_until_killed(f"""
        from featstore import exporters
        exporters.frame_ground_truth = kill_here  # after the features and lists are written
        exporters.export_mgfn({str(ad_store)!r}, {str(out)!r}, crops=2)
    """)
    [leftover] = tmp_path.iterdir()
    assert leftover.name.startswith("mgfn.partial-") and (leftover / "train.list").is_file()
    assert folder_files(export_mgfn(ad_store, out, crops=2)) == reference  # the lists name OUT, not the staging
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mgfn"]  # the dead run's staging is gone


def test_an_empty_out_folder_is_filled_and_a_live_writers_staging_is_left_alone(tad_store, tmp_path):
    out = tmp_path / "opentad"
    out.mkdir()
    running = tmp_path / f"opentad.partial-{os.getppid()}"  # the pid of a live process (pytest's parent)
    running.mkdir()
    export_opentad(tad_store, out)
    assert (out / "annotations.json").is_file() and running.is_dir()


@pytest.mark.parametrize("format", ["opentad", "mgfn", "h5"])
def test_unwritable_out_is_one_line(ad_store, format):
    done = run_cli("featstore", "export", str(ad_store), "--format", format, "--out", f"/proc/x.{format}")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: cannot create /proc/x.{format}: No such file or directory"]
