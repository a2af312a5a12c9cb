"""Dataset names users type (``--dataset NAME``) and how each resolves to a manifest.

A name is either a registered dataset (built-in synthetic parts, or a public dataset whose builder
reads the official annotation files under ``--data-root``) or a path to a manifest ``.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from data_manifests.schema import Manifest, ManifestError

DEFAULT_SYNTH_ROOT = Path("data/synth")


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str
    # (data_root, fold) -> Manifest; fold selects the official split where a dataset has several.
    build: Callable[[Path, int], Manifest]
    default_root: Path | None = None


_DATASETS: dict[str, DatasetEntry] = {}
_BUILTINS_REGISTERED = False


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    if entry.name in _DATASETS:
        raise ValueError(f"dataset {entry.name!r} is already registered")
    _DATASETS[entry.name] = entry
    return entry


def list_datasets() -> list[DatasetEntry]:
    _register_builtins()
    return [_DATASETS[name] for name in sorted(_DATASETS)]


def resolve_dataset(name_or_path: str, data_root: str | Path | None = None, fold: int = 1) -> Manifest:
    """Turn ``--dataset`` (+ ``--data-root``) into a validated manifest whose files all exist."""
    _register_builtins()
    if name_or_path.endswith(".jsonl") or Path(name_or_path).is_file():
        manifest = Manifest.load(name_or_path)
    else:
        entry = _DATASETS.get(name_or_path)
        if entry is None:
            known = ", ".join(sorted(_DATASETS))
            raise ManifestError(f"unknown dataset {name_or_path!r} (known: {known}; or pass a manifest .jsonl path)")
        root = Path(data_root) if data_root is not None else entry.default_root
        if root is None:
            raise ManifestError(f"dataset {entry.name!r} needs --data-root pointing at its files")
        manifest = entry.build(root, fold)
    manifest.check_files()
    return manifest


def _synthetic_builder(part: str) -> Callable[[Path, int], Manifest]:
    def build(root: Path, fold: int) -> Manifest:
        from featstore.synth import SynthConfig, generate_synthetic, manifest_path

        path = manifest_path(root, part)
        if not path.is_file():
            generate_synthetic(root, SynthConfig())
        return Manifest.load(path)

    return build


def _ucf101(root: Path, fold: int) -> Manifest:
    from data_manifests.builders.ucf101 import build_ucf101

    return build_ucf101(root, fold)


def _hmdb51(root: Path, fold: int) -> Manifest:
    from data_manifests.builders.hmdb51 import build_hmdb51

    return build_hmdb51(root, fold)


def _register_builtins() -> None:
    global _BUILTINS_REGISTERED
    if _BUILTINS_REGISTERED:
        return
    _BUILTINS_REGISTERED = True
    synthetic_parts = {
        "synthetic": "built-in synthetic trimmed action clips (train/test), generated on first use",
        "synthetic-tad": "built-in synthetic untrimmed videos with annotated action segments (TAD)",
        "synthetic-ad": "built-in synthetic normal/anomalous untrimmed videos with anomalous intervals (AD)",
        "synthetic-images": "built-in synthetic still images with private-attribute labels (static privacy)",
    }
    for name, description in synthetic_parts.items():
        register_dataset(DatasetEntry(name, description, _synthetic_builder(name), DEFAULT_SYNTH_ROOT))
    register_dataset(DatasetEntry("ucf101", "UCF101 (classInd.txt + trainlist/testlist 01-03); --fold 1..3", _ucf101))
    register_dataset(DatasetEntry("hmdb51", "HMDB51 (official split files); --fold 1..3", _hmdb51))
