"""The `opentad` and `mgfn` exports read the way the original tools' loaders read them.

Each reader below follows the tool's documented loader behaviour (file names, fields, shapes), written here:
- OpenTAD (opentad/datasets/thumos.py, base/padding_dataset.py; configs/_base_/datasets/thumos-14/*.py):
  ``annotations.json["database"]``, a video is in the subset when ``video["subset"] in subset_name`` and not in the
  ``block_list`` file (one id a line); ``class_map`` is one name a line (line index = class id) and a label's id
  is its line; the frame of second t is ``int(t / duration * frame)`` and its feature index
  ``(frame - offset_frames) / feature_stride``; features are ``data_path + video + ".npy"``, (T, C).
- ActionFormer / TriDet (libs/datasets/thumos14.py, configs/thumos_i3d.yaml): the label dict is built from every
  annotation of the json and must have ``num_classes`` entries; a video is read when ``subset.lower()`` is in the
  split list and ``feat_folder/(file_prefix or '') + id + file_ext`` exists; features (T, input_dim).
- MGFN (datasets/dataset.py): each list line is an .npy path; test mode appends the L2 norm over axis 2 of a
  (T, crops, C) array, training transposes it to (crops, T, C).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from data_manifests.errors import FeatstoreError
from featstore.exporters import OPENTAD_SUBSET_NAMES, export, export_mgfn, export_opentad, parse_subset_names
from featstore.store import Store
from tests.conftest import run_cli, write_tad_array_store

# class names in a non-alphabetical order: a loader that sorts names itself gets other ids than label_id
CLASS_NAMES = ["Zeta", "Alpha", "Mu"]


def tad_arrays(path, videos=None):
    videos = videos or [("train", 12, [[2.0, 5.0, 2], [7.0, 9.5, 0]]), ("train", 0, [[1.0, 2.0, 1]]),
                        ("train", 10, [[3.0, 6.0, 1]]), ("test", 9, [[1.5, 4.0, 0], [5.0, 8.0, 2]])]
    return write_tad_array_store(path, videos, CLASS_NAMES)


def read_like_opentad(config: dict) -> list[dict]:
    """OpenTAD's THUMOS feature dataset, as documented: (video, features, gt frames, gt feature index, labels)."""
    database = json.loads(open(config["ann_file"]).read())["database"]
    blocked = [line.rstrip("\n") for line in open(config["block_list"])]
    class_map = [line.rstrip("\n") for line in open(config["class_map"], encoding="utf8")]
    videos = []
    for name, video in database.items():
        if name in blocked or video["subset"] not in config["subset_name"]:
            continue
        frames = np.array([[int(a["segment"][0] / video["duration"] * video["frame"]),
                            int(a["segment"][1] / video["duration"] * video["frame"])] for a in video["annotations"]])
        videos.append({"name": name, "feats": np.load(config["data_path"] + name + ".npy").astype(np.float32),
                       "fps": video["frame"] / video["duration"],
                       "index": (frames - config["offset_frames"]) / config["feature_stride"],
                       "labels": [class_map.index(a["label"]) for a in video["annotations"]]})
    assert videos, f"No data found in {config['subset_name']} subset."
    return videos


def test_opentad_export_reads_as_opentads_thumos_dataset(tmp_path):
    store = Store.open(tad_arrays(tmp_path / "tad.zarr"))
    out = export_opentad(store.path, tmp_path / "opentad")
    info = json.loads((out / "export_info.json").read_text())
    assert info["feature_stride"] == 16 and info["offset_frames"] == 8  # OpenTAD's config names
    assert (out / "category_idx.txt").read_text().splitlines() == CLASS_NAMES
    assert (out / "features" / "missing_files.txt").read_text().splitlines() == ["t0001"]  # its decoding failed
    table, offsets = store.videos(), store.clip_offsets()
    # the stock THUMOS configs: subset_name "training" to train, "validation" to validate / test
    for split, subset_name in (("train", "training"), ("test", "validation")):
        videos = read_like_opentad({**info["opentad"], "subset_name": subset_name})
        assert sorted(v["name"] for v in videos) == sorted(str(table.video_id[i]) for i in store.split_indices(split))
        for video in videos:
            v = int(np.flatnonzero(table.video_id == video["name"])[0])
            stored = store.clip_embeddings[offsets[v]:offsets[v + 1]].astype(np.float32)
            np.testing.assert_array_equal(video["feats"], stored)
            segments = table.segments[v]
            assert video["labels"] == segments[:, 2].astype(int).tolist() and video["fps"] == table.fps[v]
            # OpenTAD's frame-based feature index agrees with the seconds formula of ActionFormer (one frame of
            # int() rounding at most)
            seconds_index = (segments[:, :2] * table.fps[v] - 0.5 * info["num_frames"]) / info["feat_stride"]
            np.testing.assert_allclose(video["index"], seconds_index, atol=1 / info["feature_stride"])


