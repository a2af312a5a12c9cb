"""A protocol refuses a store with NaN rows, naming the store and the first bad row."""

import shutil

import numpy as np
import pytest
import torch
import zarr

from evaluate.common import StoreData
from featstore.errors import FeatstoreError
from featstore.store import Store
from tests.anonymize.conftest import structured_store


def test_nan_rows_are_refused(tmp_path):
    store = structured_store(tmp_path / "s.zarr", n_videos=6)
    zarr.open_group(str(store), mode="r+")["clips/embeddings"][4] = np.nan
    with pytest.raises(FeatstoreError, match=r"s.zarr: clips/embeddings row 4 holds NaN or Inf"):
        StoreData(Store.open(store), torch.device("cpu"))
