"""Dataset names users type (``--dataset NAME``) and how each resolves to a manifest.

A name is either a registered dataset (built-in synthetic parts, or a public dataset whose builder
reads the official annotation files under ``--data-root``) or a path to a manifest ``.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from data_manifests.builders._common import check_fold
from data_manifests.errors import FeatstoreError
from data_manifests.schema import Manifest, ManifestError

DEFAULT_SYNTH_ROOT = Path("data/synth")
# The same four parts in the other styles (data_manifests.synth.STYLES): other colours, textures, sizes, speeds;
# style -> (default root, what the data is for)
VARIANT_SYNTH_ROOT = Path("data/synth-variant")
OTHER_SYNTH_STYLES = {
    "variant": (VARIANT_SYNTH_ROOT, "other colours, textures, sizes, speeds; nothing is tuned on it"),
    "dev": (Path("data/synth-dev"), "a third look, for tuning next to the default style"),
}


def synth_preset_of_root(root: Path) -> str | None:
    """The style preset whose default root ``root`` is (the registry reads only that preset's data there), or
    None for any other folder."""
    defaults = {"default": DEFAULT_SYNTH_ROOT, **{style: folder for style, (folder, _) in OTHER_SYNTH_STYLES.items()}}
    return next((style for style, folder in defaults.items() if Path(root).resolve() == folder.resolve()), None)


def refuse_other_data_in_preset_folder(root: Path, settings, option: str) -> None:
    """One line (``FeatstoreError``) when ``root`` is a preset's default folder and ``settings`` (a SynthConfig)
    are not that preset: the data would be written there, then refused on the next ``--dataset synthetic*``."""
    from data_manifests.synth import part_name, preset_config

    preset = synth_preset_of_root(root)
    if preset is None:
        return
    expected, chosen = preset_config(preset).to_json(), settings.to_json()
    differing = [name for name in sorted(set(expected) | set(chosen)) if chosen.get(name) != expected.get(name)]
    if differing:
        raise FeatstoreError(f"{option} {root} is the folder of the {preset!r} preset (--dataset "
                             f"{part_name('synthetic', preset)}), which reads only that preset's data there, and "
                             f"these settings differ from it ({', '.join(differing)}): pass another {option}, "
                             f"e.g. {option} {root}-custom")


DEFAULT_FOLD = 1  # the official split used when --fold is not given; a manifest file holds exactly one


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


def resolve_dataset(name_or_path: str, data_root: str | Path | None = None, fold: int = DEFAULT_FOLD, *,
                    allow_outside_root: bool = False) -> Manifest:
    """Turn ``--dataset`` (+ ``--data-root``, ``--fold``) into a validated manifest whose files all exist.

    Record paths that resolve (symlinks followed) outside the manifest's root are refused here, before
    any work, unless ``allow_outside_root``.
    """
    _register_builtins()
    if name_or_path.endswith(".jsonl") or Path(name_or_path).is_file():
        if fold != DEFAULT_FOLD:
            raise ManifestError(f"--fold {fold} does not apply to a manifest file: {name_or_path} is one fold "
                                "(write one manifest per fold and pass it as --dataset)")
        manifest = Manifest.load(name_or_path)
    else:
        entry = _DATASETS.get(name_or_path)
        if entry is None:
            known = ", ".join(sorted(_DATASETS))
            raise ManifestError(f"unknown dataset {name_or_path!r} (known: {known}; or pass a manifest .jsonl path)")
        root = Path(data_root) if data_root is not None else entry.default_root
        if root is None:
            raise ManifestError(f"dataset {entry.name!r} needs --data-root pointing at its files")
        if entry.default_root is None and not root.is_dir():
            # a public dataset reads existing files; only the synthetic parts create their root
            raise ManifestError(f"--data-root {root} is not a folder (dataset {entry.name!r} reads its files there)")
        manifest = entry.build(root, fold)
    if not allow_outside_root:
        manifest.check_paths_inside_root()
    manifest.check_files()
    return manifest


def write_manifest(name_or_path: str, out: str | Path, data_root: str | Path | None = None, fold: int = DEFAULT_FOLD,
                   *, overwrite: bool = False, allow_outside_root: bool = False) -> Path:
    """Write the manifest ``--dataset`` resolves to (the one ``featstore extract`` reads) to ``out`` (JSONL).

    ``out`` is refused if it is a folder, or an existing file unless ``overwrite``; it is written
    atomically (temp file + rename), with its root rewritten relative to ``out``.
    """
    out = Path(out)
    if out.is_dir():
        raise ManifestError(f"--out {out} is a folder; give a file name such as {out / 'manifest.jsonl'}")
    if out.exists() and not overwrite:
        raise ManifestError(f"--out {out} already exists; pass --overwrite to replace it")
    manifest = resolve_dataset(name_or_path, data_root, fold, allow_outside_root=allow_outside_root)
    return manifest.save(out)


def _synthetic_builder(part: str, style: str = "default") -> Callable[[Path, int], Manifest]:
    """A synthetic part in one style preset; generated (with the preset's seed) if its manifest is absent.

    At the default root, which this builder fills itself, the data must have been generated with the preset
    as it is now: a root left by a version with other settings is refused rather than read as the preset.
    Another ``--data-root`` holds what its maker chose (``featstore synth --config``, the demo's seeds).
    """

    def build(root: Path, fold: int) -> Manifest:
        from data_manifests.synth import generate_synthetic, manifest_path, part_name, preset_config

        expected = part_name(part, style)
        check_fold(expected, fold, (DEFAULT_FOLD,), "the synthetic dataset has one train/test split")
        path = manifest_path(root, part)
        if not path.is_file():
            generate_synthetic(root, preset_config(style))
        elif synth_preset_of_root(root) == style:
            _check_preset_root(root, style, expected, path)
        manifest = Manifest.load(path)
        if manifest.header.name != expected:
            found = manifest.header.name
            use = f"--dataset {found} or " if found in _DATASETS else ""
            raise ManifestError(f"{root} holds the synthetic dataset {found!r}, not {expected!r}: pass "
                                f"{use}--dataset {path}, or another --data-root")
        return manifest

    return build


SHOWN_DIFFERENCES = 3  # differing settings a stale-root error names; the rest are counted


def _check_preset_root(root: Path, style: str, name: str, manifest: Path) -> None:
    """Refuse a default root whose ``synth_config.json`` is not the style preset's (or is missing)."""
    from data_manifests.synth import preset_config, saved_config_differences

    differences = saved_config_differences(root, preset_config(style))
    if differences == []:
        return
    if differences is None:
        found = "has no synth_config.json (made by an old version), so its settings are unknown"
    else:
        more = len(differences) - SHOWN_DIFFERENCES
        shown = "; ".join(differences[:SHOWN_DIFFERENCES]) + (f"; {more} more" if more > 0 else "")
        found = f"was generated with other settings than the {style!r} preset: {shown}"
    style_option = "" if style == "default" else f" --style {style}"
    raise ManifestError(f"{root} {found}; remove that folder ({name!r} generates it again on first use) or "
                        f"regenerate it with `featstore synth --out {root}{style_option}`; to use such data as it is, "
                        f"pass --dataset {manifest}")


def _ucf101(root: Path, fold: int) -> Manifest:
    from data_manifests.builders.ucf101 import build_ucf101

    return build_ucf101(root, fold)


def _hmdb51(root: Path, fold: int) -> Manifest:
    from data_manifests.builders.hmdb51 import build_hmdb51

    return build_hmdb51(root, fold)


def _lazy_builder(module: str, function: str) -> Callable[[Path, int], Manifest]:
    """A builder that imports ``data_manifests.builders.<module>`` only when the dataset is used."""

    def build(root: Path, fold: int) -> Manifest:
        from importlib import import_module

        return getattr(import_module(f"data_manifests.builders.{module}"), function)(root, fold)

    build.__qualname__ = f"{module}.{function}"
    return build


# name users type -> (builder module, function, one-line description)
_PUBLIC_DATASETS = {
    "vispr": ("vispr", "build_vispr", "VISPR images (annotations/{train,val,test}2017/*.json), 7 private attributes"),
    "vp-hmdb51": ("vp", "build_vp_hmdb51",
                  "HMDB51 + STPrivacy attribute labels (hmdb51_privacy_attribute_label.pickle); --fold 1..3"),
    "vp-ucf101": ("vp", "build_vp_ucf101",
                  "UCF101 + STPrivacy attribute labels (ucf101_privacy_attribute_label.pickle); --fold 1..3"),
    "pa-hmdb51": ("pa_hmdb51", "build_pa_hmdb51",
                  "PA-HMDB51 (PrivacyAttributes/*.json + HMDB51 split files), 5 attributes; --fold 1..3"),
    "ntu60": ("ntu60", "build_ntu60", "NTU RGB+D 60 RGB videos; --fold 1 cross-subject, 2 cross-view"),
    "toyota-smarthome": ("toyota_smarthome", "build_toyota_smarthome",
                         "Toyota Smarthome clips, 31 classes, cross-subject protocol"),
    "casia-b": ("casia_b", "build_casia_b",
                "CASIA-B gait videos: gallery nm-01..04 (train) / probe nm-05,06 (test); --fold 2 adds bg/cl probes"),
    "kinetics400": ("kinetics400", "build_kinetics400",
                    "Kinetics-400 (annotations/{train,val,test}.csv + split folders)"),
    "thumos14": ("thumos14", "build_thumos14",
                 "THUMOS14 TAD (ActionFormer/OpenTAD JSON or official annotation/*.txt): "
                 "validation -> train, test -> test"),
    "ucf-crime": ("ucf_crime", "build_ucf_crime",
                  "UCF-Crime AD (Anomaly_Train/Test.txt + temporal annotation of the test videos)"),
}


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
    for style, (root, role) in OTHER_SYNTH_STYLES.items():
        for part in synthetic_parts:
            register_dataset(DatasetEntry(part.replace("synthetic", f"synthetic-{style}", 1),
                                          f"{part} in the '{style}' style ({role}), generated on first use",
                                          _synthetic_builder(part, style), root))
    register_dataset(DatasetEntry("ucf101", "UCF101 (classInd.txt + trainlist/testlist 01-03); --fold 1..3", _ucf101))
    register_dataset(DatasetEntry("hmdb51", "HMDB51 (official split files); --fold 1..3", _hmdb51))
    for name, (module, function, description) in _PUBLIC_DATASETS.items():
        register_dataset(DatasetEntry(name, description, _lazy_builder(module, function)))
