"""Reading training rows out of a feature store: in memory or streamed from Zarr, one epoch at a time.

Two row sources with one interface (``take(rows) -> float32 tensor``):

- ``MemoryRows`` loads a whole embedding array once (fast; memory = the array).
- ``StreamingRows`` reads only the rows a batch needs, decoding each touched Zarr chunk once per batch
  and keeping a small LRU cache of decoded chunks (memory bounded by ``cache_chunks`` chunks whatever
  the store's size).

Epoch sampling is deterministic: every random choice comes from a ``torch.Generator`` that the trainer
seeds from (seed, epoch, stream), so an epoch is reproduced exactly after a resume.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import zarr

from data_manifests.errors import FeatstoreError
from featstore.store import Store

ROW_SOURCES = ("memory", "stream")


class MemoryRows:
    """All rows of one embedding array, held in memory as float32."""

    def __init__(self, array: zarr.Array):
        self.values = torch.from_numpy(np.asarray(array[...], dtype=np.float32))

    def __len__(self) -> int:
        return self.values.shape[0]

    def take(self, rows: np.ndarray) -> torch.Tensor:
        return self.values[torch.from_numpy(np.asarray(rows, dtype=np.int64))]


class StreamingRows:
    """Rows read from the Zarr array on demand, with an LRU cache of decoded chunks."""

    def __init__(self, array: zarr.Array, cache_chunks: int = 64):
        self.array = array
        self.chunk = int(array.chunks[0])
        self.cache_chunks = max(1, cache_chunks)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def _chunk(self, index: int) -> np.ndarray:
        block = self._cache.get(index)
        if block is None:
            start = index * self.chunk
            block = np.asarray(self.array[start : start + self.chunk], dtype=np.float32)
            self._cache[index] = block
            if len(self._cache) > self.cache_chunks:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        return block

    def take(self, rows: np.ndarray) -> torch.Tensor:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.array.shape[1]), dtype=np.float32)
        chunk_of = rows // self.chunk
        for index in np.unique(chunk_of):
            picked = chunk_of == index
            out[picked] = self._chunk(int(index))[rows[picked] - index * self.chunk]
        return torch.from_numpy(out)


def open_rows(store: Store, kind: str, source: str, cache_chunks: int = 64) -> MemoryRows | StreamingRows:
    if source not in ROW_SOURCES:
        raise FeatstoreError(f"row source must be one of {list(ROW_SOURCES)}, got {source!r}")
    array = store.embeddings(kind)
    return MemoryRows(array) if source == "memory" else StreamingRows(array, cache_chunks)


def epoch_order(n_items: int, batch_size: int, generator: torch.Generator,
                groups: np.ndarray | None = None, buffer_groups: int = 0) -> list[np.ndarray]:
    """A random order of ``range(n_items)`` cut into batches.

    With ``groups`` (e.g. the storage chunk of each item) the order is *block-shuffled*: the groups are
    visited in random order and items are shuffled within windows of ``buffer_groups`` consecutive
    groups, so a streaming reader touches few chunks per batch (a shuffle buffer, as in WebDataset).
    """
    if groups is None or buffer_groups <= 0 or len(np.unique(groups)) <= buffer_groups:
        # No grouping, or all groups fit in the buffer: a plain permutation (the same as in memory).
        order = torch.randperm(n_items, generator=generator).numpy()
    else:
        unique = np.unique(groups)
        visit = unique[torch.randperm(len(unique), generator=generator).numpy()]
        order_parts = []
        for start in range(0, len(visit), buffer_groups):
            members = np.flatnonzero(np.isin(groups, visit[start : start + buffer_groups]))
            order_parts.append(members[torch.randperm(len(members), generator=generator).numpy()])
        order = np.concatenate(order_parts) if order_parts else np.zeros(0, np.int64)
    return [order[i : i + batch_size] for i in range(0, n_items, batch_size)]


def storage_groups(rows: MemoryRows | StreamingRows, offsets: np.ndarray, videos: np.ndarray) -> np.ndarray | None:
    """The chunk holding each video's first row when streaming (block-shuffled order), else None."""
    if isinstance(rows, StreamingRows):
        return offsets[videos] // rows.chunk
    return None


def buffer_chunks(rows: MemoryRows | StreamingRows) -> int:
    return rows.cache_chunks // 2 if isinstance(rows, StreamingRows) else 0


