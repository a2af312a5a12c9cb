"""Task heads shared by the evaluation protocols and the anonymizer's utility losses.

One registry, one checkpoint format, one rule for picking a preset:

- ``tridet``: temporal action detection (:mod:`evaluate.heads.tridet`), config :class:`TriDetConfig`.
- ``mgfn``: weakly supervised anomaly detection (:mod:`evaluate.heads.mgfn`), config :class:`MGFNConfig`.

Each head's settings (config, presets, training recipe) live torch-free in ``<head>_config``; the models are
imported when a head is built or loaded. A saved head is ``NAME.safetensors`` (the state dict, buffers
included) plus ``NAME.json``: ``{"format": "featstore-head", "head": <registry name>, "config": {...}, ...metadata}``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from data_manifests.errors import FeatstoreError
from evaluate.heads.mgfn_config import MGFNConfig
from evaluate.heads.tridet_config import TriDetConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

HEAD_FORMAT = "featstore-head"
AUTO_PRESET = "auto"
SMALL_DATA_VIDEOS = 100  # "auto" picks a head's "small" preset below this many training videos


def choose_preset(preset: str, n_train_videos: int, full_data_preset: str) -> str:
    """``preset``; for "auto" the "small" preset below ``SMALL_DATA_VIDEOS`` training videos, else
    ``full_data_preset``."""
    if preset != AUTO_PRESET:
        return preset
    return "small" if n_train_videos < SMALL_DATA_VIDEOS else full_data_preset


@dataclass(frozen=True)
class HeadEntry:
    config: type
    module: str  # where the model is defined: imported when a head is first built (torch)
    model_name: str

    @property
    def model(self) -> type[nn.Module]:
        return getattr(importlib.import_module(self.module), self.model_name)


HEADS: dict[str, HeadEntry] = {
    "tridet": HeadEntry(TriDetConfig, "evaluate.heads.tridet", "TriDet"),
    "mgfn": HeadEntry(MGFNConfig, "evaluate.heads.mgfn", "MGFN"),
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
    from safetensors.torch import save_file

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
    from safetensors.torch import load_file

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


def load_checked_head(path: str, expected: str, device: torch.device | str,
                      check_fits: Callable[[nn.Module, dict], None]) -> tuple[nn.Module, dict]:
    """A saved head a protocol evaluates instead of training one: the model (``check_fits(model, meta)`` refuses a
    head that does not fit the store) and the metrics' record of where it came from."""
    model, meta = load_head(Path(path), device, expected=expected)
    check_fits(model, meta)
    return model, {"checkpoint": path, "trained_on": meta.get("store")}


def save_trained_head(path: str | None, model: nn.Module, meta: dict, record: dict) -> None:
    """Save a head a protocol trained to ``path`` (when given) and note it in the metrics' ``record``."""
    if path is not None:
        save_head(Path(path), model, meta)
        record["saved"] = path


__all__ = ["AUTO_PRESET", "HEADS", "HEAD_FORMAT", "SMALL_DATA_VIDEOS", "build_head", "choose_preset", "list_heads",
           "load_checked_head", "load_head", "save_head", "save_trained_head"]
