"""The decode side of extraction: manifest videos -> uint8 frames of clip chunks, video after video.

Decoding feeds the encoder in one of three ways, all yielding the same items in the same order:
inline (the CPU default: a decode thread or process would steal the encoder's cores), a background
thread (``workers=0`` on a GPU), or DataLoader worker processes (``workers=N``, the GPU default),
each decoding whole videos and handing over page-locked uint8 frames; the main process reads the
videos back in manifest order. Preprocessing runs next to the forward, on the encoder's device.

Each video yields its ``VideoPlan`` (where its clips and static frames are), then ``DecodedChunk``s of
frames, then a ``VideoEnd``; never the whole video at once.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from data_manifests.schema import VideoRecord
from featstore.decode import VideoDecodeError, open_media
from featstore.sampling import (
    SamplingConfig,
    clip_frame_indices,
    clip_windows,
    resample_indices,
    static_frame_indices,
)

CLIPS_PER_CHUNK = 8  # clips decoded together at most
CHUNK_FRAME_BYTES = 64 << 20  # and at most this many bytes of decoded frames (1080p: one clip)
MAX_DEFAULT_WORKERS = 8  # decode processes per GPU by default
# Decoded chunks each worker may hold ready: bounds memory at workers x this x CHUNK_FRAME_BYTES.
WORKER_PREFETCH = 4


def resolve_workers(requested: int | None, device: torch.device, local_world_size: int = 1) -> int:
    """Decode processes: as asked, else none on the CPU and min(8, this rank's share of the cores) on a GPU."""
    if requested is not None:
        return requested
    if device.type == "cpu":
        return 0
    return max(1, min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 1) // max(1, local_world_size)))


@dataclass
class VideoPlan:
    position: int  # index within the part
    record: VideoRecord
    decoder: str = ""
    n_frames: int = 0
    fps: float = 0.0
    clip_frames: np.ndarray | None = None
    clip_times: np.ndarray | None = None
    static_frames: np.ndarray | None = None
    failed_reason: str = ""


@dataclass
class DecodedChunk:
    """Decoded frames of some clips of one video; ``index`` (n_clips, clip_len) points into ``frames``, whose
    source frame numbers are ``frame_numbers`` (what a pixel transform's person boxes are keyed by)."""

    position: int
    kind: str  # "clip" | "static"
    frames: np.ndarray | torch.Tensor  # uint8 (n_frames, H, W, 3)
    index: np.ndarray
    frame_numbers: np.ndarray  # (n_frames,) int64

    def pin_memory(self) -> DecodedChunk:
        """Page-locked frames, which copy to the GPU asynchronously (the DataLoader's pinning thread calls this)."""
        return dataclasses.replace(self, frames=torch.as_tensor(self.frames).pin_memory())


@dataclass
class VideoEnd:
    """The last item of a video; ``failed`` is its plan, with the reason, when it could not be decoded."""

    position: int
    failed: VideoPlan | None = None


@dataclass(frozen=True)
class DecodeJob:
    position: int  # within its part
    path: str
    record: VideoRecord


@dataclass(frozen=True)
class DecodeSettings:
    sampling: SamplingConfig
    decoder: str


_END = object()


def clips_per_chunk(clip_len: int, height: int, width: int) -> int:
    """Clips decoded together: up to CLIPS_PER_CHUNK, fewer when frames are large (bounded memory)."""
    return int(max(1, min(CLIPS_PER_CHUNK, CHUNK_FRAME_BYTES // max(1, clip_len * height * width * 3))))


def decode_video(job: DecodeJob, settings: DecodeSettings) -> Iterator:
    """Decode one video chunk by chunk, yielding its plan, then uint8 frames with clip indices, then a
    ``VideoEnd``; never the whole video at once.

    No torch work happens here: this may run in a decode thread, and torch ops in two threads at once
    oversubscribe the cores. Preprocessing happens next to the forward, on the encoder's device.
    """
    position, record = job.position, job.record
    plan = VideoPlan(position, record)
    sampling = settings.sampling
    try:
        source = open_media(Path(job.path), settings.decoder, record.media)
    except VideoDecodeError as exc:
        plan.failed_reason = str(exc)
        yield VideoEnd(position, plan)
        return
    try:
        info = source.info
        plan.decoder, plan.n_frames, plan.fps = source.name, info.n_frames, info.fps
        if record.media == "image":
            timeline = np.zeros(1, dtype=np.int64)
            windows = np.zeros((0, 2), dtype=np.int64)
            static_t = np.zeros(1, dtype=np.int64)
            fps = 0.0
        else:
            timeline = resample_indices(info.n_frames, info.fps, sampling.fps)
            windows = clip_windows(len(timeline), sampling)
            static_t = static_frame_indices(len(timeline), sampling.static_per_video, sampling.static_positions)
            fps = sampling.fps or info.fps
        if len(windows):
            plan.clip_frames = np.stack([timeline[windows[:, 0]], timeline[windows[:, 1] - 1] + 1], axis=1)
            plan.clip_times = (windows / fps).astype(np.float64)
        else:
            plan.clip_frames, plan.clip_times = np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2))
        plan.static_frames = timeline[static_t]
        yield plan  # announce the video before its rows arrive

        static_sources = plan.static_frames
        static_pending = np.ones(len(static_sources), dtype=bool)
        stills: dict[int, np.ndarray] = {}
        step = clips_per_chunk(sampling.clip_len, info.height, info.width)
        for start in range(0, len(windows), step):
            clip_sources = np.stack(
                [timeline[clip_frame_indices(w, sampling.clip_len)] for w in windows[start : start + step]]
            )
            # Static frames up to this point are read in the same forward pass (PyAV reads forward only).
            due = np.flatnonzero(static_pending & (static_sources <= clip_sources.max()))
            unique, inverse = np.unique(np.concatenate([clip_sources.ravel(), static_sources[due]]), return_inverse=True)
            frames = source.read(unique)
            for i, at in zip(due, inverse[clip_sources.size :]):
                stills[int(i)] = frames[at]
            static_pending[due] = False
            index = inverse[: clip_sources.size].reshape(clip_sources.shape)
            yield DecodedChunk(position, "clip", frames, index, unique)
        remaining = np.flatnonzero(static_pending)
        if len(remaining):
            unique, inverse = np.unique(static_sources[remaining], return_inverse=True)
            frames = source.read(unique)
            for i, at in zip(remaining, inverse):
                stills[int(i)] = frames[at]
        if len(static_sources):
            frames = np.stack([stills[i] for i in range(len(static_sources))])
            index = np.repeat(np.arange(len(static_sources))[:, None], sampling.clip_len, axis=1)
            yield DecodedChunk(position, "static", frames, index, static_sources)  # each still tiled to a clip
    except VideoDecodeError as exc:
        plan.failed_reason = str(exc)
    finally:
        source.close()
    yield VideoEnd(position, plan if plan.failed_reason else None)


def decode_stream(jobs: list[DecodeJob], settings: DecodeSettings, device: torch.device, workers: int) -> Iterator:
    """The decode items of ``jobs``, video after video, however decoding is spread."""
    if workers > 0:
        return _worker_stream(jobs, settings, workers, pin=device.type == "cuda")
    items = (item for job in jobs for item in decode_video(job, settings))
    if device.type == "cpu":
        # On the CPU a decode thread would steal cores from the encoder's threads (its OpenMP team
        # then waits for the slowest thread), so decoding runs inline there.
        return items
    return prefetched(_pinned(items))


def _pinned(items: Iterator) -> Iterator:
    for item in items:
        yield item.pin_memory() if isinstance(item, DecodedChunk) else item


def prefetched(items: Iterator, depth: int = 4) -> Iterator:
    """Run an iterator in a background thread, ``depth`` items ahead; errors re-raise in the caller."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        def put(item) -> bool:
            while not stop.is_set():
                try:
                    buffer.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for item in items:
                if not put(item):
                    return
        except Exception as exc:  # handed over to the consuming thread, which re-raises it
            put(("error", exc))
            return
        put(_END)

    worker = threading.Thread(target=pump, daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, tuple) and item[0] == "error":
                raise item[1]
            yield item
    finally:
        stop.set()
        worker.join()


class _DecodeDataset(IterableDataset):
    """Decodes some videos, one after another, inside a DataLoader worker process."""

    def __init__(self, jobs: list[DecodeJob], settings: DecodeSettings):
        super().__init__()
        self.jobs, self.settings = jobs, settings

    def __iter__(self) -> Iterator:
        for job in self.jobs:
            for item in decode_video(job, self.settings):
                if isinstance(item, DecodedChunk):
                    # A tensor reaches the main process through shared memory rather than a pipe.
                    item.frames = torch.from_numpy(item.frames)
                yield item


def _as_is(item):
    """The DataLoader's per-item conversion: none (items are already what the encoder side reads)."""
    return item


def _worker_stream(jobs: list[DecodeJob], settings: DecodeSettings, workers: int, pin: bool) -> Iterator:
    """Decode in ``workers`` processes, video ``i`` in process ``i % workers``, read back in order.

    One single-worker DataLoader per process, rather than one DataLoader with many workers, so that
    the main process asks exactly the process that holds the next video: each process blocks once
    WORKER_PREFETCH chunks are ready, which bounds memory without a reorder buffer, and the order
    (hence every batch) is the manifest order. Whole videos per process keep PyAV's forward-only reads.
    """
    n = min(workers, len(jobs))
    if n == 0:
        return
    # Not fork: the parent may hold CUDA state and zarr's event-loop thread. A forkserver imports this
    # module (torch included) once and forks each worker from there, instead of each importing it anew.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    else:
        context = multiprocessing.get_context("spawn")
    loaders = [
        iter(
            DataLoader(
                _DecodeDataset(jobs[w::n], settings),
                batch_size=None,
                num_workers=1,
                collate_fn=_as_is,
                pin_memory=pin,
                prefetch_factor=WORKER_PREFETCH,
                multiprocessing_context=context,
            )
        )
        for w in range(n)
    ]
    for index in range(len(jobs)):
        loader = loaders[index % n]
        while True:
            item = next(loader)
            yield item
            if isinstance(item, VideoEnd):
                break


def one_part(stream: Iterator, n_videos: int) -> Iterator:
    """The items of the next ``n_videos`` videos of a stream that runs on into the following parts."""
    ended = 0
    while ended < n_videos:
        item = next(stream)
        if isinstance(item, VideoEnd):
            ended += 1
        yield item
