"""Extraction: manifest videos -> decoded clip chunks -> batched encoder -> staged parts -> store.

Work is committed in *parts*: fixed consecutive groups of ``videos_per_part`` manifest videos. A
part is encoded as one stream of clips cut into batches of ``batch_size``, so the batches, and
therefore the numbers, depend only on the part; a resumed run recomputes unfinished parts exactly
as an uninterrupted run would have, and so does a run spread over several processes.

This module runs the extraction: it plans which parts are left (resuming a killed run or extending a
finished store), feeds each part from ``featstore.decode_stream`` through ``featstore.part_encoder``,
stages it, and finalizes the store.

Under torchrun (see ``featstore.distributed``) rank 0 prepares the output and assigns the missing
parts to ranks, balanced by duration; every rank writes only its own part files; rank 0 finalizes
(``finalize_store``, also ``featstore finalize``) once every rank is done.

One job writes a store at a time: rank 0 (or the single process) holds the store's ``StoreLock`` from
planning to the end of finalize, on behalf of all its ranks; a second writer stops with a one-line
error naming the owner.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from data_manifests.registry import resolve_dataset
from data_manifests.schema import Manifest, VideoRecord
from featstore.decode import DECODERS
from featstore.decode_stream import DecodeJob, DecodeSettings, decode_stream, one_part, resolve_workers
from featstore.device import resolve_device, resolve_precision
from featstore.distributed import Ranks, assign_parts, ranks_from_environment, video_costs
from featstore.encoders import LoadedEncoder, create_encoder, get_encoder_entry
from data_manifests.errors import FeatstoreError
from featstore.part_encoder import PartEncoder
from featstore.pixel_transform_config import PixelTransformConfig
from featstore.pixel_transforms import PixelTransform
from featstore.progress import ExtractProgress
from featstore.sampling import SamplingConfig, read_sampling_record
from featstore.store import (
    CLIP_FRAMES,
    CLIP_TIMES,
    STAGING_DIR,
    STATIC_FRAMES,
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
    pixel_transform: PixelTransformConfig = field(default_factory=PixelTransformConfig)
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
    pixel_transform = PixelTransform(config.pixel_transform, {record.video_id for record in manifest.records})
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
        if config.pixel_transform.active:  # absent = none, so stores made before pixel transforms stay current
            identity["pixel_transform"] = config.pixel_transform.identity()
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
                DecodeJob(position, str(manifest.resolve_path(record)), record)
                for index in mine
                for position, record in enumerate(units[index])
            ]
            settings = DecodeSettings(config.sampling, config.decoder)
            part_encoder = PartEncoder(encoder, device, precision, config.batch_size, pixel_transform)
            meta = {"device": str(device), "rank": ranks.rank, "world_size": ranks.world_size, "workers": workers}
            with contextlib.closing(decode_stream(jobs, settings, device, workers)) as stream, ExtractProgress(
                len(jobs), enabled=show_progress and ranks.is_main
            ) as progress:
                for index in mine:
                    results = part_encoder.run(units[index], one_part(stream, len(units[index])), progress)
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
        and store.fingerprint == manifest.fingerprint()
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
    clip_frames, clip_times = store.array(CLIP_FRAMES), store.array(CLIP_TIMES)
    static_frames = store.array(STATIC_FRAMES)
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
        "weights_hub_model": encoder.hub_model,  # the Hugging Face id and commit --weights named, if it did
        "spec": encoder.spec.to_json(),
        "preprocess": encoder.spec.preprocess().to_json(),
        "sampling": config.sampling.to_json(),
        "pixel_transform": config.pixel_transform.to_json(),
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
