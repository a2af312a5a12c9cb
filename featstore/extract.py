"""Extraction: manifest videos -> decoded clip chunks -> batched encoder -> staged parts -> store.

Work is committed in *parts*: fixed consecutive groups of ``videos_per_part`` manifest videos. A
part is encoded as one stream of clips cut into batches of ``batch_size``, so the batches, and
therefore the numbers, depend only on the part; a resumed run recomputes unfinished parts exactly
as an uninterrupted run would have. Decoding runs in a background thread, one part ahead at most.
"""

from __future__ import annotations

import json
import math
import platform
import queue
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from data_manifests.registry import resolve_dataset
from data_manifests.schema import Manifest, VideoRecord
from featstore.decode import DECODERS, VideoDecodeError, open_media
from featstore.device import autocast, resolve_device, resolve_precision
from featstore.encoders import LoadedEncoder, create_encoder, get_encoder_entry
from featstore.errors import FeatstoreError
from featstore.preprocess import preprocess_frames
from featstore.progress import ExtractProgress
from featstore.sampling import (
    SamplingConfig,
    clip_frame_indices,
    clip_windows,
    resample_indices,
    static_frame_indices,
)
from featstore.store import (
    STORE_DTYPES,
    Part,
    StagingArea,
    Store,
    StoreContents,
    VideoResult,
    remove_partial_writes,
    utc_now,
    write_store,
)

CLIPS_PER_CHUNK = 8  # clips decoded together at most
CHUNK_FRAME_BYTES = 64 << 20  # and at most this many bytes of decoded frames (1080p: one clip)


@dataclass
class ExtractConfig:
    model: str
    dataset: str
    out: str
    data_root: str | None = None
    fold: int = 1
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

    def __post_init__(self) -> None:
        if self.dtype not in STORE_DTYPES:
            raise FeatstoreError(f"--dtype must be one of {list(STORE_DTYPES)}, got {self.dtype!r}")
        if self.batch_size < 1:
            raise FeatstoreError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.videos_per_part < 1:
            raise FeatstoreError(f"--videos-per-part must be >= 1, got {self.videos_per_part}")
        if self.decoder not in DECODERS:
            raise FeatstoreError(f"--decoder must be one of {list(DECODERS)}, got {self.decoder!r}")

    def to_json(self) -> dict:
        record = asdict(self)
        record["sampling"] = self.sampling.to_json()
        return record


@dataclass
class ExtractResult:
    store: Path
    n_videos: int
    n_failed: int
    n_clips: int
    n_static: int
    parts_computed: int
    parts_reused: int
    seconds: float
    failures: list[dict]


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
    frames: np.ndarray  # uint8 (n_frames, H, W, 3)
    index: np.ndarray


_END = object()


