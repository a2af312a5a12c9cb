"""What the anonymizer's sequence tasks (TAD, AD) share: a task on whole videos reads each video's clips in
order from the store's clip rows, and a batch is those sequences padded to the longest with their mask."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from anonymize.data import open_rows
from anonymize.utility import UtilityTask
from data_manifests.errors import FeatstoreError
from featstore.store import Store


class SequenceTask(UtilityTask):
    """A utility task on clip sequences (``input_kind`` "sequence"); ``self.rows`` reads the store's clip rows."""

    input_kind = "sequence"

    def __init__(self, store: Store, weight: float, head: nn.Module, source: str, cache_chunks: int,
                 batch_size: int | None = None, head_lr: float | None = None, head_weight_decay: float | None = None,
                 grad_clip: float | None = None):
        super().__init__(weight, head, batch_size=batch_size, head_lr=head_lr, head_weight_decay=head_weight_decay,
                         grad_clip=grad_clip)
        self.rows = open_rows(store, "clips", source, cache_chunks)


def padded_batch(sequences: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_i, D) clip sequences -> zero-padded (B, L, D) embeddings and the (B, L) mask of real clips."""
    longest = max(len(s) for s in sequences)
    embeddings = torch.zeros((len(sequences), longest, sequences[0].shape[1]))
    mask = torch.zeros((len(sequences), longest), dtype=torch.bool)
    for row, sequence in enumerate(sequences):
        embeddings[row, :len(sequence)] = sequence
        mask[row, :len(sequence)] = True
    return embeddings, mask


def validation_videos(load: Callable[[], list]) -> list:
    """The validation split's videos, none when the store has no such split with clips (validation skipped)."""
    try:
        return load()
    except FeatstoreError:
        return []
