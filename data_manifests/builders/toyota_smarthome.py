"""Toyota Smarthome (trimmed; Das et al., ICCV 2019), cross-subject protocol, from its video file names.

Accepted layout under ``root`` (``--data-root``): the clips anywhere below ``root`` (the official
archive extracts them to ``root/mp4/``), named ``<Activity>_p<subject>_r<repetition>_v<video>_c<camera>.mp4``,
e.g. ``Cook.Cleandishes_p02_r00_v02_c03.mp4``.

- Classes: the 31 activities of the cross-subject (CS) protocol, in alphabetical order; clips of
  other activities (not part of the CS protocol) are skipped and counted in the description.
- subject = ``pNN`` (two digits, e.g. ``p03``), video_id = the file stem.
- Split (``--fold 1``, the only one): the official cross-subject protocol trains on subjects
  3, 4, 6, 7, 9, 12, 13, 15, 17, 19 and 25 and tests on the remaining 7 (2, 10, 11, 14, 16, 18, 20).

Gender is not part of the dataset; the bias protocol reads a user-provided ``subject,gender`` table
with ``data_manifests.builders.gender.read_gender_table`` (subjects written as ``p03``).
"""

from __future__ import annotations

import re
from pathlib import Path

from data_manifests.builders._common import check_fold, relative_posix, scan_videos
from data_manifests.schema import Manifest, ManifestError, ManifestHeader, VideoRecord

NAME = "toyota-smarthome"
CROSS_SUBJECT_TRAIN = frozenset({3, 4, 6, 7, 9, 12, 13, 15, 17, 19, 25})
CS_CLASSES = tuple(sorted((
    "Cook.Cleandishes", "Cook.Cleanup", "Cook.Cut", "Cook.Stir", "Cook.Usestove", "Cutbread",
    "Drink.Frombottle", "Drink.Fromcan", "Drink.Fromcup", "Drink.Fromglass", "Eat.Attable", "Eat.Snack",
    "Enter", "Getup", "Laydown", "Leave", "Makecoffee.Pourgrains", "Makecoffee.Pourwater",
    "Maketea.Boilwater", "Maketea.Insertteabag", "Pour.Frombottle", "Pour.Fromcan", "Pour.Fromkettle",
    "Readbook", "Sitdown", "Takepills", "Uselaptop", "Usetablet", "Usetelephone", "Walk", "WatchTV",
)))
_NAME = re.compile(r"^(?P<activity>[^_]+)_p(?P<subject>\d+)_r(?P<rep>\d+)_v(?P<video>\d+)_c(?P<camera>\d+)$")


def build_toyota_smarthome(root: Path, fold: int = 1) -> Manifest:
    """The cross-subject manifest of all Toyota Smarthome clips below ``root``."""
    check_fold("Toyota Smarthome", fold, (1,), "1 = the cross-subject protocol")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ManifestError(
            f"Toyota Smarthome folder not found: expected {root} (holding mp4/<Activity>_pXX_rYY_vZZ_cWW.mp4)"
        )
    index = {name: i for i, name in enumerate(CS_CLASSES)}
    records: list[VideoRecord] = []
    other_activities = 0
    for path in scan_videos(root):
        match = _NAME.match(path.stem)
        if match is None:
            continue
        label = index.get(match["activity"])
        if label is None:
            other_activities += 1
            continue
        subject = int(match["subject"])
        records.append(VideoRecord(
            video_id=path.stem,
            path=relative_posix(path, root),
            split="train" if subject in CROSS_SUBJECT_TRAIN else "test",
            label=label,
            subject=f"p{subject:02d}",
        ))
    if not records:
        raise ManifestError(
            f"no Toyota Smarthome clips found below {root}: expected files named like "
            f"Cook.Cleandishes_p02_r00_v02_c03.mp4 (e.g. in {root / 'mp4'})"
        )
    header = ManifestHeader(
        name=NAME,
        task="action",
        class_names=list(CS_CLASSES),
        root=str(root),
        description=(
            "Toyota Smarthome, cross-subject protocol (train subjects 3,4,6,7,9,12,13,15,17,19,25); subject = pNN"
            + (f"; {other_activities} clips of activities outside the 31 CS classes skipped"
               if other_activities else "")
        ),
    )
    return Manifest(header, records, root)
