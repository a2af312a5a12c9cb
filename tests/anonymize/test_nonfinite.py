"""Training refuses NaN rows, out-of-range labels and a non-finite loss, and export a non-finite output, with one line."""

import shutil

import numpy as np
import pytest
import torch
import zarr

from anonymize import checkpoint as ckpt
from featstore.hashing import file_sha256
from anonymize import train as train_module
from anonymize.export import export_store
from anonymize.model import AttentionAAM
from anonymize.train import train
from data_manifests.errors import FeatstoreError
from tests.anonymize.conftest import small_config


def damaged(array_store, tmp_path, name, index, value):
    out = tmp_path / "damaged.zarr"
    shutil.copytree(array_store, out)
    zarr.open_group(str(out), mode="r+")[name][index] = value
    return out


def test_training_refuses_a_nan_row(array_store, tmp_path):
    store = damaged(array_store, tmp_path, "static/embeddings", 7, np.nan)
    with pytest.raises(FeatstoreError, match=r"static/embeddings has 1 rows with NaN or Inf \(first row 7\)"):
        train(small_config(store, tmp_path / "run"))


def test_training_refuses_labels_outside_the_class_names(array_store, tmp_path):
    store = damaged(array_store, tmp_path, "videos/label", 4, 9)
    with pytest.raises(FeatstoreError, match="videos/label: 1 labels outside -1..2"):
        train(small_config(store, tmp_path / "run"))


def test_a_non_finite_loss_stops_training_and_keeps_the_last_epoch(array_store, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(small_config(array_store, run, epochs=1))
    saved = file_sha256(run / ckpt.AAM_FILE)
    monkeypatch.setattr(train_module, "latent_consistency", lambda *args: torch.tensor(float("nan")))
    with pytest.raises(FeatstoreError, match="the training loss is nan"):
        train(small_config(array_store, run, epochs=2), resume=True)
    assert ckpt.read_checkpoint_info(run)["epoch"] == 1 and file_sha256(run / ckpt.AAM_FILE) == saved


def test_export_refuses_an_anonymizer_whose_output_is_not_finite(array_store, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(small_config(array_store, run, epochs=1))
    monkeypatch.setattr(AttentionAAM, "forward", lambda self, x, mask=None: x * float("nan"))
    with pytest.raises(FeatstoreError, match="output holds NaN or Inf"):
        export_store(run, array_store, tmp_path / "anon.zarr", device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing written, no staging left
