"""A store's data as tensors: row arithmetic and video means."""

import numpy as np
import torch

from evaluate.data import StoreData
from featstore.store import Store


def test_store_rows_and_video_means_match_a_plain_loop(tiny_store):
    store = Store.open(tiny_store)
    data = StoreData(store, torch.device("cpu"), kinds=("clips", "static"))
    videos = data.split_videos("test", "clips")
    rows, owner = data.rows_of(videos, "static")
    offsets = store.static_offsets()
    expected = [(r, i) for i, v in enumerate(videos) for r in range(offsets[v], offsets[v + 1])]
    assert list(zip(rows.tolist(), owner.tolist())) == expected
    clips = store.load_embeddings("clips")
    clip_offsets = store.clip_offsets()
    means = np.stack([clips[clip_offsets[v] : clip_offsets[v + 1]].mean(axis=0) for v in videos])
    np.testing.assert_allclose(data.video_means(videos).numpy(), means, rtol=1e-5, atol=1e-6)
    assert data.evenly_spaced_rows(videos, 5).shape == (len(videos), 5)
