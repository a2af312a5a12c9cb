"""NTU RGB+D 60 (Shahroudy et al., CVPR 2016) from its RGB video file names.

Accepted layout under ``root`` (``--data-root``): the RGB videos anywhere below ``root``
(``root/nturgb+d_rgb/S001C001P001R001A001_rgb.avi`` as extracted from the official archives).
Each name is ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer, replication, action) followed
by ``_rgb`` and the extension. Only NTU RGB+D 60 samples are kept: setups S001-S017 and actions
A001-A060 (NTU RGB+D 120 files in the same folder are skipped and counted in the description).

- label = action - 1, class names = the 60 official action names (the dataset README's list);
- subject = the performer ``Pppp`` (e.g. ``P003``), video_id = ``SsssCcccPpppRrrrAaaa``;
- ``--fold 1`` = cross-subject: performers 1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27,
  28, 31, 34, 35, 38 train, the other 20 test (the training-subject list of the NTU RGB+D paper,
  Sec. 4.1 "Cross-Subject Evaluation", repeated in the official dataset pages);
  ``--fold 2`` = cross-view: cameras 2 and 3 train, camera 1 test (same paper, "Cross-View").

Gender is not part of the dataset. The gender-bias protocol reads a user-provided table with
``read_gender_table(path)`` (CSV ``subject,gender`` with subjects written as ``P001``); building the
NTU-Bias-F/M subsets is the evaluate package's job.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_manifests.builders._common import check_fold, relative_posix, scan_videos
from data_manifests.builders.gender import read_gender_table
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord

__all__ = ["build_ntu60", "read_gender_table", "NTU60_CLASSES", "CROSS_SUBJECT_TRAIN", "parse_ntu_name"]

NAME = "ntu60"
CROSS_SUBJECT_TRAIN = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
CROSS_VIEW_TRAIN_CAMERAS = frozenset({2, 3})
MAX_SETUP, MAX_ACTION = 17, 60
FOLDS = {1: "cross-subject", 2: "cross-view"}
_NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})(?:_rgb)?$", re.IGNORECASE)

NTU60_CLASSES = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger",
    "taking a selfie", "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together", "cross hands in front (say stop)",
    "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
)


def parse_ntu_name(stem: str) -> dict[str, int] | None:
    """``{"setup", "camera", "performer", "replication", "action"}`` of an NTU file stem, or None."""
    match = _NAME.match(stem)
    if match is None:
        return None
    keys = ("setup", "camera", "performer", "replication", "action")
    return dict(zip(keys, (int(g) for g in match.groups())))


def build_ntu60(root: Path, fold: int = 1) -> Manifest:
    """All NTU RGB+D 60 RGB videos below ``root``; fold 1 cross-subject, fold 2 cross-view."""
    check_fold("NTU RGB+D 60", fold, tuple(FOLDS), "1 = cross-subject, 2 = cross-view")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ManifestError(f"NTU RGB+D 60 folder not found: expected {root} (holding nturgb+d_rgb/*.avi)")
    records: list[VideoRecord] = []
    skipped_ntu120 = 0
    for path in scan_videos(root):
        parts = parse_ntu_name(path.stem)
        if parts is None:
            continue
        if not (1 <= parts["setup"] <= MAX_SETUP and 1 <= parts["action"] <= MAX_ACTION):
            skipped_ntu120 += 1
            continue
        if fold == 1:
            split = "train" if parts["performer"] in CROSS_SUBJECT_TRAIN else "test"
        else:
            split = "train" if parts["camera"] in CROSS_VIEW_TRAIN_CAMERAS else "test"
        records.append(VideoRecord(
            video_id=path.stem[:20].upper(),
            path=relative_posix(path, root),
            split=split,
            label=parts["action"] - 1,
            subject=f"P{parts['performer']:03d}",
        ))
    if not records:
        raise ManifestError(
            f"no NTU RGB+D 60 videos found below {root}: expected files named like "
            f"S001C001P001R001A001_rgb.avi (e.g. in {root / 'nturgb+d_rgb'})"
        )
    header = ManifestHeader(
        name=NAME,
        task="action",
        class_names=list(NTU60_CLASSES),
        root=str(root),
        description=(
            f"NTU RGB+D 60 RGB videos, {FOLDS[fold]} split; subject = performer Pppp"
            + (f"; {skipped_ntu120} NTU RGB+D 120 files skipped" if skipped_ntu120 else "")
        ),
    )
    return Manifest(header, records, root)
