"""VISPR (Orekondy et al., ICCV 2017) from its official per-image annotation JSON files.

Accepted layout under ``root`` (``--data-root``, the extracted VISPR folder)::

    root/annotations/train2017/<id>.json     one JSON per image (or root/train2017/<id>.json)
    root/annotations/val2017/<id>.json
    root/annotations/test2017/<id>.json
    root/images/train2017/<id>.jpg           wherever the JSON's "image_path" points

Each JSON is ``{"id": "2017_10001234", "image_path": "images/train2017/2017_10001234.jpg",
"labels": ["a0_safe", "a17_color", ...]}``; ``image_path`` is relative to the dataset root (as in the
authors' data layer). Splits: train2017 -> train, val2017 -> val, test2017 -> test (val is optional:
the privacy protocol only uses train and test).

Attributes: the 7-attribute subset of the privacy-preservation protocol (Wu et al. 2020; Dave et al.
2022), in this order: a17_color, a4_gender, a9_face_complete, a10_face_partial, a12_semi_nudity,
a64_rel_personal, a65_rel_social; an attribute is 1 when the image's label list contains it. The
official VISPR label is ``a65_rel_social`` (the paper's table truncates it to "a65_rel_soci"; both
spellings are accepted in label lists). Records are images (``media: "image"``), task ``static``.
"""

from __future__ import annotations

from pathlib import Path

from data_manifests.builders._common import check_fold, load_json, safe_relative_path
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord

NAME = "vispr"
ATTRIBUTE_NAMES = (
    "a17_color",
    "a4_gender",
    "a9_face_complete",
    "a10_face_partial",
    "a12_semi_nudity",
    "a64_rel_personal",
    "a65_rel_social",
)
# Spellings accepted in an image's label list for each attribute.
LABEL_SPELLINGS = {name: (name,) for name in ATTRIBUTE_NAMES} | {"a65_rel_social": ("a65_rel_social", "a65_rel_soci")}
SPLIT_FOLDERS = (("train", "train2017"), ("val", "val2017"), ("test", "test2017"))
REQUIRED_SPLITS = ("train", "test")


def build_vispr(root: Path, fold: int = 1) -> Manifest:
    """The image manifest of the official train/val/test split (VISPR has one split: fold 1)."""
    check_fold("VISPR", fold, (1,), "VISPR has one official train/val/test split")
    root = Path(root).expanduser().resolve()
    records: list[VideoRecord] = []
    used_folders = []
    for split, folder in SPLIT_FOLDERS:
        annotation_dir = _annotation_dir(root, folder)
        if annotation_dir is None:
            if split in REQUIRED_SPLITS:
                raise ManifestError(
                    f"VISPR {folder} annotations not found: expected {root / 'annotations' / folder}/<id>.json "
                    f"(or {root / folder}/<id>.json)"
                )
            continue
        used_folders.append(folder)
        for path in sorted(annotation_dir.glob("*.json")):
            records.append(_read_annotation(path, split))
    header = ManifestHeader(
        name=NAME,
        task="static",
        class_names=[],
        attribute_names=list(ATTRIBUTE_NAMES),
        root=str(root),
        description=f"VISPR images ({', '.join(used_folders)}), 7 private attributes of the privacy protocol",
    )
    return Manifest(header, records, root)


def _annotation_dir(root: Path, folder: str) -> Path | None:
    for candidate in (root / "annotations" / folder, root / folder):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    return None


def _read_annotation(path: Path, split: str) -> VideoRecord:
    anno = load_json(path, "VISPR annotation")
    if not isinstance(anno, dict):
        raise ManifestError(f"{path}: expected a JSON object with 'id', 'image_path' and 'labels'")
    image_id = anno.get("id", path.stem)
    image_path = anno.get("image_path")
    labels = anno.get("labels")
    if not isinstance(image_id, str) or not image_id:
        raise ManifestError(f"{path}: 'id' must be a non-empty string, got {image_id!r}")
    if not isinstance(image_path, str):
        raise ManifestError(f"{path}: 'image_path' must be a string (the image path relative to the VISPR folder)")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ManifestError(f"{path}: 'labels' must be a list of attribute ids like 'a17_color'")
    present = set(labels)
    attributes = [int(any(s in present for s in LABEL_SPELLINGS[name])) for name in ATTRIBUTE_NAMES]
    return VideoRecord(
        video_id=image_id,
        path=safe_relative_path(image_path, f"{path}: image_path"),
        split=split,
        label=None,
        attributes=attributes,
        subject=None,
        n_frames=1,
        media="image",
    )
