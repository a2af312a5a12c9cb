"""UCF-Crime (Sultani et al., CVPR 2018) weakly-supervised anomaly detection from its official lists.

Accepted layout under ``root`` (``--data-root``; the extracted ``UCF_Crimes`` folder or its parent)::

    root/Anomaly_Detection_splits/Anomaly_Train.txt      (or root/Anomaly_Train.txt)
    root/Anomaly_Detection_splits/Anomaly_Test.txt       (or root/Anomaly_Test.txt)
    root/Temporal_Anomaly_Annotation_for_Testing_Videos.txt   (or Temporal_Anomaly_Annotation.txt,
        in root, root/Anomaly_Detection_splits, or root/Temporal_Anomaly_Annotation_For_Testing_Videos/Txt_formate)
    root/Videos/<Class>/<name>.mp4                       (or root/videos/, or the class folders in root)

with ``root/UCF_Crimes/...`` accepted for all of them.

- Anomaly_Train.txt / Anomaly_Test.txt: one ``<Folder>/<name>.mp4`` per line (e.g.
  ``Abuse/Abuse001_x264.mp4``, ``Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4``).
- Temporal annotation: ``<name>.mp4 <Class> <start1> <end1> <start2> <end2>`` per test video, FRAME
  numbers, ``-1`` for an absent interval; class ``Normal`` for normal videos. The numbers are 1-based
  and inclusive (the authors' MATLAB evaluation sets ``GT(start:end) = 1``).

Records: task ``ad``, classes ``["normal", "anomaly"]``; label 1 for an anomalous video (train: its
folder is not a normal-video folder; test: its annotated class is not ``Normal``, which must agree
with the list's folder). Test videos get their anomalous intervals as segments ``[start_s, end_s, 1]``:
UCF-Crime videos are 30 fps, so frames ``start..end`` (1-based, inclusive) become
``[(start - 1) / 30, end / 30]`` seconds (exactly the frames' time span; multiply by 30 to get the
0-based half-open frame range back). ``fps`` stays null (the extractor probes each video).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from data_manifests.builders._common import check_fold, first_existing_dir, read_lines, require_file
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, Segment, VideoRecord

NAME = "ucf-crime"
CLASS_NAMES = ["normal", "anomaly"]
ANNOTATION_FPS = 30.0
NORMAL_FOLDERS = ("Training_Normal_Videos_Anomaly", "Testing_Normal_Videos_Anomaly", "Normal_Videos_event")
TEMPORAL_NAMES = ("Temporal_Anomaly_Annotation_for_Testing_Videos.txt", "Temporal_Anomaly_Annotation.txt")


def build_ucf_crime(root: Path, fold: int = 1) -> Manifest:
    """The UCF-Crime AD manifest: 1,610 train videos (video labels), 290 test videos (intervals)."""
    check_fold("UCF-Crime", fold, (1,), "UCF-Crime has one official train/test split")
    root = Path(root).expanduser().resolve()
    bases = [root, root / "UCF_Crimes"]
    split_dirs = [d for b in bases for d in (b / "Anomaly_Detection_splits", b)]
    train_list = require_file([d / "Anomaly_Train.txt" for d in split_dirs], "UCF-Crime training list")
    test_list = require_file([d / "Anomaly_Test.txt" for d in split_dirs], "UCF-Crime test list")
    temporal_dirs = [d for b in bases for d in (b, b / "Anomaly_Detection_splits",
                                                b / "Temporal_Anomaly_Annotation_For_Testing_Videos" / "Txt_formate",
                                                b / "Txt_formate")]
    temporal = require_file([d / n for n in TEMPORAL_NAMES for d in temporal_dirs],
                            "UCF-Crime temporal annotation of the test videos")
    video_dir = first_existing_dir([b / d for b in bases for d in ("Videos", "videos")] + [root]).resolve()
    intervals = _read_temporal(temporal)
    records = [_train_record(train_list, n, line) for n, line in read_lines(train_list, "UCF-Crime training list")]
    for number, line in read_lines(test_list, "UCF-Crime test list"):
        records.append(_test_record(test_list, number, line, intervals, temporal))
    header = ManifestHeader(
        name=NAME,
        task="ad",
        class_names=list(CLASS_NAMES),
        root=str(video_dir),
        description=(
            "UCF-Crime: Anomaly_Train.txt -> train (video labels), Anomaly_Test.txt -> test; anomalous intervals "
            "converted from 1-based inclusive frames to seconds at the dataset's 30 fps"
        ),
    )
    return Manifest(header, records, video_dir)


def _list_entry(path: Path, number: int, line: str) -> tuple[str, str]:
    """(folder, file name) of a list line ``<Folder>/<name>.mp4``."""
    parts = PurePosixPath(line.replace("\\", "/")).parts
    if len(line.split()) != 1 or len(parts) != 2 or not parts[1].lower().endswith((".mp4", ".avi")):
        raise ManifestError(f"{path}:{number}: expected '<Folder>/<video>.mp4', got {line!r}")
    return parts[0], parts[1]


def _is_normal_folder(folder: str) -> bool:
    return folder in NORMAL_FOLDERS or folder.lower().startswith(("training_normal", "testing_normal", "normal"))


def _train_record(path: Path, number: int, line: str) -> VideoRecord:
    folder, name = _list_entry(path, number, line)
    return VideoRecord(
        video_id=PurePosixPath(name).stem, path=f"{folder}/{name}", split="train",
        label=0 if _is_normal_folder(folder) else 1,
    )


def _test_record(path: Path, number: int, line: str, intervals: dict, temporal: Path) -> VideoRecord:
    folder, name = _list_entry(path, number, line)
    if name not in intervals:
        raise ManifestError(f"{path}:{number}: test video {name!r} has no line in {temporal}")
    anomalous, segments, annotation_line = intervals[name]
    if anomalous == _is_normal_folder(folder):
        raise ManifestError(
            f"{path}:{number}: {name!r} is listed under '{folder}' but {temporal.name}:{annotation_line} "
            f"marks it {'anomalous' if anomalous else 'Normal'}"
        )
    return VideoRecord(
        video_id=PurePosixPath(name).stem, path=f"{folder}/{name}", split="test",
        label=int(anomalous), segments=segments,
    )


def _read_temporal(path: Path) -> dict[str, tuple[bool, list[Segment], int]]:
    """``video file name -> (anomalous, segments in seconds, line number)``."""
    table: dict[str, tuple[bool, list[Segment], int]] = {}
    for number, line in read_lines(path, "UCF-Crime temporal annotation"):
        where = f"{path}:{number}"
        fields = line.split()
        if len(fields) != 6:
            raise ManifestError(
                f"{where}: expected '<video>.mp4 <Class> <start1> <end1> <start2> <end2>', got {line!r}"
            )
        name, klass = fields[0], fields[1]
        try:
            frames = [int(v) for v in fields[2:]]
        except ValueError:
            raise ManifestError(f"{where}: frame numbers must be integers (-1 for none), got {fields[2:]}") from None
        segments = []
        for start, end in ((frames[0], frames[1]), (frames[2], frames[3])):
            if start == -1 and end == -1:
                continue
            if start < 0 or end < max(start, 1):
                raise ManifestError(f"{where}: interval {start}..{end} is not a frame range (use -1 -1 for none)")
            # 1-based inclusive frames -> seconds; a start of 0 (0-based writing) is kept at 0.
            segments.append(Segment(max(start - 1, 0) / ANNOTATION_FPS, end / ANNOTATION_FPS, 1))
        anomalous = klass.lower() != "normal"
        if anomalous and not segments:
            raise ManifestError(f"{where}: class {klass!r} is anomalous but no interval is given")
        if not anomalous and segments:
            raise ManifestError(f"{where}: a Normal video must have -1 for all four frame numbers")
        if name in table:
            raise ManifestError(f"{where}: {name!r} is annotated twice (first on line {table[name][2]})")
        table[name] = (anomalous, segments, number)
    return table
