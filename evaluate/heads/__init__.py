"""Task heads shared by the evaluation protocols and the anonymizer's utility losses.

One registry, one checkpoint format:

- ``tridet``: temporal action detection (:mod:`evaluate.heads.tridet`), config :class:`TriDetConfig`.
- ``mgfn``: weakly supervised anomaly detection (:mod:`evaluate.heads.mgfn`), config :class:`MGFNConfig`.

A saved head is ``NAME.safetensors`` (the state dict, buffers included) plus ``NAME.json``:
``{"format": "featstore-head", "head": <registry name>, "config": {...}, ...metadata}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from evaluate.heads.mgfn import MGFN, MGFNConfig
from evaluate.heads.tridet import TriDet, TriDetConfig
from data_manifests.errors import FeatstoreError

HEAD_FORMAT = "featstore-head"


@dataclass(frozen=True)
class HeadEntry:
    model: Callable[..., nn.Module]
    config: type


HEADS: dict[str, HeadEntry] = {
    "tridet": HeadEntry(TriDet, TriDetConfig),
    "mgfn": HeadEntry(MGFN, MGFNConfig),
}


def list_heads() -> list[str]:
    return sorted(HEADS)


def build_head(name: str, config) -> nn.Module:
    if name not in HEADS:
        raise FeatstoreError(f"unknown head {name!r} (known: {list_heads()})")
    if not isinstance(config, HEADS[name].config):
        raise TypeError(f"head {name!r} needs a {HEADS[name].config.__name__}, got {type(config).__name__}")
    return HEADS[name].model(config)


def head_name_of(model: nn.Module) -> str:
    for name, entry in HEADS.items():
        if isinstance(model, entry.model):
            return name
    raise TypeError(f"{type(model).__name__} is not a registered head")


def save_head(path: str | Path, model: nn.Module, meta: dict | None = None) -> Path:
    """Write ``path`` (.safetensors) and its .json description; both atomically."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise FeatstoreError(f"a head file must end in .safetensors, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)
    document = {"format": HEAD_FORMAT, "head": head_name_of(model), "config": model.config.to_json(), **(meta or {})}
    meta_path = path.with_suffix(".json")
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    tmp_meta.write_text(json.dumps(document, indent=2) + "\n")
    tmp_meta.replace(meta_path)
    return path


def load_head(path: str | Path, device: torch.device | str = "cpu", expected: str | None = None) -> tuple[nn.Module, dict]:
    """(model in eval mode, the .json description); ``expected`` = the registry name it must be."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise FeatstoreError(f"no saved head at {path} (need {path.name} and {meta_path.name})")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise FeatstoreError(f"{meta_path} is not valid JSON: {exc}") from exc
    name = meta.get("head")
    if meta.get("format") != HEAD_FORMAT or name not in HEADS:
        raise FeatstoreError(f"{meta_path} does not describe a saved head (format {meta.get('format')!r}, head {name!r})")
    if expected is not None and name != expected:
        raise FeatstoreError(f"{path} holds a {name!r} head, not a {expected!r} head")
    model = build_head(name, HEADS[name].config.from_json(meta["config"]))
    state = load_file(str(path))
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        raise FeatstoreError(f"{path}: weights do not match its config (missing {sorted(missing)[:3]}, "
                             f"unexpected {sorted(unexpected)[:3]})")
    model.load_state_dict(state)
    return model.to(device).eval(), meta


__all__ = ["HEADS", "HEAD_FORMAT", "MGFN", "MGFNConfig", "TriDet", "TriDetConfig", "build_head", "list_heads",
           "load_head", "save_head"]
