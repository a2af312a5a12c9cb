from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save

from featstore.errors import FeatstoreError
from featstore.preprocess import PreprocessSpec

WEIGHTS_DIR_ENV = "FEATSTORE_WEIGHTS_DIR"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderSpec:
    """What preprocessing reads and the store records about an encoder."""

    name: str
    family: str
    embed_dim: int
    num_frames: int
    tubelet: int
    patch: int
    resolution: int
    resize_short: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pooling: str

    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec(self.resize_short, self.resolution, self.mean, self.std)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EncoderEntry:
    name: str
    description: str
    spec: EncoderSpec  # the default configuration's spec, known without building the model
    # overrides -> (module, spec); overrides are validated by the family's config dataclass.
    build: Callable[[dict], tuple[nn.Module, EncoderSpec]]
    weights_required: bool
    default_weights_file: str | None = None


@dataclass
class LoadedEncoder:
    module: nn.Module
    spec: EncoderSpec
    weights: str  # a path, or "random-init(seed=N)"
    weights_sha256: str


_ENCODERS: dict[str, EncoderEntry] = {}


def register_encoder(entry: EncoderEntry) -> EncoderEntry:
    if entry.name in _ENCODERS:
        raise ValueError(f"encoder {entry.name!r} is already registered")
    _ENCODERS[entry.name] = entry
    return entry


def list_encoders() -> list[EncoderEntry]:
    return [_ENCODERS[name] for name in sorted(_ENCODERS)]


def get_encoder_entry(name: str) -> EncoderEntry:
    entry = _ENCODERS.get(name)
    if entry is None:
        raise FeatstoreError(f"unknown model {name!r} (available: {', '.join(sorted(_ENCODERS))})")
    return entry


def create_encoder(
    name: str,
    weights: str | Path | None = None,
    seed: int = 0,
    overrides: dict | None = None,
) -> LoadedEncoder:
    """Build a registered encoder in eval mode with its weights loaded strictly (or seeded random init)."""
    entry = get_encoder_entry(name)
    weights_path = _resolve_weights(entry, weights)
    torch.manual_seed(seed)
    module, spec = entry.build(dict(overrides or {}))
    module.eval()
    if weights_path is None:
        digest = hashlib.sha256(save({k: v.contiguous() for k, v in module.state_dict().items()})).hexdigest()
        return LoadedEncoder(module, spec, f"random-init(seed={seed})", digest)
    state = load_state_dict_file(weights_path)
    load_strict(module, state, name)
    return LoadedEncoder(module, spec, str(weights_path), file_sha256(weights_path))


def _resolve_weights(entry: EncoderEntry, weights: str | Path | None) -> Path | None:
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FeatstoreError(f"weights file not found: {path}")
        return path
    weights_dir = os.environ.get(WEIGHTS_DIR_ENV)
    if weights_dir and entry.default_weights_file:
        path = Path(weights_dir) / entry.default_weights_file
        if path.is_file():
            return path
    if entry.weights_required:
        hint = f" or put {entry.default_weights_file} in ${WEIGHTS_DIR_ENV}" if entry.default_weights_file else ""
        raise FeatstoreError(f"model {entry.name!r} needs its checkpoint: pass --weights PATH{hint}")
    return None


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read tensors without executing pickled code (safetensors, or torch.load weights_only)."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise FeatstoreError(f"cannot load {path} safely as a weights file: {str(exc).splitlines()[0][:200]}") from exc
    if not isinstance(state, dict):
        raise FeatstoreError(f"{path} does not hold a state dict")
    return state


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise FeatstoreError(
            f"weights do not match {name!r}: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )
    bad_shapes = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
    if bad_shapes:
        k = bad_shapes[0]
        raise FeatstoreError(
            f"weights do not match {name!r}: {len(bad_shapes)} tensors with other shapes "
            f"(e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)})"
        )
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
