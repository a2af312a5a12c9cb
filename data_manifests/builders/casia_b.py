"""CASIA-B gait videos (Yu et al., ICPR 2006) for the gait-retrieval privacy probe.

Accepted layouts under ``root`` (``--data-root``), searched recursively:

    root/.../001-nm-01-090.avi          flat: <subject>-<condition>-<sequence>-<view>.<ext>
    root/.../001/nm-01/090.avi          folders: <subject>/<condition>-<sequence>/<view>.<ext>

subject 001-124, condition ``nm`` (normal walk, sequences 01-06), ``bg`` (with a bag, 01-02) or
``cl`` (in a coat, 01-02), view 000-180. video_id = ``001-nm-01-090`` in both layouts.

Records: subject = the three-digit id; label = the subject's index in the sorted subject list (the
identity that retrieval must recover; class names = subject ids); task ``action``.

The walk order is encoded in ``split`` (gallery = "train", probe = "test"):

- ``--fold 1`` (default, the paper's protocol): gallery = the first four normal walks nm-01..nm-04,
  probe = the last two normal walks nm-05 and nm-06; bg/cl walks are left out (counted in the
  description).
- ``--fold 2`` (the common full CASIA-B protocol): same gallery; probe = nm-05, nm-06 and all bg and
  cl walks.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_manifests.builders._common import check_fold, relative_posix, scan_videos
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord

NAME = "casia-b"
GALLERY_NM_SEQUENCES = frozenset({1, 2, 3, 4})
FOLDS = {1: "normal walks only", 2: "normal, bag and coat walks"}
_FLAT = re.compile(r"^(?P<subject>\d{3})-(?P<condition>nm|bg|cl)-(?P<sequence>\d{2})-(?P<view>\d{3})$", re.IGNORECASE)
_WALK_DIR = re.compile(r"^(?P<condition>nm|bg|cl)-(?P<sequence>\d{2})$", re.IGNORECASE)
_THREE_DIGITS = re.compile(r"^\d{3}$")


def parse_casia_path(rel_parts: tuple[str, ...]) -> tuple[str, str, int, str] | None:
    """(subject, condition, sequence, view) from a path's parts (flat name or folder layout), or None."""
    stem = rel_parts[-1].rsplit(".", 1)[0]
    flat = _FLAT.match(stem)
    if flat:
        return flat["subject"], flat["condition"].lower(), int(flat["sequence"]), flat["view"]
    if len(rel_parts) >= 3 and _THREE_DIGITS.match(stem) and _THREE_DIGITS.match(rel_parts[-3]):
        walk = _WALK_DIR.match(rel_parts[-2])
        if walk:
            return rel_parts[-3], walk["condition"].lower(), int(walk["sequence"]), stem
    return None


def build_casia_b(root: Path, fold: int = 1) -> Manifest:
    """Gallery ("train") / probe ("test") manifest of the CASIA-B videos below ``root``."""
    check_fold("CASIA-B", fold, tuple(FOLDS), "1 = normal walks only, 2 = probes also with bag and coat")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ManifestError(f"CASIA-B folder not found: expected {root} (holding videos like 001-nm-01-090.avi)")
    found = []
    left_out = 0
    for path in scan_videos(root):
        rel = path.relative_to(root)
        parsed = parse_casia_path(rel.parts)
        if parsed is None:
            continue
        subject, condition, sequence, view = parsed
        if condition == "nm":
            split = "train" if sequence in GALLERY_NM_SEQUENCES else "test"
        elif fold == 2:
            split = "test"
        else:
            left_out += 1
            continue
        found.append((f"{subject}-{condition}-{sequence:02d}-{view}", relative_posix(path, root), split, subject))
    if not found:
        raise ManifestError(
            f"no CASIA-B videos found below {root}: expected files named like 001-nm-01-090.avi "
            f"or 001/nm-01/090.avi"
        )
    subjects = sorted({subject for *_, subject in found})
    index = {subject: i for i, subject in enumerate(subjects)}
    records = [
        VideoRecord(video_id=video_id, path=rel, split=split, label=index[subject], subject=subject)
        for video_id, rel, split, subject in found
    ]
    header = ManifestHeader(
        name=NAME,
        task="action",
        class_names=subjects,
        root=str(root),
        description=(
            f"CASIA-B gait, {FOLDS[fold]}: split train = gallery (nm-01..04), test = probe "
            f"({'nm-05/06' if fold == 1 else 'nm-05/06, bg, cl'}); label/subject = subject id"
            + (f"; {left_out} bg/cl videos left out" if left_out else "")
        ),
    )
    return Manifest(header, records, root)
