"""Several extraction processes on one store, launched by torchrun (one node or many).

``torchrun --nproc-per-node N -m featstore extract ...`` starts N copies of the command with
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT set. Here they become a ``Ranks``:
rank 0 alone prepares the output and plans the work, every rank computes the parts assigned to it,
and rank 0 finalizes once all are done. The ranks exchange only small Python objects (the plan, an
error message) and barriers, never tensors, so the process group always uses the gloo (CPU, TCP)
backend: it works across nodes and on GPU machines alike, and leaves the GPUs to the encoders.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch.distributed as dist

from data_manifests.errors import FeatstoreError

T = TypeVar("T")

# Ranks wait at the last barrier until the slowest rank finishes its share; with duration-balanced
# parts that is minutes, but a skewed dataset or a slow node can make it hours. A rank that dies is
# noticed by torchrun, which stops the others, so the long timeout only matters for a hung rank.
BARRIER_TIMEOUT = timedelta(hours=24)
# Per-video cost added to its duration: opening the file and decoding its static frames.
VIDEO_OVERHEAD_SECONDS = 1.0
LAUNCH_VARIABLES = ("RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job; a single process is rank 0 of 1 and every step is local."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def on_rank0(self, step: Callable[[], T]) -> T:
        """Run ``step`` on rank 0 only and hand its value (or its error) to every rank.

        The other ranks wait meanwhile; if the step fails, every rank raises a FeatstoreError with the
        same one-line message instead of waiting forever for a value that will not come.
        """
        if not self.active:
            return step()
        box: list = [None]
        if self.is_main:
            try:
                box[0] = ("ok", step())
            except FeatstoreError as exc:
                dist.broadcast_object_list([("error", str(exc))], src=0)
                raise
            except Exception as exc:  # handed to the other ranks (then re-raised here with its traceback)
                dist.broadcast_object_list([("error", f"rank 0 failed: {type(exc).__name__}: {exc}")], src=0)
                raise
        dist.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise FeatstoreError(value)
        return value


@contextlib.contextmanager
def ranks_from_environment() -> Iterator[Ranks]:
    """The ranks torchrun describes in the environment (joined for the duration), or a single process.

    A process group the caller already initialized is used as is and left open.
    """
    if dist.is_available() and dist.is_initialized():
        yield Ranks(dist.get_rank(), dist.get_world_size(), *_local_place())
        return
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield Ranks()
        return
    missing = [name for name in LAUNCH_VARIABLES if name not in os.environ]
    if missing:
        raise FeatstoreError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: launch several processes with torchrun"
        )
    if not dist.is_available():
        raise FeatstoreError("this torch build has no torch.distributed; run a single process")
    dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), *_local_place())
    finally:
        dist.destroy_process_group()


def _local_place() -> tuple[int, int]:
    return int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def video_costs(
    durations: Sequence[float | None], file_sizes: Callable[[], Sequence[int]] | None = None
) -> list[float]:
    """Relative decode+encode cost of each video, for balancing.

    Seconds of video (plus a fixed per-video overhead) when every duration is known; otherwise file
    sizes (``file_sizes()``, called only then), since mixing the two units would be meaningless;
    otherwise one per video.
    """
    if all(d is not None for d in durations):
        return [max(0.0, float(d)) + VIDEO_OVERHEAD_SECONDS for d in durations]
    if file_sizes is not None:
        sizes = list(file_sizes())
        if len(sizes) == len(durations):
            return [float(size) + 1.0 for size in sizes]
    return [1.0] * len(durations)


def assign_parts(parts: Sequence[int], costs: Sequence[float], world_size: int) -> list[list[int]]:
    """Deterministic longest-processing-time assignment: each part, costliest first (ties: lower index),
    goes to the least loaded rank (ties: lower rank). Returns each rank's parts in ascending order.

    Parts never depend on the world size, so a resumed job with another world size just reassigns
    the parts that are still missing.
    """
    if len(parts) != len(costs):
        raise ValueError("one cost per part")
    loads = [(0.0, rank) for rank in range(world_size)]
    heapq.heapify(loads)
    assignment: list[list[int]] = [[] for _ in range(world_size)]
    for cost, part in sorted(zip(costs, parts), key=lambda pair: (-pair[0], pair[1])):
        load, rank = heapq.heappop(loads)
        assignment[rank].append(part)
        heapq.heappush(loads, (load + cost, rank))
    return [sorted(mine) for mine in assignment]