def clips_per_chunk(clip_len: int, height: int, width: int) -> int:
    """Clips decoded together: up to CLIPS_PER_CHUNK, fewer when frames are large (bounded memory)."""
    return int(max(1, min(CLIPS_PER_CHUNK, CHUNK_FRAME_BYTES // max(1, clip_len * height * width * 3))))


def decode_video(manifest: Manifest, record: VideoRecord, position: int, config: ExtractConfig) -> Iterator:
    """Decode one video chunk by chunk, yielding its plan, then uint8 frames with clip indices, then
    ("done", position) or ("failed", position, plan); never the whole video at once.

    No torch work happens here: this may run in a decode thread, and torch ops in two threads at once
    oversubscribe the cores. Preprocessing happens next to the forward, on the encoder's device.
    """
    plan = _VideoPlan(position, record)
    sampling = config.sampling
    try:
        source = open_media(manifest.resolve_path(record), config.decoder, record.media)
    except VideoDecodeError as exc:
        plan.failed_reason = str(exc)
        yield ("failed", position, plan)
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
            static_t = static_frame_indices(len(timeline), sampling.static_per_video)
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
    yield ("failed", position, plan) if plan.failed_reason else ("done", position)


def decode_part(manifest: Manifest, records: list[VideoRecord], config: ExtractConfig) -> Iterator:
    for position, record in enumerate(records):
        yield from decode_video(manifest, record, position, config)


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


# ---------------------------------------------------------------------- the encode side
class _PartEncoder:
    """Consumes one part's stream, cuts it into fixed batches and routes embeddings back to videos."""

    def __init__(self, encoder: LoadedEncoder, device: torch.device, precision: torch.dtype, batch_size: int):
        self.encoder, self.device, self.precision, self.batch_size = encoder, device, precision, batch_size
        self.preprocess = encoder.spec.preprocess()
        self.forward_seconds = 0.0

    def run(self, records: list[VideoRecord], stream: Iterator, progress: ExtractProgress) -> list[VideoResult]:
        plans: dict[int, _VideoPlan] = {}
        rows: dict[tuple[int, str], list[torch.Tensor]] = {}
        pending: list[tuple[int, str, torch.Tensor]] = []
        pending_rows = 0

        def flush(limit: int | None) -> None:
            nonlocal pending, pending_rows
            while pending and (limit is None or pending_rows >= limit):
                take = self.batch_size if limit is not None else pending_rows
                take = min(take, pending_rows)
                pieces, owners, got = [], [], 0
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
                embeddings = self._forward(torch.cat(pieces))
                at = 0
                for position, kind, n in owners:
                    rows.setdefault((position, kind), []).append(embeddings[at : at + n])
                    at += n
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
            elif item[0] == "failed":
                plans[item[1]] = item[2]
        flush(None)

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
        frames = torch.from_numpy(chunk.frames).to(self.device, non_blocking=True)
        frames = preprocess_frames(frames, self.preprocess)
        return frames[torch.from_numpy(chunk.index).to(self.device)].permute(0, 2, 1, 3, 4)

    def _forward(self, clips: torch.Tensor) -> np.ndarray:
        started = time.perf_counter()
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.encoder.module(clips)
        result = out.float().cpu().numpy()
        self.forward_seconds += time.perf_counter() - started
        return result


def _gather(blocks: list | None, dim: int) -> np.ndarray:
    if not blocks:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(blocks)


# ---------------------------------------------------------------------- orchestration
def extract(config: ExtractConfig, show_progress: bool = True) -> ExtractResult:
    """Run (or resume) an extraction; returns a summary. Raises FeatstoreError on bad input."""
    started = time.perf_counter()
    out = Path(config.out)
    entry = get_encoder_entry(config.model)  # cheap checks first: unknown model, missing weights
    manifest = resolve_dataset(config.dataset, config.data_root, config.fold)
    encoder = create_encoder(entry.name, config.weights, config.seed)
    spec = encoder.spec
    if config.sampling.clip_len != spec.num_frames:
        raise FeatstoreError(
            f"model {spec.name!r} takes {spec.num_frames}-frame clips; --clip-len {config.sampling.clip_len} does not fit it"
        )
    device = resolve_device(config.device)
    precision = resolve_precision(device, config.precision)
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
    staging = StagingArea(out, spec.embed_dim, config.dtype)
    if _up_to_date(out, staging, identity, manifest, config):
        return _result(out, len(manifest.records), 0, 0, time.perf_counter() - started)
    _prepare_output(out, staging, identity, manifest, config)

    records = manifest.records
    n_parts = math.ceil(len(records) / config.videos_per_part)
    units = [records[i * config.videos_per_part : (i + 1) * config.videos_per_part] for i in range(n_parts)]
    todo, reused = [], 0
    for index, unit in enumerate(units):
        summary = staging.load_summary(index) if staging.part_file(index).is_file() else None
        valid = summary is not None and summary["video_ids"].tolist() == [r.video_id for r in unit]
        if valid and config.retry_failed and any(summary["failed_reasons"].tolist()):
            valid = False
        if valid:
            reused += 1
        else:
            todo.append(index)

    part_encoder = _PartEncoder(encoder, device, precision, config.batch_size)
    total_videos = sum(len(units[i]) for i in todo)
    with ExtractProgress(total_videos, enabled=show_progress) as progress:
        for index in todo:
            items = decode_part(manifest, units[index], config)
            # On the CPU a decode thread would steal cores from the encoder's threads (its OpenMP team
            # then waits for the slowest thread), so decoding runs inline there.
            stream = prefetched(items) if device.type != "cpu" else items
            results = part_encoder.run(units[index], stream, progress)
            staging.save_part(Part(index, results, {"device": str(device), "finished": utc_now()}))

    contents = StoreContents(
        manifest_records=records,
        attribute_names=manifest.header.attribute_names,
        attrs={
            "identity": identity,
            "config": config.to_json(),
            "provenance": _provenance(encoder, device, precision, config),
            "dataset": {
                "header": manifest.header.to_json(),
                "fingerprint": manifest.fingerprint(),
                "source": str(manifest.source) if manifest.source else None,
                "n_videos": len(records),
            },
        },
    )
    write_store(out, contents, staging, n_parts)
    staging.remove()
    return _result(out, len(records), len(todo), reused, time.perf_counter() - started)


def _result(out: Path, n_videos: int, computed: int, reused: int, seconds: float) -> ExtractResult:
    store = Store.open(out)
    return ExtractResult(
        store=out,
        n_videos=n_videos,
        n_failed=len(store.failures),
        n_clips=int(store.clip_offsets()[-1]),
        n_static=int(store.static_offsets()[-1]),
        parts_computed=computed,
        parts_reused=reused,
        seconds=seconds,
        failures=store.failures,
    )


def _up_to_date(out: Path, staging: StagingArea, identity: dict, manifest: Manifest, config: ExtractConfig) -> bool:
    """A finished store of the same settings and dataset content needs no work (unless retrying failures)."""
    if staging.exists() or not Store.is_store(out):
        return False
    store = Store.open(out)
    return (
        store.identity == identity
        and store.dataset.get("fingerprint") == manifest.fingerprint()
        and not (config.retry_failed and store.failures)
    )


def _prepare_output(out: Path, staging: StagingArea, identity: dict, manifest: Manifest, config: ExtractConfig) -> None:
    """Create, resume or refuse the output; a finished store is reopened for more work as staged parts."""
    if out.exists() and not Store.is_store(out):
        if out.is_dir() and not any(out.iterdir()):
            pass
        else:
            raise FeatstoreError(f"{out} exists and is not a featstore store; refusing to touch it")
    previous = _existing_identity(out, staging)
    if previous is not None and previous != identity:
        if not config.overwrite:
            changed = sorted(k for k in identity if previous.get(k) != identity.get(k))
            raise FeatstoreError(
                f"{out} was made with other settings ({', '.join(changed)} differ); "
                "use --overwrite to replace it or choose another --out"
            )
        shutil.rmtree(out)
        previous = None
    if previous is not None and not staging.exists():
        _reopen_complete_store(out, staging)
    if not staging.exists():
        staging.root.mkdir(parents=True, exist_ok=True)
        manifest.save(staging.manifest_file)
        tmp = staging.run_file.with_name("run.json.tmp")
        tmp.write_text(json.dumps({"identity": identity, "started": utc_now()}, indent=2))
        tmp.replace(staging.run_file)
    staging.clear_temporaries()
    remove_partial_writes(out)


def _existing_identity(out: Path, staging: StagingArea) -> dict | None:
    if staging.exists():
        return json.loads(staging.run_file.read_text())["identity"]
    if Store.is_store(out):
        return Store.open(out).identity
    return None


def _reopen_complete_store(out: Path, staging: StagingArea) -> None:
    """Turn a finished store back into staged parts so new or failed videos can be (re)done."""
    store = Store.open(out)
    identity = store.identity
    per_part = identity["videos_per_part"]
    table = store.videos()
    failed = {f["video_id"]: f["reason"] for f in store.failures}
    clip_off, static_off = store.clip_offsets(), store.static_offsets()
    clip_frames, clip_times = store.array("clips/frames"), store.array("clips/times")
    static_frames = store.array("static/frames")
    staging.root.mkdir(parents=True, exist_ok=True)
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
    tmp = staging.run_file.with_name("run.json.tmp")
    tmp.write_text(json.dumps({"identity": identity, "started": utc_now()}, indent=2))
    tmp.replace(staging.run_file)


def _provenance(encoder: LoadedEncoder, device: torch.device, precision: torch.dtype, config: ExtractConfig) -> dict:
    versions = {}
    for package in ("latent-anonymization", "torch", "numpy", "zarr", "decord", "av", "pillow"):
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
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
        "finished": utc_now(),
    }
