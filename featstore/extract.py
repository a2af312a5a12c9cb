"""Extraction: manifest videos -> decoded clip chunks -> batched encoder -> staged parts -> store.

Work is committed in *parts*: fixed consecutive groups of ``videos_per_part`` manifest videos. A
part is encoded as one stream of clips cut into batches of ``batch_size``, so the batches, and
therefore the numbers, depend only on the part; a resumed run recomputes unfinished parts exactly
as an uninterrupted run would have, and so does a run spread over several processes.

Decoding feeds the encoder in one of three ways, all yielding the same items in the same order:
inline (the CPU default: a decode thread or process would steal the encoder's cores), a background
thread (``workers=0`` on a GPU), or DataLoader worker processes (``workers=N``, the GPU default),
each decoding whole videos and handing over page-locked uint8 frames; the main process reads the
videos back in manifest order. Preprocessing runs next to the forward, on the encoder's device.

Under torchrun (see ``featstore.distributed``) rank 0 prepares the output and assigns the missing
parts to ranks, balanced by duration; every rank writes only its own part files; rank 0 finalizes
(``finalize_store``, also ``featstore finalize``) once every rank is done.

One job writes a store at a time: rank 0 (or the single process) holds the store's ``StoreLock`` from
planning to the end of finalize, on behalf of all its ranks; a second writer stops with a one-line
error naming the owner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from data_manifests.registry import resolve_dataset
from data_manifests.schema import Manifest, VideoRecord
from featstore.decode import DECODERS, VideoDecodeError, open_media
from featstore.device import autocast, resolve_device, resolve_precision
from featstore.distributed import Ranks, assign_parts, ranks_from_environment, video_costs
from featstore.encoders import LoadedEncoder, create_encoder, get_encoder_entry
from data_manifests.errors import FeatstoreError
from featstore.preprocess import preprocess_frames
from featstore.progress import ExtractProgress
from featstore.sampling import (
    SamplingConfig,
    clip_frame_indices,
    clip_windows,
    read_sampling_record,
    resample_indices,
    static_frame_indices,
)
from featstore.store import (
    STAGING_DIR,
    STORE_DTYPES,
    DamagedPartError,
    Location,
    Part,
    StagingArea,
    Store,
    StoreContents,
    StoreLock,
    VideoResult,
    remove_partial_writes,
    utc_now,
    write_store,
)

CLIPS_PER_CHUNK = 8  # clips decoded together at most
CHUNK_FRAME_BYTES = 64 << 20  # and at most this many bytes of decoded frames (1080p: one clip)
MAX_DEFAULT_WORKERS = 8  # decode processes per GPU by default
# Decoded chunks each worker may hold ready: bounds memory at workers x this x CHUNK_FRAME_BYTES.
WORKER_PREFETCH = 4
# How long a rank looks again for files another node wrote: shared filesystems (NFS) may cache a
# directory's listing for some seconds.
SHARED_STORAGE_SETTLE_SECONDS = 60.0


@dataclass
class ExtractConfig:
    model: str
    dataset: str
    out: str  # a local path or an fsspec URL (s3://bucket/x.zarr)
    data_root: str | None = None
    fold: int = 1
    allow_outside_root: bool = False  # read record paths that resolve outside the manifest's root
    weights: str | None = None
    seed: int = 0
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    dtype: str = "float16"
    batch_size: int = 32
    videos_per_part: int = 8
    device: str = "auto"
    precision: str = "auto"
    decoder: str = "auto"
    overwrite: bool = False
    retry_failed: bool = False
    workers: int | None = None  # decode processes; None: 0 on the CPU, min(8, cores per rank) on a GPU
    compile: bool = False  # torch.compile the encoder module

    def __post_init__(self) -> None:
        if self.dtype not in STORE_DTYPES:
            raise FeatstoreError(f"--dtype must be one of {list(STORE_DTYPES)}, got {self.dtype!r}")
        if self.batch_size < 1:
            raise FeatstoreError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.videos_per_part < 1:
            raise FeatstoreError(f"--videos-per-part must be >= 1, got {self.videos_per_part}")
        if self.decoder not in DECODERS:
            raise FeatstoreError(f"--decoder must be one of {list(DECODERS)}, got {self.decoder!r}")
        if self.workers is not None and self.workers < 0:
            raise FeatstoreError(f"--workers must be >= 0, got {self.workers}")

    def to_json(self) -> dict:
        record = asdict(self)
        record["sampling"] = self.sampling.to_json()
        return record


@dataclass
class ExtractResult:
    store: Path | str
    n_videos: int
    n_failed: int
    n_clips: int
    n_static: int
    parts_computed: int  # by this process
    parts_reused: int
    seconds: float
    failures: list[dict]
    rank: int = 0
    world_size: int = 1
    videos_computed: int = 0  # by this process


def resolve_workers(requested: int | None, device: torch.device, local_world_size: int = 1) -> int:
    """Decode processes: as asked, else none on the CPU and min(8, this rank's share of the cores) on a GPU."""
    if requested is not None:
        return requested
    if device.type == "cpu":
        return 0
    return max(1, min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 1) // max(1, local_world_size)))


# ---------------------------------------------------------------------- the decode side
@dataclass
class _VideoPlan:
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
class _Chunk:
    """Decoded frames of some clips of one video; ``index`` (n_clips, clip_len) points into ``frames``."""

    position: int
    kind: str  # "clip" | "static"
    frames: np.ndarray | torch.Tensor  # uint8 (n_frames, H, W, 3)
    index: np.ndarray

    def pin_memory(self) -> _Chunk:
        """Page-locked frames, which copy to the GPU asynchronously (the DataLoader's pinning thread calls this)."""
        return dataclasses.replace(self, frames=torch.as_tensor(self.frames).pin_memory())


@dataclass
class _VideoEnd:
    """The last item of a video; ``failed`` is its plan, with the reason, when it could not be decoded."""

    position: int
    failed: _VideoPlan | None = None


@dataclass(frozen=True)
class _DecodeJob:
    position: int  # within its part
    path: str
    record: VideoRecord


@dataclass(frozen=True)
class _DecodeSettings:
    sampling: SamplingConfig
    decoder: str


_END = object()


def clips_per_chunk(clip_len: int, height: int, width: int) -> int:
    """Clips decoded together: up to CLIPS_PER_CHUNK, fewer when frames are large (bounded memory)."""
    return int(max(1, min(CLIPS_PER_CHUNK, CHUNK_FRAME_BYTES // max(1, clip_len * height * width * 3))))


def decode_video(job: _DecodeJob, settings: _DecodeSettings) -> Iterator:
    """Decode one video chunk by chunk, yielding its plan, then uint8 frames with clip indices, then a
    ``_VideoEnd``; never the whole video at once.

    No torch work happens here: this may run in a decode thread, and torch ops in two threads at once
    oversubscribe the cores. Preprocessing happens next to the forward, on the encoder's device.
    """
    position, record = job.position, job.record
    plan = _VideoPlan(position, record)
    sampling = settings.sampling
    try:
        source = open_media(Path(job.path), settings.decoder, record.media)
    except VideoDecodeError as exc:
        plan.failed_reason = str(exc)
        yield _VideoEnd(position, plan)
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
            yield _Chunk(position, "clip", frames, inverse[: clip_sources.size].reshape(clip_sources.shape))
        remaining = np.flatnonzero(static_pending)
        if len(remaining):
            unique, inverse = np.unique(static_sources[remaining], return_inverse=True)
            frames = source.read(unique)
            for i, at in zip(remaining, inverse):
                stills[int(i)] = frames[at]
        if len(static_sources):
            frames = np.stack([stills[i] for i in range(len(static_sources))])
            index = np.repeat(np.arange(len(static_sources))[:, None], sampling.clip_len, axis=1)
            yield _Chunk(position, "static", frames, index)  # each still tiled to a clip
    except VideoDecodeError as exc:
        plan.failed_reason = str(exc)
    finally:
        source.close()
    yield _VideoEnd(position, plan if plan.failed_reason else None)


def decode_stream(jobs: list[_DecodeJob], settings: _DecodeSettings, device: torch.device, workers: int) -> Iterator:
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
        yield item.pin_memory() if isinstance(item, _Chunk) else item


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

    def __init__(self, jobs: list[_DecodeJob], settings: _DecodeSettings):
        super().__init__()
        self.jobs, self.settings = jobs, settings

    def __iter__(self) -> Iterator:
        for job in self.jobs:
            for item in decode_video(job, self.settings):
                if isinstance(item, _Chunk):
                    # A tensor reaches the main process through shared memory rather than a pipe.
                    item.frames = torch.from_numpy(item.frames)
                yield item


def _as_is(item):
    """The DataLoader's per-item conversion: none (items are already what the encoder side reads)."""
    return item


def _worker_stream(jobs: list[_DecodeJob], settings: _DecodeSettings, workers: int, pin: bool) -> Iterator:
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
            if isinstance(item, _VideoEnd):
                break


def _one_part(stream: Iterator, n_videos: int) -> Iterator:
    """The items of the next ``n_videos`` videos of a stream that runs on into the following parts."""
    ended = 0
    while ended < n_videos:
        item = next(stream)
        if isinstance(item, _VideoEnd):
            ended += 1
        yield item


# ---------------------------------------------------------------------- the encode side
class _PartEncoder:
    """Consumes one part's stream, cuts it into fixed batches and routes embeddings back to videos.

    Embeddings stay on the encoder's device until the part ends and then come back in one copy, so a
    GPU is not made to wait for the host after every batch.
    """

    def __init__(self, encoder: LoadedEncoder, device: torch.device, precision: torch.dtype, batch_size: int):
        self.encoder, self.device, self.precision, self.batch_size = encoder, device, precision, batch_size
        self.preprocess = encoder.spec.preprocess()
        self.forward_seconds = 0.0
        self._cuda_timings: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def run(self, records: list[VideoRecord], stream: Iterator, progress: ExtractProgress) -> list[VideoResult]:
        plans: dict[int, _VideoPlan] = {}
        outputs: list[torch.Tensor] = []  # one (batch, D) float32 tensor per forward
        owners: list[tuple[int, str, int]] = []  # (video position, kind, rows), in output row order
        pending: list[tuple[int, str, torch.Tensor]] = []
        pending_rows = 0

        def flush(limit: int | None) -> None:
            nonlocal pending, pending_rows
            while pending and (limit is None or pending_rows >= limit):
                take = self.batch_size if limit is not None else pending_rows
                take = min(take, pending_rows)
                pieces, got = [], 0
                while got < take:
                    position, kind, clips = pending[0]
                    need = take - got
                    if len(clips) <= need:
                        pending.pop(0)
                        piece = clips
                    else:
                        piece, pending[0] = clips[:need], (position, kind, clips[need:])
                    pieces.append(piece)
                    owners.append((position, kind, len(piece)))
                    got += len(piece)
                outputs.append(self._forward(torch.cat(pieces)))
                pending_rows -= take
                if limit is None:
                    break

        for item in stream:
            if isinstance(item, _VideoPlan):
                plans[item.position] = item
            elif isinstance(item, _Chunk):
                clips = self._clips(item)
                pending.append((item.position, item.kind, clips))
                pending_rows += len(clips)
                flush(self.batch_size)
            elif item.failed is not None:
                plans[item.position] = item.failed
        flush(None)

        rows = self._route(outputs, owners)
        results = []
        for position, record in enumerate(records):
            plan = plans[position]
            if plan.failed_reason:
                results.append(VideoResult(record.video_id, failed_reason=plan.failed_reason, decoder=plan.decoder))
                progress.video_done(0, self.forward_seconds, failed=True)
                continue
            clips = _gather(rows.get((position, "clip")), self.encoder.spec.embed_dim)
            static = _gather(rows.get((position, "static")), self.encoder.spec.embed_dim)
            results.append(
                VideoResult(
                    video_id=record.video_id,
                    decoder=plan.decoder,
                    n_frames=plan.n_frames,
                    fps=plan.fps,
                    duration=plan.n_frames / plan.fps if plan.fps else 0.0,
                    clip_embeddings=clips,
                    clip_frames=plan.clip_frames,
                    clip_times=plan.clip_times,
                    static_embeddings=static,
                    static_frames=plan.static_frames,
                )
            )
            progress.video_done(len(clips) + len(static), self.forward_seconds)
        return results

    def _clips(self, chunk: _Chunk) -> torch.Tensor:
        """uint8 frames -> preprocessed (n, 3, T, H, W) clips on the encoder's device."""
        frames = torch.as_tensor(chunk.frames).to(self.device, non_blocking=True)  # async when pinned
        frames = preprocess_frames(frames, self.preprocess)
        return frames[torch.from_numpy(chunk.index).to(self.device)].permute(0, 2, 1, 3, 4)

    def _forward(self, clips: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # GPU time, read once the part's rows are back on the host
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = self._encode(clips)
            end.record()
            self._cuda_timings.append((start, end))
            return out
        started = time.perf_counter()
        out = self._encode(clips)
        self.forward_seconds += time.perf_counter() - started
        return out

    def _encode(self, clips: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.encoder.module(clips).float()

    def _route(self, outputs: list[torch.Tensor], owners: list[tuple[int, str, int]]) -> dict:
        """All of the part's embeddings to the host in one copy, then split back per (video, kind)."""
        with torch.inference_mode():
            if outputs:
                table = torch.cat(outputs).cpu().numpy()
            else:
                table = np.zeros((0, self.encoder.spec.embed_dim), np.float32)
        for start, end in self._cuda_timings:  # complete: the copy above waited for them
            self.forward_seconds += start.elapsed_time(end) / 1000.0
        self._cuda_timings.clear()
        rows: dict[tuple[int, str], list[np.ndarray]] = {}
        at = 0
        for position, kind, n in owners:
            rows.setdefault((position, kind), []).append(table[at : at + n])
            at += n
        return rows


def _gather(blocks: list | None, dim: int) -> np.ndarray:
    if not blocks:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(blocks)


# ---------------------------------------------------------------------- orchestration
@dataclass
class _RunPlan:
    """Rank 0's plan, handed to every rank: which parts are missing and who computes them."""

    todo: list[int]
    reused: int
    assignment: list[list[int]]  # per rank


def extract(config: ExtractConfig, show_progress: bool = True) -> ExtractResult:
    """Run (or resume) an extraction; returns a summary. Raises FeatstoreError on bad input.

    Under torchrun every rank calls this with the same config; each computes its share of the parts
    and rank 0 finalizes the store (the result then describes this rank's share).
    """
    started = time.perf_counter()
    entry = get_encoder_entry(config.model)  # cheap checks first: unknown model, missing weights
    manifest = resolve_dataset(config.dataset, config.data_root, config.fold,
                               allow_outside_root=config.allow_outside_root)
    encoder = create_encoder(entry.name, config.weights, config.seed, torch_compile=config.compile)
    spec = encoder.spec
    if config.sampling.clip_len != spec.num_frames:
        raise FeatstoreError(
            f"model {spec.name!r} takes {spec.num_frames}-frame clips; --clip-len {config.sampling.clip_len} does not fit it"
        )
    with ranks_from_environment() as ranks:
        device = _rank_device(resolve_device(config.device), ranks)
        precision = resolve_precision(device, config.precision)
        workers = resolve_workers(config.workers, device, ranks.local_world_size)
        encoder.module.to(device)
        identity = {
            "model": spec.name,
            "weights_sha256": encoder.weights_sha256,
            "spec": spec.to_json(),
            "preprocess": spec.preprocess().to_json(),
            "sampling": config.sampling.to_json(),
            "dtype": config.dtype,
            "dataset": manifest.header.name,
            "videos_per_part": config.videos_per_part,
            "batch_size": config.batch_size,
            "precision": str(precision).replace("torch.", ""),
        }
        identity = json.loads(json.dumps(identity))  # the form it has when read back (tuples -> lists)
        attrs = {
            "identity": identity,
            "config": config.to_json(),
            "provenance": _provenance(encoder, device, precision, config, workers, ranks.world_size),
            "dataset": {
                "header": manifest.header.to_json(),
                "fingerprint": manifest.fingerprint(),
                "source": str(manifest.source) if manifest.source else None,
                "n_videos": len(manifest.records),
            },
        }
        attrs = json.loads(json.dumps(attrs))
        staging = StagingArea(config.out, spec.embed_dim, config.dtype)
        with contextlib.ExitStack() as held:  # the lock, on rank 0, until the store is finalized or this fails

            def lock_and_plan() -> _RunPlan | None:
                held.enter_context(StoreLock(config.out))
                return _plan_run(staging, identity, attrs, manifest, config, ranks.world_size)

            plan = ranks.on_rank0(lock_and_plan)
            if plan is None:  # the store is finished and up to date
                return _result(config.out, len(manifest.records), 0, 0, time.perf_counter() - started, ranks)

            if ranks.active and not ranks.is_main:
                _wait_until_visible(staging)
            units = _units(manifest.records, config.videos_per_part)
            mine = plan.assignment[ranks.rank]
            jobs = [
                _DecodeJob(position, str(manifest.resolve_path(record)), record)
                for index in mine
                for position, record in enumerate(units[index])
            ]
            settings = _DecodeSettings(config.sampling, config.decoder)
            part_encoder = _PartEncoder(encoder, device, precision, config.batch_size)
            meta = {"device": str(device), "rank": ranks.rank, "world_size": ranks.world_size, "workers": workers}
            with contextlib.closing(decode_stream(jobs, settings, device, workers)) as stream, ExtractProgress(
                len(jobs), enabled=show_progress and ranks.is_main
            ) as progress:
                for index in mine:
                    results = part_encoder.run(units[index], _one_part(stream, len(units[index])), progress)
                    staging.save_part(Part(index, results, {**meta, "finished": utc_now()}))

            ranks.barrier()  # every rank's parts are staged
            settle = SHARED_STORAGE_SETTLE_SECONDS if ranks.active else 0.0
            ranks.on_rank0(lambda: finalize_store(config.out, settle_seconds=settle))
        return _result(config.out, len(manifest.records), len(mine), plan.reused, time.perf_counter() - started,
                       ranks, videos_computed=len(jobs))


def finalize_store(out: str | Path, settle_seconds: float = 0.0) -> ExtractResult | None:
    """Consolidate the staged parts of an extraction into the store and mark it complete.

    Rank 0 calls this at the end of every run; ``featstore finalize`` calls it by hand, e.g. after a
    multi-node job whose rank 0 died after the others had finished. Raises a one-line FeatstoreError
    naming the parts that are missing or damaged, after looking again for up to ``settle_seconds`` (a
    shared filesystem may show another node's new files late). Returns None when the store is already
    complete. Takes the store's lock (already held when extract calls this; held by another process,
    this stops with one line naming it).
    """
    with StoreLock(out):
        return _finalize(out, settle_seconds)


def _finalize(out: str | Path, settle_seconds: float) -> ExtractResult | None:
    started = time.perf_counter()
    location = Location(out)
    probe = StagingArea(out, 0, "float32")  # dim and dtype are read from run.json below
    if not probe.exists():
        if Store.is_store(out):
            Store.open(out)  # complete (else this raises saying what it is)
            return None
        raise FeatstoreError(f"no extraction to finalize at {location} (no {STAGING_DIR}/run.json)")
    run = probe.read_run()
    attrs = run.get("attrs")
    if attrs is None:
        raise FeatstoreError(
            f"{location}: the staging area does not record what finalize needs (staged by an older featstore, or "
            "interrupted while being prepared); re-run the same extract command to finish it"
        )
    identity = run["identity"]
    staging = StagingArea(out, identity["spec"]["embed_dim"], identity["dtype"])
    manifest = _load_staged_manifest(staging)
    units = _units(manifest.records, identity["videos_per_part"])
    deadline = time.monotonic() + settle_seconds
    missing, damaged = _parts_to_compute(staging, units, range(len(units)), False)
    while missing and time.monotonic() < deadline:
        time.sleep(1.0)
        missing, damaged = _parts_to_compute(staging, units, missing, False)
    if missing:
        raise FeatstoreError(
            f"{location}: cannot finalize, {len(missing)} of {len(units)} parts are "
            f"{'missing or damaged' if damaged else 'missing'} ({_describe_parts(missing, damaged)}); re-run the extract command (any number of processes) to "
            "compute them"
        )
    attrs["provenance"]["finished"] = utc_now()
    contents = StoreContents(manifest.records, manifest.header.attribute_names, attrs)
    write_store(location.path, contents, staging, len(units))
    staging.remove()
    return _result(out, len(manifest.records), 0, len(units), time.perf_counter() - started)


def _wait_until_visible(staging: StagingArea) -> None:
    """A rank other than 0 checks that it sees the staging area rank 0 prepared (same storage)."""
    deadline = time.monotonic() + SHARED_STORAGE_SETTLE_SECONDS
    while not staging.exists():
        if time.monotonic() >= deadline:
            raise FeatstoreError(
                f"this rank does not see {staging.run_file}, which rank 0 wrote: --out must be on storage "
                "every node shares (a shared filesystem or an object-store URL)"
            )
        time.sleep(1.0)


def _units(records: list[VideoRecord], videos_per_part: int) -> list[list[VideoRecord]]:
    n_parts = math.ceil(len(records) / videos_per_part)
    return [records[i * videos_per_part : (i + 1) * videos_per_part] for i in range(n_parts)]


def _parts_to_compute(
    staging: StagingArea, units: list[list[VideoRecord]], candidates, retry_failed: bool
) -> tuple[list[int], dict[int, str]]:
    """Among ``candidates``, the parts without a usable staged file, and why each damaged one is unusable.

    A staged part is used when it reads back whole and holds exactly its unit's videos (and no failure,
    when failures are retried); anything else is computed again.
    """
    todo, damaged = [], {}
    for index in candidates:
        if not staging.has_part(index):
            todo.append(index)
            continue
        try:
            summary = staging.verify_part(index)
        except DamagedPartError as exc:
            todo.append(index)
            damaged[index] = str(exc)
            continue
        if summary["video_ids"].tolist() != [r.video_id for r in units[index]] or (
            retry_failed and any(summary["failed_reasons"].tolist())
        ):
            todo.append(index)
    return todo, damaged


def _describe_parts(indices: list[int], reasons: dict[int, str], limit: int = 8) -> str:
    """``part-000003 (zero bytes), part-000007`` for the first ``limit`` parts, then how many more."""
    shown = [
        StagingArea.part_name(i).removesuffix(".npz") + (f" ({reasons[i]})" if i in reasons else "")
        for i in indices[:limit]
    ]
    more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
    return ", ".join(shown) + more


def _plan_run(
    staging: StagingArea, identity: dict, attrs: dict, manifest: Manifest, config: ExtractConfig, world_size: int
) -> _RunPlan | None:
    """Rank 0: prepare the output and decide what is left to compute and by whom (None: nothing)."""
    if _up_to_date(staging, identity, manifest, config):
        return None
    _prepare_output(staging, identity, attrs, manifest, config)
    units = _units(manifest.records, config.videos_per_part)
    todo, damaged = _parts_to_compute(staging, units, range(len(units)), config.retry_failed)
    if damaged:
        print(f"note: recomputing {len(damaged)} damaged staged parts: {_describe_parts(sorted(damaged), damaged)}",
              file=sys.stderr)
    costs = _part_costs(manifest, units)
    assignment = assign_parts(todo, [costs[i] for i in todo], world_size)
    return _RunPlan(todo, len(units) - len(todo), assignment)


def _part_costs(manifest: Manifest, units: list[list[VideoRecord]]) -> list[float]:
    """Each part's expected work, from the manifest's durations (else file sizes, else video counts)."""
    records = [record for unit in units for record in unit]

    def duration(record: VideoRecord) -> float | None:
        if record.media == "image":
            return 0.0
        if record.duration is not None:
            return record.duration
        if record.n_frames is not None and record.fps:
            return record.n_frames / record.fps
        return None

    costs = video_costs(
        [duration(r) for r in records], lambda: [manifest.resolve_path(r).stat().st_size for r in records]
    )
    totals, at = [], 0
    for unit in units:
        totals.append(sum(costs[at : at + len(unit)]))
        at += len(unit)
    return totals


def _rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """Each rank of a node on its own GPU (cuda:LOCAL_RANK) unless a device index was given."""
    if device.type != "cuda":
        return device
    if device.index is None and ranks.active:
        device = torch.device("cuda", ranks.local_rank)
    if device.index is not None:
        torch.cuda.set_device(device)
    return device


def _result(out, n_videos: int, computed: int, reused: int, seconds: float, ranks: Ranks | None = None,
            videos_computed: int = 0) -> ExtractResult:
    store = Store.open(out)
    ranks = ranks or Ranks()
    return ExtractResult(
        store=store.path,
        n_videos=n_videos,
        n_failed=len(store.failures),
        n_clips=int(store.clip_offsets()[-1]),
        n_static=int(store.static_offsets()[-1]),
        parts_computed=computed,
        parts_reused=reused,
        seconds=seconds,
        failures=store.failures,
        rank=ranks.rank,
        world_size=ranks.world_size,
        videos_computed=videos_computed,
    )


def _up_to_date(staging: StagingArea, identity: dict, manifest: Manifest, config: ExtractConfig) -> bool:
    """A finished store of the same settings and dataset content needs no work (unless retrying failures)."""
    out = staging.location.path
    if staging.exists() or not Store.is_store(out):
        return False
    store = Store.open(out)
    return (
        _read_identity(store.identity) == identity
        and store.dataset.get("fingerprint") == manifest.fingerprint()
        and not (config.retry_failed and store.failures)
    )


def _prepare_output(
    staging: StagingArea, identity: dict, attrs: dict, manifest: Manifest, config: ExtractConfig
) -> None:
    """Create, resume or refuse the output; a finished store is reopened for more work as staged parts.

    Ends with the staging area holding this run's manifest and attributes, so that the store can be
    finalized from the staging area alone (``finalize_store``), by any process.
    """
    location = staging.location
    out = location.path
    if location.exists() and not Store.is_store(out) and not location.is_empty_folder():
        raise FeatstoreError(f"{location} exists and is not a featstore store; refusing to touch it")
    previous = _existing_identity(staging)
    if previous is not None and previous != identity:
        if not config.overwrite:
            changed = sorted(k for k in identity if previous.get(k) != identity.get(k))
            raise FeatstoreError(
                f"{location} was made with other settings ({', '.join(changed)} differ); "
                "use --overwrite to replace it or choose another --out"
            )
        location.remove_tree()
        previous = None
    if previous is not None and not staging.exists():
        _reopen_complete_store(staging)
    run = staging.read_run() if staging.exists() else {"identity": identity, "started": utc_now()}
    staging.create()
    staging.clear_temporaries()
    staging.write_file(StagingArea.MANIFEST_FILE, _manifest_bytes(manifest))
    staging.write_run({**run, "attrs": attrs, "updated": utc_now()})  # run.json last: it marks the staging area
    remove_partial_writes(out)


def _manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as JSON lines with an absolute root, readable wherever the staging area lives."""
    header = manifest.header.to_json()
    header["root"] = str(manifest.root_dir.resolve())
    lines = [json.dumps(header)] + [json.dumps(record.to_json()) for record in manifest.records]
    return ("\n".join(lines) + "\n").encode()


def _load_staged_manifest(staging: StagingArea) -> Manifest:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / StagingArea.MANIFEST_FILE
        path.write_bytes(staging.read_file(StagingArea.MANIFEST_FILE))
        return Manifest.load(path)


def _existing_identity(staging: StagingArea) -> dict | None:
    if staging.exists():
        return _read_identity(staging.read_run()["identity"])
    if Store.is_store(staging.location.path):
        return _read_identity(Store.open(staging.location.path).identity)
    return None


def _read_identity(identity: dict) -> dict:
    """A recorded identity as this version writes it (the sampling fields older stores lack filled in)."""
    if "sampling" not in identity:  # not made by extract (e.g. an array store): nothing to fill in
        return identity
    return {**identity, "sampling": read_sampling_record(identity["sampling"])}


def _reopen_complete_store(staging: StagingArea) -> None:
    """Turn a finished store back into staged parts so new or failed videos can be (re)done."""
    store = Store.open(staging.location.path)
    identity = store.identity
    per_part = identity["videos_per_part"]
    table = store.videos()
    failed = {f["video_id"]: f["reason"] for f in store.failures}
    clip_off, static_off = store.clip_offsets(), store.static_offsets()
    clip_frames, clip_times = store.array("clips/frames"), store.array("clips/times")
    static_frames = store.array("static/frames")
    staging.create()
    for index in range(math.ceil(len(table) / per_part)):
        results = []
        for v in range(index * per_part, min(len(table), (index + 1) * per_part)):
            video_id = str(table.video_id[v])
            result = VideoResult(
                video_id=video_id,
                failed_reason=failed.get(video_id, ""),
                decoder=str(table.decoder[v]),
                n_frames=int(table.n_frames[v]),
                fps=float(table.fps[v]),
                duration=float(table.duration[v]),
            )
            if not result.failed:
                c0, c1, s0, s1 = int(clip_off[v]), int(clip_off[v + 1]), int(static_off[v]), int(static_off[v + 1])
                result.clip_embeddings = store.clip_embeddings[c0:c1]
                result.clip_frames, result.clip_times = clip_frames[c0:c1], clip_times[c0:c1]
                result.static_embeddings = store.static_embeddings[s0:s1]
                result.static_frames = static_frames[s0:s1]
            results.append(result)
        staging.save_part(Part(index, results, {"reopened": utc_now()}))
    # Without a manifest copy yet: the caller writes the current one before anything can finalize.
    staging.write_run({"identity": identity, "started": utc_now()})


def _provenance(encoder: LoadedEncoder, device: torch.device, precision: torch.dtype, config: ExtractConfig,
                workers: int, world_size: int) -> dict:
    versions = {}
    for package in ("latent-anonymization", "torch", "numpy", "zarr", "decord", "av", "pillow", "fsspec"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return {
        "encoder": encoder.spec.name,
        "weights": encoder.weights,
        "weights_sha256": encoder.weights_sha256,
        "spec": encoder.spec.to_json(),
        "preprocess": encoder.spec.preprocess().to_json(),
        "sampling": config.sampling.to_json(),
        "device": str(device),
        "precision": str(precision).replace("torch.", ""),
        "decoder_preference": config.decoder,
        "allow_outside_root": config.allow_outside_root,
        "workers": workers,
        "compile": config.compile,
        "world_size": world_size,
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
        "finished": None,  # set by finalize_store
    }
