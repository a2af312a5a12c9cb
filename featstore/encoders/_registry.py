from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import lzma
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import load_file, save

from data_manifests.errors import FeatstoreError
from featstore.hashing import file_sha256
from featstore.hf_cache import HubSnapshot, cached_snapshot, parse_model_id
from featstore.preprocess import PreprocessSpec

WEIGHTS_DIR_ENV = "FEATSTORE_WEIGHTS_DIR"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# What $FEATSTORE_WEIGHTS_DIR/<model name><suffix> may be called, besides the entry's official file name.
WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".pt", ".pth.tar", ".bin", "")
# Files a weights directory (e.g. a Hugging Face `save_pretrained` folder) may hold, in order of preference.
DIRECTORY_FALLBACKS = ("pytorch_model.bin", "model.pth", "model.pt")
# Compressed checkpoints, told by their first bytes: (name, opener) for those Python decompresses itself.
DECOMPRESSORS = {b"\x1f\x8b": ("gzip", gzip.open), b"BZh": ("bzip2", bz2.open), b"\xfd7zXZ\x00": ("xz", lzma.open)}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


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


def encoder_spec(
    name: str,
    family: str,
    *,
    embed_dim: int,
    num_frames: int,
    resolution: int,
    resize_short: int,
    pooling: str,
    tubelet: int = 1,
    patch: int = 1,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> EncoderSpec:
    """An encoder's spec, with what most share as defaults: ImageNet mean/std, no tubelets or patches (a CNN)."""
    return EncoderSpec(name=name, family=family, embed_dim=embed_dim, num_frames=num_frames, tubelet=tubelet,
                       patch=patch, resolution=resolution, resize_short=resize_short, mean=mean, std=std,
                       pooling=pooling)


def imagenet_eval_resize(crop: int) -> int:
    """The ImageNet evaluation convention: resize the short side to crop * 256 / 224 (rounded), then centre crop."""
    return round(crop * 256 / 224)


def replace_fields(config, overrides: dict, model: str):
    """The config dataclass ``config`` with ``overrides``; an unknown field is one line naming the known ones."""
    try:
        return replace(config, **overrides)
    except TypeError as exc:
        known = ", ".join(f.name for f in fields(config))
        raise FeatstoreError(f"{model}: bad override ({exc}); known fields: {known}") from exc


def require_positive_integers(config, names: tuple[str, ...], model: str = "") -> None:
    """Each named field of ``config`` a positive int (a bool is not one), or one line naming the first that is not."""
    prefix = f"{model}: " if model else ""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FeatstoreError(f"{prefix}{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ConvertedWeights:
    """A checkpoint mapped onto our module's key names, and what its layout says about the model."""

    state: dict[str, torch.Tensor]
    layout: str  # which official key layout was recognized (named in reports)
    # Config fields the layout fixes, e.g. a pretrain checkpoint has a final norm instead of fc_norm.
    # Explicit user overrides win over these.
    implied_overrides: dict = field(default_factory=dict)


# (the loaded checkpoint, possibly nested; the path it came from) -> our key layout
Converter = Callable[[dict, Path], ConvertedWeights]


def native_layout(checkpoint: dict, source: Path) -> ConvertedWeights:
    """The default converter: the file already uses this project's module names."""
    return ConvertedWeights(dict(checkpoint), "native")


@dataclass(frozen=True)
class EncoderEntry:
    name: str
    description: str
    spec: EncoderSpec  # the default configuration's spec, known without building the model
    # overrides -> (module, spec); overrides are validated by the family's config dataclass.
    build: Callable[[dict], tuple[nn.Module, EncoderSpec]]
    weights_required: bool
    default_weights_file: str | None = None
    convert: Converter = native_layout
    layouts: tuple[str, ...] = ("native (this project's module names)",)  # what convert accepts, for reports
    # weights shipped inside the package (used when neither --weights nor $FEATSTORE_WEIGHTS_DIR gives a file)
    bundled_weights: Path | None = None


@dataclass
class LoadedEncoder:
    module: nn.Module
    spec: EncoderSpec
    weights: str  # a path, or "random-init(seed=N)"
    weights_sha256: str
    layout: str = "random-init"  # the key layout the weights were read in
    # {"repo_id", "revision", "commit"} when the weights were named by a Hugging Face model id
    hub_model: dict | None = None


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
    torch_compile: bool = False,
) -> LoadedEncoder:
    """Build a registered encoder in eval mode with its weights loaded strictly (or seeded random init).

    With weights, the file is read first (without running pickled code), the family's converter maps its
    key layout onto our module names and says which config the layout implies (explicit ``overrides``
    win), then the model is built and loaded with zero missing and zero unexpected keys.
    ``torch_compile`` compiles the module in place (``nn.Module.compile``); the first batches are slower.
    """
    entry = get_encoder_entry(name)
    weights_path, hub_snapshot = _resolve_weights(entry, weights)
    overrides = dict(overrides or {})
    if weights_path is None:
        torch.manual_seed(seed)
        module, spec = entry.build(overrides)
        module.eval()
        digest = hashlib.sha256(save({k: v.contiguous() for k, v in module.state_dict().items()})).hexdigest()
        loaded = LoadedEncoder(module, spec, f"random-init(seed={seed})", digest)
    else:
        checkpoint = load_weights(weights_path)
        try:
            converted = entry.convert(checkpoint, weights_path)
        except FeatstoreError as exc:
            raise _another_models_checkpoint(exc, checkpoint, weights_path, entry) from exc
        torch.manual_seed(seed)
        module, spec = entry.build({**converted.implied_overrides, **overrides})
        module.eval()
        try:
            load_strict(module, converted.state, name, converted.layout, entry.layouts)
        except FeatstoreError as exc:
            raise _another_models_checkpoint(exc, checkpoint, weights_path, entry) from exc
        loaded = LoadedEncoder(module, spec, str(weights_path), weights_sha256(weights_path), converted.layout,
                               None if hub_snapshot is None else hub_snapshot.to_json())
    if torch_compile:
        loaded.module.compile()
    return loaded


def _layout_keys(keys) -> frozenset[str]:
    """Key names with their numeric parts (block indices) blanked: the layout, whatever the depth."""
    return frozenset(re.sub(r"(?<=\.)\d+(?=\.)", "#", key) for key in keys)


def models_reading(checkpoint: dict, source: Path) -> dict[str, list[EncoderEntry]]:
    """The registered models whose converter reads this checkpoint into their own key names (sizes aside),
    grouped by the layout the converter recognized: {layout: [entries]}."""
    found: dict[str, list[EncoderEntry]] = {}
    for entry in list_encoders():
        try:
            converted = entry.convert(checkpoint, source)
            with torch.device("meta"):  # key names only: nothing is allocated
                module, _ = entry.build(dict(converted.implied_overrides))
        except FeatstoreError:  # not this family's layout
            continue
        if _layout_keys(converted.state) == _layout_keys(module.state_dict()):
            found.setdefault(converted.layout, []).append(entry)
    return found


def _another_models_checkpoint(error: FeatstoreError, checkpoint: dict, source: Path,
                               entry: EncoderEntry) -> FeatstoreError:
    """The report for weights ``entry`` cannot load: the layout they really have when it is another model's."""
    found = models_reading(checkpoint, source)
    readers = [reader for readers in found.values() for reader in readers]
    if not readers or entry in readers:
        return error  # unknown, or this model's own layout (a partial file, another size): the report says which
    families = " / ".join(dict.fromkeys(reader.spec.family for reader in readers))
    return FeatstoreError(
        f"weights do not match {entry.name!r}: {source} looks like a checkpoint of {families}, not of "
        f"{entry.spec.family} (read as layout {'; '.join(found)} by {', '.join(reader.name for reader in readers)}); "
        f"pass one of those as --model"
    )


def _resolve_weights(entry: EncoderEntry, weights: str | Path | None) -> tuple[Path | None, HubSnapshot | None]:
    """The weights file or folder to load (None: random init), and the cached Hugging Face snapshot it is."""
    if weights is not None:
        path = Path(weights)
        if path.exists():
            return path, None
        if parse_model_id(str(weights)) is None:
            raise FeatstoreError(f"weights file not found: {path}")
        snapshot = cached_snapshot(str(weights))  # an org/name[@revision] id: its folder in the local cache
        return snapshot.path, snapshot
    weights_dir = os.environ.get(WEIGHTS_DIR_ENV)
    if weights_dir:
        names = ([entry.default_weights_file] if entry.default_weights_file else [])
        names += [entry.name + suffix for suffix in WEIGHTS_SUFFIXES]
        for candidate in names:
            path = Path(weights_dir) / candidate
            if path.is_file() or (path.is_dir() and any(path.iterdir())):
                return path, None
    if entry.bundled_weights is not None:
        if not entry.bundled_weights.is_file():
            raise FeatstoreError(f"model {entry.name!r}: its bundled weights {entry.bundled_weights} are missing "
                                 f"(reinstall the package, or pass --weights PATH)")
        return entry.bundled_weights, None
    if entry.weights_required:
        official = f"{entry.default_weights_file} or " if entry.default_weights_file else ""
        raise FeatstoreError(
            f"model {entry.name!r} needs its checkpoint: pass --weights PATH, or put {official}"
            f"{entry.name}.safetensors/.pth in ${WEIGHTS_DIR_ENV}"
        )
    return None, None


def weights_files(path: Path) -> list[Path]:
    """The file(s) a weights path stands for: itself, or a directory's safetensors shards / single file."""
    if path.is_file():
        return [path]
    shards = sorted(path.glob("*.safetensors"))
    if shards:
        return shards
    for name in DIRECTORY_FALLBACKS:
        if (path / name).is_file():
            return [path / name]
    raise FeatstoreError(f"{path} holds no weights (*.safetensors, {', '.join(DIRECTORY_FALLBACKS)})")


def load_weights(path: Path) -> dict:
    """A weights file or directory -> its checkpoint dict (safetensors shards are merged)."""
    checkpoint: dict = {}
    for file in weights_files(path):
        checkpoint.update(load_state_dict_file(file))
    return checkpoint


def _decompressed(path: Path) -> bytes | None:
    """A gzip/bzip2/xz-compressed file's content (in memory); None for a file that is not compressed."""
    if path.suffix == ".safetensors":  # its first bytes are a header length, which may look like a magic number
        return None
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(ZSTD_MAGIC):
        raise FeatstoreError(f"{path} is zstd-compressed: decompress it first (zstd -d)")
    for magic, (compression, opener) in DECOMPRESSORS.items():
        if head.startswith(magic):
            try:
                with opener(path, "rb") as handle:
                    return handle.read()
            except (OSError, EOFError, lzma.LZMAError) as exc:
                raise FeatstoreError(f"cannot decompress {path} ({compression}): {exc}") from exc
    return None


def load_state_dict_file(path: Path) -> dict:
    """Read a checkpoint without executing pickled code (safetensors, or torch.load weights_only).

    A gzip/bzip2/xz-compressed file is decompressed first ('w.safetensors.gz' holds safetensors).
    The result may be a training checkpoint (nested dicts, numbers); family converters unwrap it.
    """
    content = _decompressed(path)
    name = path.name if content is None else path.stem  # the name without the compression suffix
    if name.endswith(".safetensors"):
        try:
            return load_file(str(path)) if content is None else load_safetensors_bytes(content)
        except (SafetensorError, OSError) as exc:
            raise FeatstoreError(f"cannot read {path} as safetensors: {str(exc).splitlines()[0][:200]}") from exc
    if content is None:
        with open(path, "rb") as handle:
            head = handle.read(2)
    else:
        head = content[:2]
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):  # torch's zip format / a legacy pickle
        raise FeatstoreError(f"{path} is not a weights file (neither safetensors, a torch zip archive nor a pickle): "
                             "check --weights")
    try:
        # argparse.Namespace holds the training arguments some official checkpoints carry ('args');
        # rebuilding it only sets attributes, so it is allowed; anything else unknown is refused.
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(str(path) if content is None else io.BytesIO(content), map_location="cpu",
                               weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise FeatstoreError(f"cannot load {path} safely as a weights file: {_load_failure(exc)}") from exc
    if not isinstance(state, dict):
        raise FeatstoreError(f"{path} does not hold a state dict")
    return state


def _load_failure(exc: Exception) -> str:
    """The informative line of a torch.load failure (its first line is generic and suggests unsafe loading)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    marker = next((i for i, line in enumerate(lines) if "WeightsUnpickler error" in line), None)
    if marker is not None:
        detail = lines[marker].split("WeightsUnpickler error:", 1)[1].strip() or (lines[marker + 1:] or ["?"])[0]
        return (f"it is not a plain tensor file ({detail[:160]}); pickled code is never run here, so convert it to "
                f"safetensors where you trust it")
    return (lines[0] if lines else type(exc).__name__)[:200]


def load_strict(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    name: str,
    layout: str = "native",
    accepted_layouts: tuple[str, ...] = (),
) -> None:
    """Load with zero missing and zero unexpected keys; a mismatch is reported in one readable line.

    A module may define ``fit_checkpoint(state) -> state`` to adapt tensors whose size legitimately
    differs (a position table made for another input grid is interpolated).
    """
    fit = getattr(module, "fit_checkpoint", None)
    if fit is not None:
        state = fit(state)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    accepted = f"; accepted layouts: {'; '.join(accepted_layouts)}" if accepted_layouts else ""
    if missing or unexpected:
        raise FeatstoreError(
            f"weights do not match {name!r} (read as layout: {layout}): {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]}){accepted}"
        )
    bad_shapes = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
    if bad_shapes:
        k = bad_shapes[0]
        raise FeatstoreError(
            f"weights do not match {name!r} (read as layout: {layout}): {len(bad_shapes)} tensors with other "
            f"shapes (e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)}); "
            f"is it another model size?{accepted}"
        )
    # Half-precision checkpoints are cast to the module's dtype here.
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def weights_sha256(path: Path) -> str:
    """SHA-256 of the weights file; for a sharded directory, of its sorted 'name digest' lines."""
    files = weights_files(path)
    if len(files) == 1:
        return file_sha256(files[0])
    lines = "".join(f"{file.name} {file_sha256(file)}\n" for file in files)
    return hashlib.sha256(lines.encode()).hexdigest()
