"""A protocol refuses a store with NaN rows, naming the store and the first bad row."""

import shutil

import numpy as np
import pytest
import torch
import zarr

from evaluate.data import StoreData
from evaluate.shortcut import shortcut_diagnostics
from data_manifests.errors import FeatstoreError
from featstore.store import Store
from tests.anonymize.conftest import structured_store


def test_nan_rows_are_refused(tmp_path):
    store = structured_store(tmp_path / "s.zarr", n_videos=6)
    zarr.open_group(str(store), mode="r+")["clips/embeddings"][4] = np.nan
    with pytest.raises(FeatstoreError, match=r"s.zarr: clips/embeddings row 4 holds NaN or Inf"):
        StoreData(Store.open(store), torch.device("cpu"))


def test_shortcut_diagnostics_refuse_nan_rows(tmp_path):
    raw = structured_store(tmp_path / "raw.zarr", n_videos=8)
    anon = tmp_path / "anon.zarr"
    shutil.copytree(raw, anon)
    zarr.open_group(str(anon), mode="r+")["static/embeddings"][2] = np.inf
    with pytest.raises(FeatstoreError, match=r"anon.zarr: static/embeddings row 2 holds NaN or Inf"):
        shortcut_diagnostics(Store.open(raw), Store.open(anon))
