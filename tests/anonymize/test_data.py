"""Row sources and epoch orders: streaming reads equal in-memory reads; block-shuffled orders."""

from __future__ import annotations

import numpy as np
import torch
import zarr

from anonymize.data import MemoryRows, StreamingRows, epoch_order, two_distinct_rows_in, window_rows


def test_streaming_rows_equal_memory_rows_across_chunks(tmp_path):
    values = np.random.default_rng(0).normal(size=(103, 6)).astype(np.float16)
    array = zarr.create_array(str(tmp_path / "a.zarr"), shape=values.shape, chunks=(10, 6), dtype="float16")
    array[...] = values
    rows = np.array([5, 102, 0, 55, 55, 11, 99, 3])
    stream = StreamingRows(array, cache_chunks=2)  # smaller than the chunks touched: exercises eviction
    torch.testing.assert_close(stream.take(rows), MemoryRows(array).take(rows))
    torch.testing.assert_close(stream.take(rows[::-1].copy()), torch.from_numpy(values[rows[::-1]].astype(np.float32)))
    assert len(stream._cache) <= 2


def test_block_shuffled_order_visits_every_item_once_with_few_groups_per_batch():
    groups = np.repeat(np.arange(20), 50)  # 20 chunks of 50 items
    batches = epoch_order(len(groups), 25, torch.Generator().manual_seed(0), groups, buffer_groups=2)
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(len(groups)))
    assert max(len(np.unique(groups[b])) for b in batches) <= 3
    plain = epoch_order(len(groups), 25, torch.Generator().manual_seed(0))
    assert np.mean([len(np.unique(groups[b])) for b in plain]) > 10


def test_pairs_are_two_different_rows_of_the_same_video_and_windows_stay_inside():
    offsets = np.array([0, 1, 4, 14])
    videos = np.array([0, 1, 2, 2, 1])
    first, second = two_distinct_rows_in(offsets, np.repeat(videos, 50), torch.Generator().manual_seed(0))
    owner = np.repeat(videos, 50)
    assert np.all((first >= offsets[owner]) & (first < offsets[owner + 1]))
    assert np.all((second >= offsets[owner]) & (second < offsets[owner + 1]))
    assert np.all((first != second) | (owner == 0))  # the one-row video repeats its only row
    rows, valid = window_rows(offsets, np.array([2, 2]), np.array([4, 9]), 2)
    np.testing.assert_array_equal(valid, [[False, False, True, True, True], [True, True, True, True, True]])
    np.testing.assert_array_equal(rows[0], [4, 4, 4, 5, 6])
