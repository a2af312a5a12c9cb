"""Run folders and checkpoints: tensors in safetensors, everything else in JSON.

A run folder holds::

    config.json               the TrainConfig
    checkpoint.safetensors    every tensor needed to resume: modules' state dicts and optimizer state
    checkpoint.json           epoch, optimizer hyper-parameters (param_groups), loss history, hashes
    aam.safetensors           the anonymizer's weights alone (what export uses; its SHA-256 is the
                              "anonymizer checkpoint hash" recorded in exported stores)

Both checkpoint files are written to temporary names and renamed, the JSON last, so an interrupted
write leaves the previous checkpoint readable.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from featstore.errors import FeatstoreError

CHECKPOINT_TENSORS = "checkpoint.safetensors"
CHECKPOINT_JSON = "checkpoint.json"
AAM_FILE = "aam.safetensors"
CONFIG_FILE = "config.json"
BASELINE_FILE = "baseline.json"  # marks a folder of `anonymize baseline` (anonymize.baselines), not a training run


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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


def save_checkpoint(run: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    info: dict) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value
    optimizer_meta = {}
    for name, optimizer in optimizers.items():
        flat, meta = flatten_optimizer(f"optim.{name}", optimizer.state_dict())
        tensors.update(flat)
        optimizer_meta[name] = meta
    _atomic_save_tensors(dict(modules["aam"].state_dict()), run / AAM_FILE)
    _atomic_save_tensors(tensors, run / CHECKPOINT_TENSORS)
    info = dict(info, optimizers=optimizer_meta, aam_sha256=sha256_file(run / AAM_FILE))
    _atomic_write_text(run / CHECKPOINT_JSON, json.dumps(info, indent=1) + "\n")


def read_checkpoint_info(run: Path) -> dict:
    path = run / CHECKPOINT_JSON
    if not path.is_file():
        raise FeatstoreError(f"{run} has no checkpoint (no {CHECKPOINT_JSON}): train first")
    return json.loads(path.read_text())


def load_checkpoint(run: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    if (run / BASELINE_FILE).is_file():
        raise FeatstoreError(f"{run} holds a fitted baseline (`anonymize baseline`), not a training run: nothing to resume")
    info = read_checkpoint_info(run)
    tensors = load_file(str(run / CHECKPOINT_TENSORS))
    for name, module in modules.items():
        head = f"module.{name}."
        module.load_state_dict({k[len(head):]: v for k, v in tensors.items() if k.startswith(head)})
    for name, optimizer in optimizers.items():
        meta = info["optimizers"].get(name)
        if meta is not None:
            optimizer.load_state_dict(unflatten_optimizer(f"optim.{name}", tensors, meta))
    return info


def load_aam_weights(run: Path) -> tuple[dict[str, torch.Tensor], str]:
    path = run / AAM_FILE
    if not path.is_file():
        raise FeatstoreError(f"{run} has no trained anonymizer ({AAM_FILE}): train first")
    return load_file(str(path)), sha256_file(path)
