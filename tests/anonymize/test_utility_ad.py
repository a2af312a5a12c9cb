"""The AD utility task for `anonymize train --ad-store`: balanced batches, loss gradients into the AAM."""

from __future__ import annotations

import torch

import anonymize.utility_ad  # noqa: F401  (registers "ad")
from anonymize.model import AAMConfig, build_aam
from anonymize.utility_tasks import build_task, task_names
from featstore.store import Store


def test_ad_task_batches_loss_and_validation(ad_store):
    assert "ad" in task_names()
    store = Store.open(ad_store)
    task = build_task("ad", store, 1.0, "memory", 8)
    assert task.head_lr == 1e-3 and task.head_weight_decay == 5e-4
    batch = next(task.epoch_batches(task.batch_size, torch.Generator().manual_seed(0)))
    n = int(batch.targets)
    assert batch.embeddings.shape[0] == 2 * n
    labels = store.videos().label
    assert [int(labels[v]) for v in batch.info["videos"]] == [0] * n + [1] * n  # normal first, as MGFN

    torch.manual_seed(0)
    aam = build_aam(store.dim, AAMConfig(layers=1, heads=2))
    loss = task.loss(aam(batch.embeddings, batch.mask), batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert sum(float(p.grad.abs().sum()) for p in aam.parameters() if p.grad is not None) > 0

    metrics = task.validate(lambda x, mask: aam(x, mask), torch.device("cpu"))
    assert set(metrics) == {"roc_auc", "pr_auc"} and 0 <= metrics["roc_auc"] <= 1