def random_row_in(offsets: np.ndarray, videos: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """One uniformly random row of each video (``offsets`` as in the store: rows v = [o[v], o[v+1]))."""
    starts = offsets[videos]
    counts = offsets[videos + 1] - starts
    draw = torch.rand(len(videos), generator=generator, dtype=torch.float64).numpy()
    return starts + np.minimum((draw * counts).astype(np.int64), counts - 1)


def two_distinct_rows_in(offsets: np.ndarray, videos: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two different random rows of each video (the same row twice only when a video has one row)."""
    starts = offsets[videos]
    counts = offsets[videos + 1] - starts
    first = np.minimum((torch.rand(len(videos), generator=generator, dtype=torch.float64).numpy() * counts)
                       .astype(np.int64), counts - 1)
    # Draw the second among the other count-1 rows, then skip over the first.
    others = np.maximum(counts - 1, 1)
    second = np.minimum((torch.rand(len(videos), generator=generator, dtype=torch.float64).numpy() * others)
                        .astype(np.int64), others - 1)
    second = np.where(counts > 1, second + (second >= first), first)
    return starts + first, starts + second


def window_rows(offsets: np.ndarray, videos: np.ndarray, centres: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2*window+1) rows around each centre row, inside its own video, and the validity mask."""
    relative = np.arange(-window, window + 1)[None, :]
    rows = centres[:, None] + relative
    valid = (rows >= offsets[videos][:, None]) & (rows < offsets[videos + 1][:, None])
    return np.where(valid, rows, centres[:, None]), valid


@dataclass
class RowPairs:
    """Two rows (static clips or clips) of each video per step for the budget, with the attribute labels."""

    first: torch.Tensor  # (B, D) or (B, W, D) in temporal mode
    second: torch.Tensor
    first_mask: torch.Tensor | None  # (B, W) bool in temporal mode
    second_mask: torch.Tensor | None
    attributes: torch.Tensor  # (B, A) float, -1 unknown


class PairSource:
    """The budget's batches: two rows of each train video (``kind`` "static": two static clips, the
    paper's budget input; "clips": two clips of the video)."""

    def __init__(self, store: Store, kind: str = "static", split: str = "train", source: str = "memory",
                 window: int = 0, cache_chunks: int = 64):
        offsets = store.static_offsets() if kind == "static" else store.clip_offsets()
        table = store.videos()
        videos = store.split_indices(split)
        self.videos = videos[np.diff(offsets)[videos] > 0]
        if len(self.videos) < 2:
            raise FeatstoreError(f"{store.path}: the budget loss needs {kind} rows of at least 2 {split} videos, "
                                 f"found {len(self.videos)}")
        self.offsets = offsets
        self.attributes = torch.from_numpy(table.attributes.astype(np.float32))
        self.rows = open_rows(store, kind, source, cache_chunks)
        self.window = window

    def __len__(self) -> int:
        return len(self.videos)

    def _take(self, videos: np.ndarray, centres: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.window <= 0:
            return self.rows.take(centres), None
        rows, valid = window_rows(self.offsets, videos, centres, self.window)
        values = self.rows.take(rows.reshape(-1)).reshape(*rows.shape, -1)
        return values, torch.from_numpy(valid)

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[RowPairs]:
        for _, pairs in self.epoch_with_videos(batch_size, generator):
            yield pairs

    def epoch_with_videos(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[np.ndarray, RowPairs]]:
        """The epoch's batches of pairs, each with its store video indices (the clip-based budgets draw one
        full clip of each of those videos)."""
        groups = storage_groups(self.rows, self.offsets, self.videos)
        for picked in epoch_order(len(self.videos), batch_size, generator, groups, buffer_chunks(self.rows)):
            if len(picked) < 2:  # NT-Xent needs negatives: a last batch of one video is skipped
                continue
            videos = self.videos[picked]
            first_rows, second_rows = two_distinct_rows_in(self.offsets, videos, generator)
            first, first_mask = self._take(videos, first_rows)
            second, second_mask = self._take(videos, second_rows)
            yield videos, RowPairs(first, second, first_mask, second_mask, self.attributes[videos])


class BudgetClipSource:
    """One random full clip of each given video, or all of them (raw rows; windows in the temporal mode)."""

    def __init__(self, store: Store, source: str, window: int, cache_chunks: int):
        self.offsets = store.clip_offsets()
        self.rows = open_rows(store, "clips", source, cache_chunks)
        self.window = window

    def draw(self, videos: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None]:
        """(positions in ``videos`` of the videos that have clips, their clips, the window mask or None)."""
        positions = np.flatnonzero(self.offsets[videos + 1] > self.offsets[videos])
        owners = videos[positions]
        rows = random_row_in(self.offsets, owners, generator)
        return (positions, *self._take(owners, rows))

    def every_clip(self, videos: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None, np.ndarray]:
        """(positions in ``videos`` of the videos that have clips, all their clips in order, the window mask or
        None, and for each clip the index of its video among those positions)."""
        positions = np.flatnonzero(self.offsets[videos + 1] > self.offsets[videos])
        owners = videos[positions]
        counts = self.offsets[owners + 1] - self.offsets[owners]
        rows = np.concatenate([np.zeros(0, np.int64)] + [np.arange(self.offsets[v], self.offsets[v + 1]) for v in owners])
        return (positions, *self._take(np.repeat(owners, counts), rows), np.repeat(np.arange(len(owners)), counts))

    def _take(self, owners: np.ndarray, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.window <= 0:
            return self.rows.take(rows), None
        window, valid = window_rows(self.offsets, owners, rows, self.window)
        return self.rows.take(window.reshape(-1)).reshape(*window.shape, -1), torch.from_numpy(valid)
