"""`featstore import` of per-video features (a .npy folder, a per-video .h5) and the h5-per-video export."""

import h5py
import numpy as np
import pytest

from data_manifests.schema import Manifest, ManifestHeader, Segment, VideoRecord
from featstore.store import (
    CLIP_EMBEDDINGS,
    CLIP_FRAMES,
    CLIP_TIMES,
    STATIC_EMBEDDINGS,
    VIDEO_IDS,
    VIDEO_LABELS,
    VIDEO_SEGMENTS,
    VIDEO_SPLITS,
    Store,
)
from featstore.summary import verify_store
from tests.conftest import run_cli, run_in_process

FPS = 25.0


def write_manifest(path, video_ids=("a", "b", "c")):
    header = ManifestHeader(name="tiny-import", task="action", class_names=["run", "jump"])
    records = [VideoRecord(video_id=v, path=f"videos/{v}.mp4", split="train" if i else "test", label=i % 2,
                           segments=[Segment(0.0, 0.5, i % 2)], fps=FPS) for i, v in enumerate(video_ids)]
    return Manifest(header, records, path.parent).save(path)


def features(n_clips, dim=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n_clips, dim)).astype(np.float32)


def import_cli(monkeypatch, capsys, source, manifest, out, *extra):
    return run_in_process(monkeypatch, capsys, "featstore", "import", str(source), "--dataset", str(manifest),
                          "--out", str(out), *extra)


def test_store_to_h5_per_video_and_back_gives_the_same_clips_and_table(tiny_store, trimmed_manifest, tmp_path):
    done = run_cli("featstore", "export", str(tiny_store), "--format", "h5-per-video", "--out", str(tmp_path / "f.h5"))
    assert done.returncode == 0, done.stderr
    original = Store.open(tiny_store)
    ids = original.videos().video_id
    offsets = original.clip_offsets()
    with h5py.File(tmp_path / "f.h5", "r") as handle:
        assert handle[ids[1]].dtype == np.float32
        np.testing.assert_array_equal(handle[ids[1]][...], original.array(CLIP_EMBEDDINGS)[offsets[1]:offsets[2]])
    done = run_cli("featstore", "import", str(tmp_path / "f.h5"), "--dataset", str(trimmed_manifest),
                   "--out", str(tmp_path / "back.zarr"))
    assert done.returncode == 0, done.stderr
    back = Store.open(tmp_path / "back.zarr")
    np.testing.assert_array_equal(back.array(CLIP_EMBEDDINGS), original.array(CLIP_EMBEDDINGS).astype(np.float32))
    for name in (VIDEO_IDS, VIDEO_SPLITS, VIDEO_LABELS, VIDEO_SEGMENTS, CLIP_FRAMES):
        np.testing.assert_array_equal(back.array(name), original.array(name), err_msg=name)
    np.testing.assert_allclose(back.array(CLIP_TIMES), original.array(CLIP_TIMES))
    assert back.array(STATIC_EMBEDDINGS).shape == (0, original.dim)  # imports carry no static clips
    assert back.sampling["clip_len"] == 16 and back.sampling["stride"] == 16
    assert back.provenance["imported"]["format"] == "h5-per-video"
    assert back.provenance["imported"]["source"] == str((tmp_path / "f.h5").resolve())
    assert verify_store(tmp_path / "back.zarr") == []


def test_npy_folder_with_video_id_names(tmp_path, monkeypatch, capsys):
    manifest = write_manifest(tmp_path / "m.jsonl")
    (tmp_path / "feats").mkdir()
    arrays = {"a": features(3), "b": features(5, seed=1), "c": features(1, seed=2)}
    for video_id, array in arrays.items():
        np.save(tmp_path / "feats" / f"{video_id}.npy", array)
    code, _, err = import_cli(monkeypatch, capsys, tmp_path / "feats", manifest, tmp_path / "s.zarr",
                              "--clip-len", "8", "--stride", "4")
    assert code == 0, err
    store = Store.open(tmp_path / "s.zarr")
    np.testing.assert_array_equal(store.array(CLIP_EMBEDDINGS), np.concatenate(list(arrays.values())))
    a_frames = store.array(CLIP_FRAMES)[:3]
    np.testing.assert_array_equal(a_frames, [[0, 8], [4, 12], [8, 16]])
    np.testing.assert_allclose(store.array(CLIP_TIMES)[:3], a_frames / FPS)
    assert store.provenance["imported"]["format"] == "npy-per-video" and store.failures == []
    assert verify_store(tmp_path / "s.zarr") == []


def test_npy_folder_with_video_features_names_picks_one_feature(tmp_path, monkeypatch, capsys):
    manifest = write_manifest(tmp_path / "m.jsonl")
    (tmp_path / "feats").mkdir()
    for i, video_id in enumerate("ab"):  # video_features writes <stem>_rgb.npy and <stem>_flow.npy
        np.save(tmp_path / "feats" / f"{video_id}_rgb.npy", features(2, seed=i))
        np.save(tmp_path / "feats" / f"{video_id}_flow.npy", features(2, dim=6, seed=i))
    code, _, err = import_cli(monkeypatch, capsys, tmp_path / "feats", manifest, tmp_path / "x.zarr")
    assert code == 2 and "pass --feature NAME" in err and not (tmp_path / "x.zarr").exists()
    code, _, err = import_cli(monkeypatch, capsys, tmp_path / "feats", manifest, tmp_path / "s.zarr",
                              "--feature", "flow")
    assert code == 0, err
    store = Store.open(tmp_path / "s.zarr")
    np.testing.assert_array_equal(store.array(CLIP_EMBEDDINGS), np.concatenate([features(2, 6, 0), features(2, 6, 1)]))
    # the manifest's third video has no file: recorded as a failure, as extraction records an unreadable video
    assert [f["video_id"] for f in store.failures] == ["c"] and "no features" in err
    assert verify_store(tmp_path / "s.zarr") == []


@pytest.mark.parametrize("arrays, problem", [
    ({"a": features(3), "b": features(3, dim=5)}, "differ in width"),
    ({"a": features(3), "zz": features(3)}, "the manifest does not name"),
    ({"a": np.full((2, 4), np.nan, np.float32)}, "NaN or Inf"),
    ({"a": np.zeros(4, np.float32)}, "have shape (4,)"),
])
def test_bad_per_video_features_are_refused_in_one_line(tmp_path, monkeypatch, capsys, arrays, problem):
    manifest = write_manifest(tmp_path / "m.jsonl")
    with h5py.File(tmp_path / "f.h5", "w") as handle:
        for video_id, array in arrays.items():
            handle[video_id] = array
    code, _, err = import_cli(monkeypatch, capsys, tmp_path / "f.h5", manifest, tmp_path / "s.zarr")
    assert code == 2 and "Traceback" not in err, err
    [line] = err.strip().splitlines()
    assert problem in line and "nothing was written" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5", "m.jsonl"]


def test_per_video_options_need_a_manifest(tmp_path, monkeypatch, capsys):
    (tmp_path / "feats").mkdir()
    code, _, err = run_in_process(monkeypatch, capsys, "featstore", "import", str(tmp_path / "feats"),
                                  "--out", str(tmp_path / "s.zarr"))
    assert code == 2 and "needs --dataset" in err and not (tmp_path / "s.zarr").exists()
