"""HMDB51 from its official files: the per-class video folders and the 70/30 split files.

Accepted layouts under ``root`` (``--data-root``)::

    root/hmdb51_org/<class>/<video>.avi        videos (hmdb51_org.rar and its per-class .rar
      or root/videos/<class>/<video>.avi         files extracted); hmdb51_org/ wins if both exist
    root/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt
      or root/<class>_test_split{1,2,3}.txt      (test_train_splits.rar extracted)

Each split-file line is ``"<video file name> <id>"``: id 1 = train, 2 = test, 0 = not used in that
split (skipped). The classes are the sorted class names taken from the split file names of the
requested fold (51 in the real set); labels are 0-based in that order. HMDB51's split files carry
no actor ids, so ``subject`` is null.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord

NAME = "hmdb51"
VIDEO_DIRS = ("hmdb51_org", "videos")
SPLIT_DIR = "testTrainMulti_7030_splits"
FOLDS = (1, 2, 3)
SPLIT_IDS = {"0": None, "1": "train", "2": "test"}


def build_hmdb51(root: Path, fold: int = 1) -> Manifest:
    """The manifest of official split ``fold`` (1..3); id-0 videos of that split are left out."""
    if isinstance(fold, bool) or fold not in FOLDS:
        raise ManifestError(f"HMDB51 fold must be one of {list(FOLDS)} (the three official splits), got {fold!r}")
    root = Path(root).expanduser()
    suffix = f"_test_split{fold}.txt"
    split_files = _find_split_files(root, suffix)
    by_class = {path.name[: -len(suffix)]: path for path in split_files}
    class_names = sorted(by_class)
    records: list[VideoRecord] = []
    for label, class_name in enumerate(class_names):
        records += _read_split_file(by_class[class_name], class_name, label)
    video_dir = _video_dir(root)
    header = ManifestHeader(
        name=NAME,
        task="action",
        class_names=class_names,
        root=str(video_dir),
        description=f"HMDB51, official 70/30 split {fold} ({split_files[0].parent}); id-0 videos left out",
    )
    return Manifest(header, records, video_dir)


def _find_split_files(root: Path, suffix: str) -> list[Path]:
    nested = root / SPLIT_DIR
    split_dir = nested if nested.is_dir() else root
    files = sorted(
        p for p in split_dir.glob(f"*{suffix}")
        if p.is_file() and not p.name.startswith(".") and len(p.name) > len(suffix)
    )
    if not files:
        raise ManifestError(
            f"HMDB51 split files not found: expected {nested}/<class>{suffix} (the official "
            f"test_train_splits.rar extracted in --data-root) or {root}/<class>{suffix}"
        )
    return files


def _video_dir(root: Path) -> Path:
    """The first accepted videos folder that exists; hmdb51_org/ if none does (check_files reports it)."""
    for name in VIDEO_DIRS:
        if (root / name).is_dir():
            return (root / name).resolve()
    return (root / VIDEO_DIRS[0]).resolve()


def _read_split_file(path: Path, class_name: str, label: int) -> list[VideoRecord]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read HMDB51 split file {path}: {exc}") from exc
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in SPLIT_IDS:
            raise ManifestError(f"{path}:{number}: expected '<video file name> <0|1|2>', got {line!r}")
        split = SPLIT_IDS[parts[1]]
        if split is None:
            continue
        name = parts[0].strip()
        if "/" in name or "\\" in name:
            raise ManifestError(f"{path}:{number}: expected a bare video file name, got {name!r}")
        records.append(
            VideoRecord(
                video_id=PurePosixPath(name).stem,
                path=f"{class_name}/{name}",
                split=split,
                label=label,
                subject=None,
            )
        )
    return records
