"""Applying a trained AAM to every clip and static embedding of a store: an anonymized store.

The output has the source's layout (``evaluate`` and ``featstore info`` read it like any store) and
never contains the raw embeddings: ``featstore.store.write_transformed_store`` streams whole shards
through the AAM (memory bounded by one shard whatever the store's size) and copies every other array.
Its provenance gains an ``anonymizer`` entry: source store path and fingerprint, the SHA-256 of the
anonymizer weights (``aam.safetensors``), the training config, epoch and parameter counts.

A run folder of ``anonymize baseline`` (``anonymize.baselines``) loads and exports the same way: its
``LoadedAAM`` holds the fitted transform as ``module`` and the ``BaselineConfig`` as ``config``, and
the export's ``anonymizer`` entry gains ``baseline`` (method, sha256, supervised, options, fitted).

By default the export drops the private labels (``featstore.store.PRIVATE_COLUMNS``: attribute labels,
subject ids, source paths; they hold -1 and "") and records ``private_labels: "dropped"`` in the
``anonymizer`` entry: whoever receives the store gets no private label. Video ids stay, so the
protocols join the labels from the raw store (``evaluate ... --labels-from RAW``). ``keep_private_labels``
keeps them (``"kept"``), for in-house evaluation.

Where: the run, the source store and ``out`` may each be a local path or an fsspec URL. A run at a URL is
read from a temporary copy (``checkpoint.readable_run``); an ``out`` at a URL other than ``file://`` is
written to a local temporary folder and then copied there, its root ``zarr.json`` (which marks the store
complete) last, so a reader never takes a half-copied store for a whole one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from anonymize import baselines
from anonymize import checkpoint as ckpt
from anonymize.config import TrainConfig
from anonymize.model import build_aam
from evaluate.training import progress_bar
from featstore.device import resolve_device
from data_manifests.errors import FeatstoreError
from featstore.exporters import interrupted_writer, local_output, staged_output, store_to_url
from featstore.store import (PRIVATE_LABELS_DROPPED, PRIVATE_LABELS_KEPT, ROW_KINDS, Location, Store,
                             first_nonfinite_row, utc_now, write_transformed_store)



def store_fingerprint(store: Store) -> str:
    """SHA-256 over what identifies a store's content: encoder identity, dataset, finalization, shapes."""
    identity = {
        "identity": store.identity,
        "dataset_fingerprint": store.fingerprint,
        "finalized": store.finalized,
        "clips": list(store.clip_embeddings.shape),
        "static": list(store.static_embeddings.shape),
        "anonymizer": store.anonymizer.get("aam_sha256"),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class LoadedAAM:
    """A run's anonymizer, ready to apply: a trained AAM or a fitted baseline.

    ``config`` is the run's ``TrainConfig``, or for a baseline its ``BaselineConfig`` (same ``store``,
    ``seed``, ``to_json()``; ``config.aam`` gives ``architecture``, ``mode`` and ``context_window`` 0).
    ``supervised``: the anonymizer read the private attribute labels (a baseline such as ``leace`` or
    ``inlp``, or an AAM with the supervised budget); ``label`` names it for tables ("aam", "pca",
    "leace (supervised)"); ``kind`` is "aam" or "baseline".
    """

    module: torch.nn.Module
    config: TrainConfig | baselines.BaselineConfig
    sha256: str
    info: dict
    device: torch.device
    kind: str = "aam"
    supervised: bool = False
    label: str = "aam"


def load_trained_aam(run: Path, device: str = "auto") -> LoadedAAM:
    """The anonymizer of the local run folder ``run`` (for a URL: ``checkpoint.readable_run`` first)."""
    run = Path(run)
    if baselines.is_baseline_run(run):
        module, baseline, sha, info = baselines.load_baseline(run)
        resolved = resolve_device(device)
        return LoadedAAM(module.to(resolved).eval(), baseline, sha, info, resolved, kind="baseline",
                         supervised=bool(baseline.supervised), label=baseline.label)
    config = TrainConfig.load(run / ckpt.CONFIG_FILE)
    info = ckpt.read_checkpoint_info(run)
    weights, sha = ckpt.load_aam_weights(run)
    resolved = resolve_device(device)
    module = build_aam(int(info["dim"]), config.aam)
    module.load_state_dict(weights)
    module.to(resolved).eval()
    supervised = getattr(config, "budget_mode", None) == "supervised"  # the budget reads attribute labels
    return LoadedAAM(module, config, sha, info, resolved, supervised=supervised,
                     label="aam (supervised)" if supervised else "aam")


def refuse_nonfinite(out: np.ndarray, first_row: int) -> None:
    """An anonymizer's output must be finite: a NaN store would evaluate as a perfect or a broken one."""
    bad_row = first_nonfinite_row(out)
    if bad_row is not None:
        raise FeatstoreError(f"the anonymizer's output holds NaN or Inf (row {first_row + bad_row} of the rows it "
                             "transformed, clips then static): its weights or its input are broken; nothing was written")


class ClipTransform:
    """Rows -> AAM(rows), in sub-batches (the clip mode: rows are independent)."""

    def __init__(self, aam: LoadedAAM, batch_rows: int):
        self.aam = aam
        self.batch_rows = batch_rows
        self.rows = 0

    @torch.no_grad()
    def __call__(self, block: np.ndarray) -> np.ndarray:
        out = np.empty(block.shape, dtype=np.float32)
        for start in range(0, len(block), self.batch_rows):
            rows = torch.from_numpy(np.asarray(block[start : start + self.batch_rows], dtype=np.float32))
            out[start : start + len(rows)] = self.aam.module(rows.to(self.aam.device)).cpu().numpy()
        refuse_nonfinite(out, self.rows)
        self.rows += len(block)
        return out


class TemporalTransform:
    """The temporal mode: each row's output is computed from its video's clips within the receptive field.

    ``write_transformed_store`` hands over the clip array's blocks in order, then the static array's;
    a row cursor tells which rows a block holds, and the context rows (which may lie outside the block)
    are read from the source store.
    """

    def __init__(self, aam: LoadedAAM, source: Store, batch_rows: int):
        self.aam = aam
        self.batch_rows = batch_rows
        self.context = aam.config.aam.context_window
        self.parts = [(source.clip_offsets(), source.clip_embeddings), (source.static_offsets(), source.static_embeddings)]
        self.part = 0
        self.cursor = 0
        self.rows = 0

    @torch.no_grad()
    def __call__(self, block: np.ndarray) -> np.ndarray:
        while self.part < len(self.parts) and self.cursor >= self.parts[self.part][1].shape[0]:
            self.part, self.cursor = self.part + 1, 0
        if self.part >= len(self.parts):
            raise RuntimeError("the temporal export received more rows than the source store holds")
        offsets, array = self.parts[self.part]
        first = self.cursor
        rows = np.arange(first, first + len(block))
        videos = np.searchsorted(offsets, rows, side="right") - 1
        lo = max(0, first - self.context)
        hi = min(array.shape[0], first + len(block) + self.context)
        span = torch.from_numpy(np.asarray(array[lo:hi], dtype=np.float32))
        relative = np.arange(-self.context, self.context + 1)[None, :]
        out = np.empty(block.shape, dtype=np.float32)
        for start in range(0, len(rows), self.batch_rows):
            centre = rows[start : start + self.batch_rows]
            owner = videos[start : start + self.batch_rows]
            window = centre[:, None] + relative
            valid = (window >= offsets[owner][:, None]) & (window < offsets[owner + 1][:, None])
            window = np.where(valid, window, centre[:, None]) - lo
            values = span[torch.from_numpy(window)].to(self.aam.device)
            result = self.aam.module(values, torch.from_numpy(valid).to(self.aam.device))[:, self.context]
            out[start : start + len(centre)] = result.cpu().numpy()
        refuse_nonfinite(out, self.rows)
        self.cursor += len(block)
        self.rows += len(block)
        return out

    def check_complete(self) -> None:
        total = sum(array.shape[0] for _, array in self.parts)
        if self.rows != total:
            raise RuntimeError(f"the temporal export transformed {self.rows} rows of {total}")


@dataclass
class ExportResult:
    out: Path | str
    rows: int
    seconds: float
    aam_sha256: str


def where(location: str | Path) -> str:
    """How a store or run is named in records: a local folder by its absolute path, a URL as given."""
    local = local_output(location)
    return str(local.resolve()) if local is not None else str(location)


def export_store(run: str | Path, store: str | Path, out: str | Path, device: str = "auto", batch_rows: int = 4096,
                 overwrite: bool = False, keep_private_labels: bool = False,
                 show_progress: bool = False) -> ExportResult:
    """Write ``out``: ``store`` with every clip and static embedding replaced by AAM(embedding), without the
    private labels unless ``keep_private_labels`` (see the module docs).

    A local ``out`` is built in ``<out>.partial-<pid>`` and renamed when complete (``staged_output``), so an
    interrupted export leaves no ``out`` and its rerun needs no ``overwrite``; with ``overwrite`` an
    existing ``out`` is replaced only by a whole new store. An ``out`` that an interrupted export of an
    earlier version left in place is replaced without ``overwrite``. An ``out`` at another fsspec URL is
    copied there once whole (with ``overwrite``, after the old one is removed). ``show_progress``: a progress
    bar over the rows (clips, then static clips) on stderr.
    """
    if batch_rows < 1:
        raise FeatstoreError(f"batch rows must be >= 1, got {batch_rows}")
    if where(out) == where(store):
        raise FeatstoreError("--out must differ from --store (the source store is read while writing)")
    local = local_output(out)
    if local is None:
        return _export_to_url(run, store, str(out), device, batch_rows, overwrite, keep_private_labels, show_progress)
    if local.exists() and not local.is_dir():
        raise FeatstoreError(f"{out} is a file; --out names the store folder to write")
    if local.exists() and not overwrite and interrupted_writer(local) != "anonymize export":
        raise FeatstoreError(f"{out} already exists (pass --overwrite to replace it)")
    with staged_output(local) as staging:
        result = _export(run, store, staging, device, batch_rows, keep_private_labels, show_progress)
    return replace(result, out=local)


def _export_to_url(run: str | Path, store: str | Path, url: str, device: str, batch_rows: int, overwrite: bool,
                   keep_private_labels: bool, show_progress: bool) -> ExportResult:
    result = store_to_url(url, overwrite, lambda local: _export(run, store, local, device, batch_rows,
                                                                keep_private_labels, show_progress))
    return replace(result, out=url)


def _export(run: str | Path, store: str | Path, out: Path, device: str, batch_rows: int,
            keep_private_labels: bool, show_progress: bool) -> ExportResult:
    """The export itself, written to the local folder ``out`` (the staging folder)."""
    with ckpt.readable_run(run) as local_run:
        aam = load_trained_aam(local_run, device)
    source = Store.open(store)
    if source.dim != int(aam.info["dim"]):
        raise FeatstoreError(f"{store} has {source.dim}-d embeddings; the anonymizer in {run} was trained on "
                             f"{aam.info['dim']}-d ones")
    try:
        trained_on = Store.open(aam.config.store) if Location(aam.config.store).exists() else None
    except FeatstoreError:  # not reachable from here (e.g. no s3fs): the encoder check is skipped, as for a moved store
        trained_on = None
    if trained_on is not None and trained_on.identity.get("weights_sha256") != source.identity.get("weights_sha256"):
        raise FeatstoreError(f"{store} was extracted with another encoder ({source.provenance.get('encoder')}) than "
                             f"the anonymizer's training store ({trained_on.provenance.get('encoder')})")
    if source.anonymizer:
        raise FeatstoreError(f"{store} is already anonymized (by {source.anonymizer.get('run')})")
    transform = (TemporalTransform(aam, source, batch_rows) if aam.config.aam.context_window
                 else ClipTransform(aam, batch_rows))
    anonymizer = {
        "run": where(run),
        "aam_sha256": aam.sha256,
        "epoch": aam.info["epoch"],
        "parameters": aam.info.get("parameters"),
        "training_config": aam.config.to_json(),
        "source_store": where(store),
        "source_fingerprint": store_fingerprint(source),
        "created": utc_now(),
        "kind": aam.kind,
        "label": aam.label,
        "supervised": aam.supervised,
        "private_labels": PRIVATE_LABELS_KEPT if keep_private_labels else PRIVATE_LABELS_DROPPED,
    }
    if aam.kind == "baseline":
        anonymizer["baseline"] = {"method": aam.config.method, "sha256": aam.sha256, "supervised": aam.supervised,
                                  "options": aam.config.options(), "fitted": aam.config.fitted}
    attrs_update = {"provenance": dict(source.provenance, anonymizer=anonymizer)}
    started = time.perf_counter()
    total = sum(source.embeddings(kind).shape[0] for kind in ROW_KINDS)
    with progress_bar(show_progress) as progress:
        bar = progress.add_task("export", total=total, info="rows")
        write_transformed_store(source, out, transform, attrs_update, drop_private_labels=not keep_private_labels,
                                on_rows=lambda n: progress.advance(bar, n))
    if isinstance(transform, TemporalTransform):
        transform.check_complete()
    return ExportResult(out, transform.rows, time.perf_counter() - started, aam.sha256)
