"""The TAD utility task for `anonymize train --tad-store`: batches, loss gradients into the AAM, validation."""

from __future__ import annotations

import torch

import anonymize.utility_tad  # noqa: F401  (registers "tad")
from anonymize.model import AAMConfig, build_aam
from anonymize.utility import build_task, task_names
from featstore.store import Store
from tests.evaluate.tadad_stores import tad_store  # noqa: F401  (fixture)


def test_tad_task_batches_loss_and_validation(tad_store):
    assert "tad" in task_names()
    store = Store.open(tad_store)
    task = build_task("tad", store, 1.0, "memory", 8)
    assert task.input_kind == "sequence" and task.prefers_temporal and task.grad_clip == 1.0
    batches = list(task.epoch_batches(task.batch_size, torch.Generator().manual_seed(0)))
    again = list(task.epoch_batches(task.batch_size, torch.Generator().manual_seed(0)))
    assert len(batches) == 1  # 2 training videos, TriDet's batch of 2
    batch = batches[0]
    assert batch.embeddings.shape[0] == 2 and batch.mask.shape == batch.embeddings.shape[:2]
    assert torch.equal(batch.embeddings, again[0].embeddings)  # every random choice from the generator
    streamed = next(build_task("tad", store, 1.0, "stream", 2).epoch_batches(2, torch.Generator().manual_seed(0)))
    assert torch.equal(streamed.embeddings, batch.embeddings)

    torch.manual_seed(0)
    aam = build_aam(store.dim, AAMConfig(mode="temporal", layers=1, heads=2))
    loss = task.loss(aam(batch.embeddings, batch.mask), batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in aam.parameters() if p.requires_grad)
    assert sum(float(p.grad.abs().sum()) for p in aam.parameters() if p.grad is not None) > 0
    assert task.head.loss_normalizer.dtype == torch.float64  # the EMA of positives is a buffer (checkpointed)
    assert "loss_normalizer" in task.head.state_dict()

    batch_sizes = []

    def anonymize(x, mask):
        batch_sizes.append(x.shape[0])
        return aam(x, mask)

    metrics = task.validate(anonymize, torch.device("cpu"))
    assert set(metrics) == {"mAP"} and 0 <= metrics["mAP"] <= 1
    assert batch_sizes == [1, 1]  # each of the 2 test videos alone, so its detections ignore the other one
