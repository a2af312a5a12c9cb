"""Kinetics-400 from its official CSV annotations and the common clip file naming.

Accepted layout under ``root`` (``--data-root``; the CVDF download ``k400/``)::

    root/annotations/train.csv   val.csv   test.csv      (or the same CSVs directly in root;
                                                         val may be named validate.csv)
    root/train/<youtube_id>_<start:06d>_<end:06d>.mp4     one folder per split (val/ may be validate/)
    root/val/...   root/test/...

CSV columns (header row): ``label,youtube_id,time_start,time_end,split`` (a later ``is_cc`` column and
column order do not matter; ``label`` may be absent from a test CSV without labels). ``split`` is
``train``, ``val``/``validate`` or ``test`` and must match the file it is in. ``time_start`` and
``time_end`` are whole seconds; the clip file is ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4``.

Classes: the sorted label names of train.csv (400 for Kinetics-400); a label in val/test that train
does not have is an error. train.csv and val.csv are required, test.csv is used when present. The
CVDF replacement clips for corrupted videos are not used.
"""

from __future__ import annotations

from pathlib import Path

from data_manifests.builders._common import check_fold, first_existing_dir, read_csv_rows, require_file
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord

NAME = "kinetics400"
CSV_NAMES = {
    "train": ("train.csv", "kinetics_train.csv", "kinetics_400_train.csv"),
    "val": ("val.csv", "validate.csv", "kinetics_val.csv", "kinetics_400_val.csv"),
    "test": ("test.csv", "kinetics_test.csv", "kinetics_400_test.csv"),
}
SPLIT_VALUES = {"train": "train", "val": "val", "validate": "val", "validation": "val", "test": "test"}
VIDEO_DIRS = {"train": ("train",), "val": ("val", "validate", "valid"), "test": ("test",)}
REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end", "split")


def build_kinetics400(root: Path, fold: int = 1) -> Manifest:
    """The train/val(/test) manifest of Kinetics-400 (one official split: fold 1)."""
    check_fold("Kinetics-400", fold, (1,), "Kinetics-400 has one official train/val/test split")
    root = Path(root).expanduser().resolve()
    rows_by_split: dict[str, list[tuple[Path, int, dict[str, str]]]] = {}
    for split, names in CSV_NAMES.items():
        candidates = [folder / name for name in names for folder in (root / "annotations", root)]
        if split == "test" and not any(c.is_file() for c in candidates):
            continue
        path = require_file(candidates, f"Kinetics-400 {split} annotations",
                            "the official CSV with columns label,youtube_id,time_start,time_end,split")
        rows_by_split[split] = [(path, n, row) for n, row in read_csv_rows(path, "Kinetics-400 annotations",
                                                                              REQUIRED_COLUMNS)]
    class_names = sorted({row.get("label", "") for _, _, row in rows_by_split["train"]} - {""})
    if not class_names:
        raise ManifestError(f"{rows_by_split['train'][0][0] if rows_by_split['train'] else root}: "
                            f"the train CSV has no labelled rows")
    index = {name: i for i, name in enumerate(class_names)}
    records: list[VideoRecord] = []
    for split, rows in rows_by_split.items():
        video_dir = first_existing_dir([root / d for d in VIDEO_DIRS[split]]).name
        for path, number, row in rows:
            records.append(_record(path, number, row, split, video_dir, index))
    header = ManifestHeader(
        name=NAME,
        task="action",
        class_names=class_names,
        root=str(root),
        description=f"Kinetics-400 ({', '.join(f'{s}: {len(r)}' for s, r in rows_by_split.items())} clips)",
    )
    return Manifest(header, records, root)


def _record(path: Path, number: int, row: dict[str, str], split: str, video_dir: str,
            index: dict[str, int]) -> VideoRecord:
    where = f"{path}:{number}"
    row_split = SPLIT_VALUES.get(row["split"].lower())
    if row_split != split:
        raise ManifestError(f"{where}: split {row['split']!r} does not match the {split} annotation file")
    youtube_id = row["youtube_id"]
    if not youtube_id or "/" in youtube_id or "\\" in youtube_id:
        raise ManifestError(f"{where}: youtube_id {youtube_id!r} is not a YouTube id")
    start = _whole_seconds(row["time_start"], where, "time_start")
    end = _whole_seconds(row["time_end"], where, "time_end")
    if end <= start:
        raise ManifestError(f"{where}: time_end {end} is not after time_start {start}")
    label_name = row.get("label", "")
    label = None
    if label_name:
        if label_name not in index:
            raise ManifestError(f"{where}: label {label_name!r} is not a class of the train CSV")
        label = index[label_name]
    elif split != "test":
        raise ManifestError(f"{where}: empty label (only test rows may be unlabelled)")
    video_id = f"{youtube_id}_{start:06d}_{end:06d}"
    return VideoRecord(video_id=video_id, path=f"{video_dir}/{video_id}.mp4", split=split, label=label)


def _whole_seconds(value: str, where: str, column: str) -> int:
    try:
        seconds = float(value)
    except ValueError:
        raise ManifestError(f"{where}: {column} {value!r} is not a number") from None
    if not seconds.is_integer() or seconds < 0:
        raise ManifestError(f"{where}: {column} {value!r} is not a whole, non-negative number of seconds")
    return int(seconds)