def test_actionformer_reads_the_config_hint(tmp_path):
    out = export_opentad(tad_arrays(tmp_path / "tad.zarr"), tmp_path / "opentad")
    hint = yaml.safe_load((out / "config_hint.yaml").read_text())
    assert hint == json.loads((out / "export_info.json").read_text())["actionformer"]
    dataset = hint["dataset"]
    assert hint["dataset_name"] == "thumos" and hint["test_cfg"] == {"multiclass_nms": True, "ext_score_file": None}
    database = json.loads(open(dataset["json_file"]).read())["database"]
    label_dict = {a["label"]: a["label_id"] for video in database.values() for a in video["annotations"]}
    assert len(label_dict) == dataset["num_classes"] == 3 and max(label_dict.values()) < dataset["num_classes"]
    for split_key in ("train_split", "val_split"):
        read = [name for name, video in database.items() if video["subset"].lower() in hint[split_key]]
        assert read, split_key
        for name in read:
            feats = np.load(f"{dataset['feat_folder']}/{dataset['file_prefix'] or ''}{name}{dataset['file_ext']}")
            assert feats.ndim == 2 and feats.shape[1] == dataset["input_dim"]
    assert dataset["feat_stride"] == 16 and dataset["num_frames"] == 16 and dataset["default_fps"] is None
    assert "warning" not in (out / "config_hint.yaml").read_text()


def test_config_hint_warns_about_labels_actionformer_cannot_take(tmp_path):
    path = write_tad_array_store(tmp_path / "tad.zarr", [("train", 8, [[1.0, 3.0, 0], [4.0, 6.0, 4]]),
                                                          ("test", 8, [[2.0, 5.0, 4]])], [f"c{i}" for i in range(5)])
    out = export_opentad(path, tmp_path / "opentad")
    warnings = json.loads((out / "export_info.json").read_text())["warnings"]
    assert len(warnings) == 2 and "([0, 4]) are not 0..1" in warnings[0] and "drops label_id 4" in warnings[1]
    assert (out / "config_hint.yaml").read_text().count("# warning: ") == 2


def test_subset_names(tmp_path):
    assert parse_subset_names("train=training, test = testing") == {"train": "training", "test": "testing"}
    for bad in ("train", "train=", "=x", "train=a,train=b"):
        with pytest.raises(FeatstoreError, match="subset-names"):
            parse_subset_names(bad)
    path = tad_arrays(tmp_path / "tad.zarr")
    out = export_opentad(path, tmp_path / "named", subset_names={"train": "Validation", "test": "Test"})
    database = json.loads((out / "annotations.json").read_text())["database"]
    assert {v["subset"] for v in database.values()} == {"Validation", "Test"}  # ActionFormer's THUMOS names
    hint = json.loads((out / "export_info.json").read_text())["actionformer"]
    assert hint["train_split"] == ["validation"] and hint["val_split"] == ["test"]  # it lowercases the json's
    with pytest.raises(FeatstoreError, match="would be read as one subset"):
        export_opentad(path, tmp_path / "substring", subset_names={"train": "validation", "test": "val"})
    with_val = write_tad_array_store(tmp_path / "val.zarr", [("train", 4, []), ("val", 4, []), ("test", 4, [])], ["a"])
    with pytest.raises(FeatstoreError, match="split\\(s\\) val have no subset name"):
        export_opentad(with_val, tmp_path / "val")
    assert not (tmp_path / "val").exists() and OPENTAD_SUBSET_NAMES == {"train": "training", "test": "validation"}


def test_cli_subset_names_and_format_only_options(tmp_path):
    path = tad_arrays(tmp_path / "tad.zarr")
    done = run_cli("featstore", "export", str(path), "--format", "opentad", "--out", str(tmp_path / "o"),
                   "--subset-names", "train=training,test=testing")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "o" / "export_info.json").read_text())["subsets"] == {"train": "training",
                                                                                         "test": "testing"}
    done = run_cli("featstore", "export", str(path), "--format", "opentad", "--out", str(tmp_path / "x"),
                   "--subset-names", "training")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: --subset-names takes SPLIT=NAME pairs separated by commas (e.g. train=training,test=validation), "
        "got 'training'"], done.stderr
    with pytest.raises(FeatstoreError, match="--crops is for --format mgfn, not opentad"):
        export(path, tmp_path / "y", "opentad", crops=10)
    with pytest.raises(FeatstoreError, match="--subset-names is for --format opentad, not mgfn"):
        export(path, tmp_path / "y", "mgfn", subset_names={"train": "a"})
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def read_like_mgfn(path: str, test_mode: bool) -> np.ndarray:
    features = np.array(np.load(path.strip("\n"), allow_pickle=True), dtype=np.float32)
    if test_mode:
        return np.concatenate((features, np.linalg.norm(features, axis=2)[:, :, np.newaxis]), axis=2)
    return features.transpose(1, 0, 2)


def test_mgfn_export_is_one_crop_by_default_and_says_what_the_model_needs(ad_store, tmp_path):
    store = Store.open(ad_store)
    out = export_mgfn(ad_store, tmp_path / "mgfn")
    info = json.loads((out / "export_info.json").read_text())
    assert info["crops"] == 1 and "one crop" in info["crops_note"]
    notes = " ".join(info["model_notes"])
    assert "2048 feature channels" in notes and f"set both to {store.dim}" in notes and "batch_size * 10" in notes
    test_path = (out / "test.list").read_text().splitlines()[0]
    length = len(np.load(test_path))
    assert read_like_mgfn(test_path, test_mode=True).shape == (length, 1, store.dim + 1)
    train_path = (out / "train.list").read_text().splitlines()[0]
    assert read_like_mgfn(train_path, test_mode=False).shape[::2] == (1, store.dim)

    copies = json.loads((export_mgfn(ad_store, tmp_path / "ten", crops=10) / "export_info.json").read_text())
    assert "copies" in copies["crops_note"] and not any("batch_size" in note for note in copies["model_notes"])
