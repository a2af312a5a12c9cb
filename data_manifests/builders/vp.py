"""VP-HMDB51 and VP-UCF101 (Li et al., STPrivacy, ICCV 2023): video-level private-attribute labels
joined with the official HMDB51 / UCF101 manifests.

The attribute labels are the public pickles released with STPrivacy, one per dataset::

    root/hmdb51_privacy_attribute_label.pickle     (or root/annotations/..., root/VPHMDB_annotations/...)
    root/ucf101_privacy_attribute_label.pickle     (or root/annotations/..., root/VPUCF_annotations/...)

Each pickle is a dict ``video -> 5 binary labels`` (a list, tuple or numpy array of shape (5,) or
(1, 5)). The key names the video by its relative path (``brush_hair/<name>.avi``), by its file name,
by its stem, or by a split-file line (``<path> <class index>``); it is matched to the HMDB51/UCF101
record by the video's file stem, which is unique in both datasets. The five labels are, in order,
``face, skin_color, gender, nudity, relationship`` (1 = the attribute is visible/identifiable) - the
order used by public loaders of these pickles; the STPrivacy README does not restate it.

Everything else (videos folder, split files, classes, labels, ``--fold``) comes from
``build_hmdb51`` / ``build_ucf101``: ``root`` must also hold the HMDB51 / UCF101 files those
builders read. Videos of the fold without an entry in the pickle keep ``attributes: null``
(unknown); the description records how many videos are labelled.

Pickles are untrusted input: they are loaded with a data-only unpickler that refuses any global
other than the builtin containers and numpy's array/scalar reconstructors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np

from data_manifests.builders._common import first_existing_file
from data_manifests.builders._safe_pickle import load_data_pickle
from data_manifests.builders.hmdb51 import build_hmdb51
from data_manifests.builders.ucf101 import build_ucf101
from data_manifests.schema import Manifest, ManifestError, ManifestHeader

VP_ATTRIBUTE_NAMES = ("face", "skin_color", "gender", "nudity", "relationship")
_VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm")
_SPLIT_LINE = re.compile(r"^(?P<path>.+?\.(?:avi|mp4|mkv|webm))\s+\d+$", re.IGNORECASE)


def build_vp_hmdb51(root: Path, fold: int = 1) -> Manifest:
    """HMDB51 split ``fold`` with the STPrivacy attribute labels of its videos."""
    root = Path(root).expanduser()
    return _join(
        "vp-hmdb51", "VP-HMDB51", build_hmdb51, root, fold,
        _pickle_candidates(root, "hmdb51", "VPHMDB_annotations"),
    )


def build_vp_ucf101(root: Path, fold: int = 1) -> Manifest:
    """UCF101 split ``fold`` with the STPrivacy attribute labels of its videos."""
    root = Path(root).expanduser()
    return _join(
        "vp-ucf101", "VP-UCF101", build_ucf101, root, fold,
        _pickle_candidates(root, "ucf101", "VPUCF_annotations"),
    )


def _pickle_candidates(root: Path, dataset: str, annotations_folder: str) -> list[Path]:
    names = [f"{dataset}_privacy_attribute_label.pickle", f"{dataset}_privacy_attribute_label.pkl",
             f"vp_{dataset}_privacy_attribute_label.pickle", f"vp_{dataset}_privacy_attribute_label.pkl"]
    folders = [root, root / "annotations", root / annotations_folder]
    return [folder / name for folder in folders for name in names]


def _join(name: str, title: str, build_base: Callable[[Path, int], Manifest], root: Path, fold: int,
          candidates: list[Path]) -> Manifest:
    base = build_base(root, fold)  # validates the fold and the split files first
    path = first_existing_file(candidates)
    if path is None:
        raise ManifestError(
            f"{title} attribute labels not found: expected {candidates[0]} (the STPrivacy label pickle; "
            f"also looked in {candidates[0].parent / 'annotations'} and {candidates[-1].parent})"
        )
    labels = read_attribute_pickle(path)
    records = []
    labelled = 0
    for record in base.records:
        attributes = labels.get(record.video_id)
        labelled += attributes is not None
        records.append(replace(record, attributes=attributes))
    if labelled == 0:
        example = next(iter(labels))
        raise ManifestError(
            f"none of the {len(labels)} videos in {path} matches a video of {base.header.name} split {fold} "
            f"(first pickle key {example!r}; keys must name the videos by path, file name or stem)"
        )
    header = ManifestHeader(
        name=name,
        task="action",
        class_names=list(base.header.class_names),
        attribute_names=list(VP_ATTRIBUTE_NAMES),
        root=base.header.root,
        description=(
            f"{title}: {base.header.name} split {fold} with STPrivacy attribute labels from {path.name}; "
            f"{labelled} of {len(records)} videos labelled (the rest: attributes unknown)"
        ),
    )
    return Manifest(header, records, base.root_dir)


def read_attribute_pickle(path: Path) -> dict[str, list[int]]:
    """``video stem -> 5 labels (0/1)`` from an STPrivacy label pickle (loaded with the data-only unpickler)."""
    raw = load_data_pickle(path, "VP attribute label pickle")
    if not isinstance(raw, dict) or not raw:
        raise ManifestError(f"{path}: expected a non-empty dict 'video -> 5 binary labels', got {type(raw).__name__}")
    table: dict[str, list[int]] = {}
    origin: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ManifestError(f"{path}: key {key!r} is not a string naming a video")
        stem = video_stem(key)
        attributes = _attribute_vector(value, f"{path}: entry {key!r}")
        if stem in table and table[stem] != attributes:
            raise ManifestError(f"{path}: keys {origin[stem]!r} and {key!r} name the same video with different labels")
        table[stem] = attributes
        origin[stem] = key
    return table


def video_stem(key: str) -> str:
    """The video's file stem from a pickle key: a path, file name, stem or split-file line."""
    text = key.strip().replace("\\", "/")
    line = _SPLIT_LINE.match(text)
    if line:
        text = line.group("path")
    name = PurePosixPath(text).name
    stem, dot, ext = name.rpartition(".")
    return stem if dot and f".{ext.lower()}" in _VIDEO_EXTENSIONS else name


def _attribute_vector(value, where: str) -> list[int]:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{where}: labels must be 5 numbers, got {value!r}") from exc
    if array.dtype == object or array.size != len(VP_ATTRIBUTE_NAMES) or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise ManifestError(f"{where}: expected {len(VP_ATTRIBUTE_NAMES)} binary labels "
                            f"({', '.join(VP_ATTRIBUTE_NAMES)}), got {value!r}")
    flat = array.reshape(-1)
    if not np.all((flat == 0) | (flat == 1)):
        raise ManifestError(f"{where}: labels must be 0 or 1, got {flat.tolist()}")
    return [int(v) for v in flat]
