"""UCF101 from its official files: the ``UCF-101`` video folder and the ``ucfTrainTestlist`` splits.

Accepted layouts under ``root`` (``--data-root``)::

    root/UCF-101/<ClassName>/v_<ClassName>_gXX_cYY.avi    videos (UCF101.rar extracted)
    root/ucfTrainTestlist/classInd.txt                   splits (UCF101TrainTestSplits-
    root/ucfTrainTestlist/trainlist0{1,2,3}.txt            RecognitionTask.zip extracted)
    root/ucfTrainTestlist/testlist0{1,2,3}.txt

or the same three split files directly in ``root`` (``root/classInd.txt``...). The videos folder is
always ``root/UCF-101``.

``classInd.txt`` lines are ``"1 ApplyEyeMakeup"`` (1-based); ``trainlist0N.txt`` lines are
``"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"`` (1-based class index); ``testlist0N.txt`` lines
are ``"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"``. The label always comes from the folder name;
where a line also gives an index it must agree with classInd (a line without one is accepted).
Labels in the manifest are 0-based in classInd order. The subject of a clip is its group ``gXX``:
UCF101's 25 groups are the recording sessions/actors, and the official splits keep groups apart.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord

NAME = "ucf101"
VIDEO_DIR = "UCF-101"
SPLIT_DIR = "ucfTrainTestlist"
CLASS_INDEX = "classInd.txt"
FOLDS = (1, 2, 3)

_GROUP = re.compile(r"_(g\d+)_c\d+$")


def build_ucf101(root: Path, fold: int = 1) -> Manifest:
    """The manifest of official split ``fold`` (1..3): trainlist0{fold} -> train, testlist0{fold} -> test."""
    if isinstance(fold, bool) or fold not in FOLDS:
        raise ManifestError(f"UCF101 fold must be one of {list(FOLDS)} (the three official splits), got {fold!r}")
    root = Path(root).expanduser()
    split_dir = _find_split_dir(root)
    class_names = _read_class_index(split_dir / CLASS_INDEX)
    index = {name: i for i, name in enumerate(class_names)}
    records = _read_split(split_dir / f"trainlist0{fold}.txt", "train", index)
    records += _read_split(split_dir / f"testlist0{fold}.txt", "test", index)
    video_dir = (root / VIDEO_DIR).resolve()
    header = ManifestHeader(
        name=NAME,
        task="action",
        class_names=class_names,
        root=str(video_dir),
        description=f"UCF101, official train/test split {fold} ({split_dir / CLASS_INDEX}); subject = group gXX",
    )
    return Manifest(header, records, video_dir)


def _find_split_dir(root: Path) -> Path:
    nested = root / SPLIT_DIR
    for candidate in (nested, root):
        if (candidate / CLASS_INDEX).is_file():
            return candidate
    raise ManifestError(
        f"UCF101 split files not found: expected {nested / CLASS_INDEX} (the official "
        f"UCF101TrainTestSplits-RecognitionTask.zip extracted in --data-root) or {root / CLASS_INDEX}"
    )


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines; CRLF/LF and a UTF-8 BOM are fine."""
    if not path.is_file():
        raise ManifestError(f"UCF101 split file not found: expected {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read UCF101 split file {path}: {exc}") from exc
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _read_class_index(path: Path) -> list[str]:
    """Class names in classInd order; indices must be exactly 1..N (any line order)."""
    by_index: dict[int, str] = {}
    for number, line in _read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ManifestError(f"{path}:{number}: expected '<1-based index> <ClassName>', got {line!r}")
        idx, name = int(parts[0]), parts[1]
        if idx in by_index or name in by_index.values():
            raise ManifestError(f"{path}:{number}: class index {idx} or name {name!r} appears twice")
        by_index[idx] = name
    if not by_index:
        raise ManifestError(f"{path}: no classes (expected lines like '1 ApplyEyeMakeup')")
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise ManifestError(f"{path}: class indices must be 1..{len(by_index)} without gaps, got {sorted(by_index)}")
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def _read_split(path: Path, split: str, index: dict[str, int]) -> list[VideoRecord]:
    records = []
    for number, line in _read_lines(path):
        where = f"{path}:{number}"
        parts = line.split()
        if len(parts) > 2:
            raise ManifestError(f"{where}: expected '<Class>/<file>.avi [class index]', got {line!r}")
        rel = parts[0].replace("\\", "/")
        pieces = PurePosixPath(rel).parts
        if len(pieces) != 2:
            raise ManifestError(f"{where}: expected a path '<Class>/<file>.avi', got {parts[0]!r}")
        class_name = pieces[0]
        if class_name not in index:
            raise ManifestError(f"{where}: class {class_name!r} (from {parts[0]!r}) is not in {CLASS_INDEX}")
        label = index[class_name]
        if len(parts) == 2:
            if not parts[1].isdigit():
                raise ManifestError(f"{where}: class index {parts[1]!r} is not a positive integer")
            if int(parts[1]) != label + 1:
                raise ManifestError(
                    f"{where}: class index {parts[1]} disagrees with folder {class_name!r} "
                    f"(index {label + 1} in {CLASS_INDEX})"
                )
        stem = PurePosixPath(rel).stem
        group = _GROUP.search(stem)
        records.append(
            VideoRecord(
                video_id=stem,
                path=rel,
                split=split,
                label=label,
                subject=group.group(1) if group else None,
            )
        )
    return records
