"""Every utility task by name: ``build_task`` and ``task_names`` see "action", "tad" and "ad".

Each task's module registers its factory with ``anonymize.utility.register_task`` when imported; the task
modules import ``anonymize.utility`` for the interface, so this module, not that one, imports them all.
"""

from __future__ import annotations

from anonymize import utility_ad, utility_tad  # noqa: F401  (imported to register "ad" and "tad")
from anonymize.utility import TASK_FACTORIES, UtilityTask
from data_manifests.errors import FeatstoreError
from featstore.store import Store


def task_names() -> list[str]:
    return sorted(TASK_FACTORIES)


def build_task(name: str, store: Store, weight: float, source: str = "memory", cache_chunks: int = 64,
               head: str | None = None) -> UtilityTask:
    """The task ``name`` on ``store``; ``head``: a saved head to start from (``UtilityTask.use_trained_head``)."""
    if name not in TASK_FACTORIES:
        raise FeatstoreError(f"no utility task named {name!r} is available (registered: {task_names()})")
    task = TASK_FACTORIES[name](store, weight, source, cache_chunks)
    if head is not None:
        task.use_trained_head(head)
    return task
