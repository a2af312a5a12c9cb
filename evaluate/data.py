"""A store's data for the protocols: the video table (private labels joined from the raw store when an
export dropped them) and the embeddings as tensors on the compute device, with the row arithmetic.

Data stay tensors on the compute device from loading to the end. On a GPU the stored dtype (float16 for
most stores) is kept in memory and cast to float32 one batch at a time, which halves the memory of big
stores; on the CPU the rows are cast to float32 once at load (CPU float16 gathers are slow).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from data_manifests.errors import FeatstoreError
from evaluate.training import AllRows, OneRowPerGroup
from featstore.store import PRIVATE_COLUMNS, Store, VideoTable


def open_store(path: str | Path) -> Store:
    return Store.open(path)


def videos_with_clips(store: Store, split: str) -> np.ndarray:
    """Indices of the ``split`` videos that have clips; an error when there are none."""
    videos = store.split_indices(split)
    videos = videos[np.diff(store.clip_offsets())[videos] > 0]
    if len(videos) == 0:
        raise FeatstoreError(f"{store.path}: no {split!r} videos with clips")
    return videos


def check_private_labels(store: Store, labels_from: str | Path | None) -> None:
    """A protocol reading attributes or subjects of an export that dropped them needs their raw store."""
    if labels_from is None and store.private_labels_dropped:
        raise FeatstoreError(f"{store.path} was exported without private labels: pass --labels-from RAW_STORE")


def video_table(store: Store, labels_from: str | Path | None = None, needs_private_labels: bool = False) -> VideoTable:
    """``store``'s video table; with ``labels_from`` (the raw store it was exported from) its private columns
    (``PRIVATE_COLUMNS``: attributes, subject, path) joined from that store by video id.

    An export that dropped them refuses ``needs_private_labels`` without ``labels_from``, in one line.
    """
    table = store.videos()
    if labels_from is None:
        if needs_private_labels:
            check_private_labels(store, labels_from)
        return table
    source = open_store(labels_from)
    if source.private_labels_dropped:
        raise FeatstoreError(f"--labels-from {source.path} was exported without private labels too: pass the raw store")
    labels = source.videos()
    position = {video_id: index for index, video_id in enumerate(labels.video_id.tolist())}
    if len(position) != len(table) or any(video_id not in position for video_id in table.video_id.tolist()):
        raise FeatstoreError(f"--labels-from {source.path} does not hold the video ids of {store.path} "
                             f"({len(labels)} vs {len(table)} videos): pass the raw store it was exported from")
    if source.attribute_names != store.attribute_names:
        raise FeatstoreError(f"--labels-from {source.path} names other private attributes than {store.path}")
    order = np.array([position[video_id] for video_id in table.video_id.tolist()], dtype=np.int64)
    return replace(table, **{column: getattr(labels, column)[order] for column in PRIVATE_COLUMNS})


class StoreData:
    """A store's video table and embeddings as tensors on ``device``, with the row arithmetic protocols need.

    ``kinds`` picks what is read into memory: ``"clips"``, ``"static"`` or both. ``labels_from`` and
    ``needs_private_labels``: see :func:`video_table` (a protocol reading attributes or subjects needs them).
    """

    def __init__(self, store: Store, device: torch.device, kinds: tuple[str, ...] = ("clips",),
                 labels_from: str | Path | None = None, needs_private_labels: bool = False):
        self.store = store
        self.device = device
        self.videos: VideoTable = video_table(store, labels_from, needs_private_labels)
        self.header: dict = store.header
        self.offsets = {"clips": store.clip_offsets(), "static": store.static_offsets()}
        self.embeddings: dict[str, torch.Tensor] = {}
        for kind in kinds:
            if kind not in ("clips", "static"):
                raise ValueError(f"kind must be 'clips' or 'static', got {kind!r}")
            array = store.clip_embeddings if kind == "clips" else store.static_embeddings
            values = array[...]
            store.refuse_nonfinite(kind, values)
            if device.type == "cpu":  # CPU float16 gathers and casts are slow: pay the cast once
                values = values.astype(np.float32, copy=False)
            self.embeddings[kind] = torch.from_numpy(np.ascontiguousarray(values)).to(device)

    @property
    def class_names(self) -> list[str]:
        return self.store.class_names

    @property
    def attribute_names(self) -> list[str]:
        return self.store.attribute_names

    def counts(self, kind: str) -> np.ndarray:
        return np.diff(self.offsets[kind])

    def split_videos(self, split: str, kind: str | None = None) -> np.ndarray:
        """Indices of the videos of ``split`` that have rows (of ``kind`` when given); an error if none."""
        videos = self.store.split_indices(split)
        if kind is not None:
            videos = videos[self.counts(kind)[videos] > 0]
        if len(videos) == 0:
            what = f" with {kind} embeddings" if kind else ""
            raise FeatstoreError(f"{self.store.path}: no {split!r} videos{what}")
        return videos

    def rows_of(self, videos: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """All ``kind`` rows of ``videos`` and, for each row, the position of its video in ``videos``."""
        starts = self.offsets[kind][videos]
        counts = self.counts(kind)[videos]
        owner = np.repeat(np.arange(len(videos)), counts)
        first_of_owner = np.repeat(np.cumsum(counts) - counts, counts)
        rows = np.repeat(starts, counts) + (np.arange(int(counts.sum())) - first_of_owner)
        return rows.astype(np.int64), owner.astype(np.int64)

    def evenly_spaced_rows(self, videos: np.ndarray, k: int = 5) -> np.ndarray:
        """(len(videos), k) clip rows at k evenly spaced positions (the 5-clip evaluation convention)."""
        rows = self.store.evenly_spaced_clip_rows(k)[videos]
        if (rows < 0).any():
            raise FeatstoreError(f"{self.store.path}: some videos asked for have no clips")
        return rows

    def video_means(self, videos: np.ndarray) -> torch.Tensor:
        """(len(videos), D) float32: the mean of each video's clip embeddings."""
        rows, owner = self.rows_of(videos, "clips")
        clips = self.embeddings["clips"]
        sums = torch.zeros((len(videos), clips.shape[1]), dtype=torch.float32, device=self.device)
        sums.index_add_(0, torch.from_numpy(owner).to(self.device), clips[torch.from_numpy(rows).to(self.device)].float())
        counts = torch.from_numpy(self.counts("clips")[videos]).to(self.device, torch.float32).clamp_min(1)
        return sums / counts[:, None]

    def tensor(self, values: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(values, dtype=dtype).to(self.device)

    def all_rows_sampler(self, videos: np.ndarray, kind: str) -> AllRows:
        """Every ``kind`` row of ``videos`` once per epoch; targets indexed by store video index."""
        rows, owner = self.rows_of(videos, kind)
        return AllRows.of(rows, videos[owner])

    def random_row_sampler(self, videos: np.ndarray, kind: str = "clips") -> OneRowPerGroup:
        """One random ``kind`` row of each video per epoch; targets indexed by store video index."""
        return OneRowPerGroup.of(self.offsets[kind][videos], self.counts(kind)[videos], videos)
