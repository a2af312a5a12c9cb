"""Run folders and checkpoints: tensors in safetensors, everything else in JSON.

A run folder holds::

    config.json                     the TrainConfig
    checkpoint-<epoch>.safetensors  every tensor needed to resume: modules' state dicts and optimizer state
    checkpoint.json                 epoch, optimizer hyper-parameters (param_groups), loss history, the
                                    name and SHA-256 of the tensor file it belongs to, the AAM's SHA-256
    aam.safetensors                 the anonymizer's weights alone (what export uses; its SHA-256 is the
                                    "anonymizer checkpoint hash" recorded in exported stores)

A checkpoint is one unit: ``checkpoint.json`` is the pointer, replaced atomically, and a save writes a new
tensor file under a new name before it and deletes the old one only after it. A process killed at any
point therefore leaves either the old checkpoint or the new one, never a mix; ``aam.safetensors`` (written
after the pointer) is checked against the recorded hash and rebuilt from the checkpoint on resume.
Run folders written before this layout (one ``checkpoint.safetensors``, no recorded hash) still load.

Where a run folder lives: a local path or a ``file://`` URL. A run is read (``export``, ``info``) from any
fsspec URL too, by copying the files a reader needs (``READ_FILES``) to a temporary folder first
(``readable_run``); a fitted baseline is written to one by copying its finished folder there
(``Location.upload_folder``). A training run writes a checkpoint every epoch: at a remote URL it trains in a local
temporary folder that is copied there when training ends (``writable_run``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save, save_file

from data_manifests.errors import FeatstoreError
from featstore.exporters import local_output
from featstore.hashing import file_sha256
from featstore.store import Location

CHECKPOINT_TENSORS = "checkpoint.safetensors"  # the tensor file of run folders written before per-epoch names
CHECKPOINT_JSON = "checkpoint.json"
AAM_FILE = "aam.safetensors"
CONFIG_FILE = "config.json"
BASELINE_FILE = "baseline.json"  # marks a folder of `anonymize baseline` (anonymize.baselines), not a training run
READ_FILES = (CONFIG_FILE, CHECKPOINT_JSON, AAM_FILE, BASELINE_FILE)  # what export and info read of a run


@contextmanager
def writable_run(run: str | Path, resume: bool) -> Iterator[Path]:
    """The folder a training run writes as it goes: a local path (or a ``file://`` URL's) as it is. A run at
    another fsspec URL is trained in a temporary local folder (the run copied into it first when it is
    resumed) and copied to the URL, ``config.json`` last, when the block ends, also early (an error, Ctrl-C): the
    checkpoints are written whole, so what was uploaded resumes. A run killed outright (SIGKILL, power) leaves the
    URL as it was: train long runs in a local folder."""
    local = local_output(run)
    if local is not None:
        yield local
        return
    location = Location(str(run))
    if resume and not location.is_file(CONFIG_FILE):
        raise FeatstoreError(f"nothing to resume at {run} (no {CONFIG_FILE}); drop --resume to start a run")
    if not resume and location.exists() and not location.is_empty_folder():
        raise FeatstoreError(f"{run} already holds files: pass --resume to continue a run there, or choose another "
                             "--run")
    with tempfile.TemporaryDirectory(prefix="anonymize-train-") as folder:
        if resume:
            location.download(Path(folder), location.file_names())
        try:
            yield Path(folder)
        finally:  # also when training stops early (an error, Ctrl-C): its checkpoints are whole, so it resumes
            if (Path(folder) / CONFIG_FILE).is_file():
                saved = json.loads((Path(folder) / CONFIG_FILE).read_text())
                atomic_write_text(Path(folder) / CONFIG_FILE, json.dumps({**saved, "out": str(run)}, indent=2) + "\n")
                location.upload_folder(Path(folder), last=CONFIG_FILE)


@contextmanager
def readable_run(run: str | Path) -> Iterator[Path]:
    """The run folder ``run`` to read from: a local path (or ``file://`` URL) as it is; the ``READ_FILES``
    of a run at another fsspec URL, copied into a temporary folder that lasts as long as the block."""
    local = local_output(run)
    if local is not None:
        yield local
        return
    location = Location(str(run))
    if not location.exists():
        raise FeatstoreError(f"no run folder at {run}")
    with tempfile.TemporaryDirectory(prefix="anonymize-run-") as folder:
        location.download(Path(folder), read_files(location))
        yield Path(folder)


def read_files(location: Location) -> list[str]:
    """The ``READ_FILES`` a run folder at ``location`` holds: what export, info and the trade-off read of it."""
    return [name for name in READ_FILES if location.is_file(name)]


def _atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode())


def flatten_optimizer(prefix: str, state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (safetensors) and JSON (param groups, scalars)."""
    tensors, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    head = f"{prefix}.state."
    for name, value in tensors.items():
        if name.startswith(head):
            index, key = name[len(head):].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def checkpoint_tensors_name(epoch: int, suffix: str = "") -> str:
    return f"checkpoint-{epoch:06d}{suffix}.safetensors"


def checkpoint_tensors_path(run: Path) -> Path:
    """The tensor file the run's current ``checkpoint.json`` points at."""
    return Path(run) / read_checkpoint_info(run).get("tensors_file", CHECKPOINT_TENSORS)


def _state_bytes(module: torch.nn.Module) -> bytes:
    return save({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()})


def save_checkpoint(run: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    info: dict, suffix: str = "") -> None:
    """Write the checkpoint of ``info["epoch"]`` as one unit (see the module docstring for the order); ``suffix``
    names a second checkpoint of the same epoch (its tensor file must not replace the one the pointer names)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value
    optimizer_meta = {}
    for name, optimizer in optimizers.items():
        flat, meta = flatten_optimizer(f"optim.{name}", optimizer.state_dict())
        tensors.update(flat)
        optimizer_meta[name] = meta
    tensors_name = checkpoint_tensors_name(int(info["epoch"]), suffix)
    _atomic_save_tensors(tensors, run / tensors_name)
    aam_bytes = _state_bytes(modules["aam"])
    info = dict(info, optimizers=optimizer_meta, tensors_file=tensors_name,
                tensors_sha256=file_sha256(run / tensors_name), aam_sha256=hashlib.sha256(aam_bytes).hexdigest())
    atomic_write_text(run / CHECKPOINT_JSON, json.dumps(info, indent=1) + "\n")
    _atomic_write_bytes(run / AAM_FILE, aam_bytes)
    _remove_stale_tensor_files(run, keep=tensors_name)


def _remove_stale_tensor_files(run: Path, keep: str) -> None:
    """Tensor files no pointer refers to: older epochs, and temporaries of an interrupted save."""
    for path in run.iterdir():
        name = path.name
        stale_tensors = name.startswith("checkpoint") and name.endswith(".safetensors") and name != keep
        if stale_tensors or name.endswith(".tmp"):
            path.unlink()


def read_checkpoint_info(run: Path) -> dict:
    path = run / CHECKPOINT_JSON
    if not path.is_file():
        raise FeatstoreError(f"{run} has no checkpoint (no {CHECKPOINT_JSON}): train first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise FeatstoreError(f"{path} is not valid JSON ({error.msg}): the run folder is damaged") from None


def load_checkpoint(run: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Load the checkpoint ``checkpoint.json`` points at, after checking its tensor file's hash."""
    if (run / BASELINE_FILE).is_file():
        raise FeatstoreError(f"{run} holds a fitted baseline (`anonymize baseline`), not a training run: nothing to resume")
    info = read_checkpoint_info(run)
    path = checkpoint_tensors_path(run)
    if not path.is_file():
        raise FeatstoreError(f"{path} is missing: {CHECKPOINT_JSON} points at it; the run folder is damaged")
    recorded = info.get("tensors_sha256")
    if recorded is not None and file_sha256(path) != recorded:
        raise FeatstoreError(f"{path} does not match the SHA-256 in {CHECKPOINT_JSON}: the checkpoint is damaged")
    try:
        tensors = load_file(str(path))
    except SafetensorError as error:
        raise FeatstoreError(f"{path} is not a readable safetensors file ({error}): the checkpoint is damaged") from None
    for name, module in modules.items():
        head = f"module.{name}."
        module.load_state_dict({k[len(head):]: v for k, v in tensors.items() if k.startswith(head)})
    for name, optimizer in optimizers.items():
        meta = info["optimizers"].get(name)
        if meta is not None:
            optimizer.load_state_dict(unflatten_optimizer(f"optim.{name}", tensors, meta))
    _restore_aam_file(run, modules["aam"], info["aam_sha256"])
    _remove_stale_tensor_files(run, keep=path.name)
    return info


def _restore_aam_file(run: Path, aam: torch.nn.Module, recorded: str) -> None:
    """Rewrite ``aam.safetensors`` from the loaded checkpoint when a save was cut off before it."""
    path = run / AAM_FILE
    if path.is_file() and file_sha256(path) == recorded:
        return
    aam_bytes = _state_bytes(aam)
    if hashlib.sha256(aam_bytes).hexdigest() != recorded:
        raise FeatstoreError(f"the anonymizer in {run} does not match the hash in {CHECKPOINT_JSON}: the run folder is damaged")
    _atomic_write_bytes(path, aam_bytes)


def load_aam_weights(run: Path) -> tuple[dict[str, torch.Tensor], str]:
    path = run / AAM_FILE
    if not path.is_file():
        raise FeatstoreError(f"{run} has no trained anonymizer ({AAM_FILE}): train first")
    sha = file_sha256(path)
    recorded = read_checkpoint_info(run).get("aam_sha256") if (run / CHECKPOINT_JSON).is_file() else None
    if recorded is not None and sha != recorded:
        raise FeatstoreError(f"{path} does not match the hash in {CHECKPOINT_JSON} (a save was interrupted): "
                             "run `anonymize train --resume` to finish it")
    return load_file(str(path)), sha
