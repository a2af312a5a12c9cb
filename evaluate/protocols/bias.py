"""Perceived-gender bias of action recognition (NTU-Bias-F / NTU-Bias-M, Toyota Smarthome).

The linear probe of ``ar`` (same preset) is trained on a training split and scored (5-clip top-1)
separately on the test videos of each perceived gender; reported: accuracy per gender, overall
accuracy (all test videos with a known gender) and the gap |acc_F - acc_M|.

Protocols:

- ``tsh``: natural imbalance: the store's own train/test splits, used as they are.
- ``ntu-bias-f`` / ``ntu-bias-m``: the store's train/test splits restructured by
  :func:`build_ntu_bias_split` (a pure function, documented there): balanced subjects and videos
  per gender, then a 95 % / 5 % gender ratio in every training action with one action (the
  shortcut, default "brush hair", NTU A004) flipped: in NTU-Bias-F the shortcut action keeps 95 %
  of its female videos and 5 % of its male videos and every other action the reverse; NTU-Bias-M
  swaps the genders. The test split stays balanced.

The subject -> gender table is a CSV file with the columns ``subject`` and ``gender`` (F/female or
M/male, any case).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from data_manifests.errors import FeatstoreError
from evaluate.options import config_options, json_option, out_option, progress_option, run_command, store_option
from evaluate.settings import (
    DATA_PANEL,
    LinearProbeSettings,
    check,
    check_choice,
    device_setting,
    labels_from_setting,
    setting,
)
from evaluate.tables import print_metrics

if TYPE_CHECKING:
    import numpy as np

    from featstore.store import Store

PROTOCOLS = ("ntu-bias-f", "ntu-bias-m", "tsh")
GENDERS = ("F", "M")
GENDER_SPELLINGS = {"f": "F", "female": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}
FAVOURED_BY_SHORTCUT = {"ntu-bias-f": "F", "ntu-bias-m": "M"}


@dataclass
class BiasConfig(LinearProbeSettings):
    """The ``ar`` linear probe's settings (its seed also draws the balancing subsets of the NTU protocols)."""

    protocol: str = setting("ntu-bias-f", "ntu-bias-f, ntu-bias-m or tsh.")
    genders: str = setting("", "CSV with the columns subject,gender (F/M).", required=True, path=True,
                           panel=DATA_PANEL)
    # a class name (case, '_' and '-' ignored) or a class index
    shortcut_class: str = setting("brushing hair", "NTU protocols: the flipped action (name or index; the paper's "
                                                   "'brush hair' is NTU60's A004 'brushing hair').")
    ratio: float = setting(0.95, "NTU protocols: majority-gender share of every training action.")
    device: str = device_setting()
    labels_from: Optional[str] = labels_from_setting()

    def __post_init__(self):
        check_choice("protocol", self.protocol, PROTOCOLS)
        check(bool(self.genders), "a subject -> gender table is required (--genders table.csv)")
        self.genders = str(Path(self.genders))  # as a path prints: the result records the same for ./t.csv and t.csv
        check(Path(self.genders).is_file(), f"gender table {self.genders} does not exist")
        check(0.5 < self.ratio < 1, f"ratio must be in (0.5, 1), got {self.ratio}")
        super().__post_init__()


def read_gender_table(path: str | Path) -> dict[str, str]:
    """{subject: "F" | "M"} from a CSV with the columns ``subject`` and ``gender``."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            if "subject" not in columns or "gender" not in columns:
                raise FeatstoreError(f"{path}: the gender table needs the columns 'subject' and 'gender', found {columns}")
            table: dict[str, str] = {}
            for number, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                gender = GENDER_SPELLINGS.get(row["gender"].lower())
                if gender is None:
                    raise FeatstoreError(f"{path}:{number}: gender must be F/female or M/male, got {row['gender']!r}")
                if table.get(row["subject"], gender) != gender:
                    raise FeatstoreError(f"{path}:{number}: subject {row['subject']!r} is given two genders")
                table[row["subject"]] = gender
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FeatstoreError(f"cannot read gender table {path}: {exc}") from exc
    if not table:
        raise FeatstoreError(f"{path}: the gender table is empty")
    return table


def resolve_class(name: str, class_names: list[str]) -> int:
    """A class index from a name (case, spaces, '_' and '-' ignored) or from an index."""
    def normal(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    matches = [i for i, candidate in enumerate(class_names) if normal(candidate) == normal(name)]
    if matches:
        return matches[0]
    if name.strip().isdigit() and int(name) < len(class_names):
        return int(name)
    shown = ", ".join(class_names[:12]) + (" ..." if len(class_names) > 12 else "")
    raise FeatstoreError(f"shortcut class {name!r} is not a class of this store ({shown})")


def build_ntu_bias_split(subjects: np.ndarray, labels: np.ndarray, splits: np.ndarray, genders: dict[str, str],
                         shortcut_label: int, favoured: str, ratio: float = 0.95, seed: int = 0) -> np.ndarray:
    """The NTU gender-bias protocol as split assignments: (V,) "train", "test" or "" (left out).

    Pure function of the video table columns and the subject -> gender table:

    1. Only videos of subjects with a known gender take part, within the original "train" and
       "test" splits (a subject stays in its split).
    2. Balanced subjects: in each split, n = min(#female, #male subjects) subjects of each gender
       are kept (drawn with ``seed``).
    3. Balanced videos: in each split and action, m = min(#female, #male videos) videos of each
       gender are kept (drawn with ``seed``). The test split ends here: balanced.
    4. Bias, training split only: in the shortcut action the ``favoured`` gender keeps
       round(ratio * m) of its m videos and the other gender round((1 - ratio) * m); in every
       other action the genders swap roles.
    """
    import numpy as np

    if favoured not in GENDERS:
        raise ValueError(f"favoured must be one of {GENDERS}")
    other = "M" if favoured == "F" else "F"
    rng = np.random.default_rng(seed)
    video_gender = np.array([genders.get(s, "") for s in subjects.tolist()])
    out = np.full(len(subjects), "", dtype=object)
    for split in ("train", "test"):
        in_split = (splits == split) & (video_gender != "") & (labels >= 0)
        kept_subjects = []
        by_gender = {g: sorted(set(subjects[in_split & (video_gender == g)].tolist())) for g in GENDERS}
        n = min(len(by_gender["F"]), len(by_gender["M"]))
        if n == 0:
            raise FeatstoreError(f"the {split!r} split needs subjects of both genders; it has "
                                 f"{len(by_gender['F'])} female and {len(by_gender['M'])} male")
        for gender in GENDERS:
            kept_subjects.extend(rng.permutation(np.array(by_gender[gender], dtype=object))[:n].tolist())
        pool = in_split & np.isin(subjects, np.array(kept_subjects, dtype=object))
        for label in np.unique(labels[pool]):
            per_gender = {g: np.flatnonzero(pool & (labels == label) & (video_gender == g)) for g in GENDERS}
            m = min(len(per_gender["F"]), len(per_gender["M"]))
            for gender in GENDERS:
                chosen = np.sort(rng.permutation(per_gender[gender])[:m])
                if split == "train":
                    majority = favoured if label == shortcut_label else other
                    share = ratio if gender == majority else 1.0 - ratio
                    chosen = chosen[: int(round(share * m))]
                out[chosen] = split
    return out.astype(str)


def split_summary(split: np.ndarray, labels: np.ndarray, video_gender: np.ndarray, class_names: list[str]) -> dict:
    """{split: {class name: {"F": n, "M": n}}} of the videos that take part."""
    import numpy as np

    summary = {}
    for name in ("train", "test"):
        chosen = split == name
        summary[name] = {class_names[c]: {g: int((chosen & (labels == c) & (video_gender == g)).sum()) for g in GENDERS}
                         for c in np.unique(labels[chosen])}
    return summary


def run(store: Store, config: BiasConfig, *, show_progress: bool = False) -> dict:
    import numpy as np

    from evaluate.data import StoreData
    from evaluate.protocols._classifier import n_classes_of, train_linear_classifier, video_class_probabilities
    from evaluate.training import Stopwatch, device_of, timing_block

    watch = Stopwatch(device_of(config.device))
    data = StoreData(store, watch.device, kinds=("clips",), labels_from=config.labels_from, needs_private_labels=True)
    n_classes_of(data)
    genders = read_gender_table(config.genders)
    table = data.videos
    video_gender = np.array([genders.get(s, "") for s in table.subject.tolist()])
    usable = (data.counts("clips") > 0) & (table.label >= 0)
    if config.protocol == "tsh":
        split = np.where(usable, table.split, "")
        shortcut = None
    else:
        shortcut = resolve_class(config.shortcut_class, data.class_names)
        split = build_ntu_bias_split(np.where(usable, table.subject, ""), np.where(usable, table.label, -1), table.split,
                                     genders, shortcut, FAVOURED_BY_SHORTCUT[config.protocol], config.ratio, config.seed)
    train_videos = np.flatnonzero((split == "train") & usable)
    test_videos = np.flatnonzero((split == "test") & usable & (video_gender != ""))
    if len(train_videos) == 0 or len(test_videos) == 0:
        raise FeatstoreError(f"{store.path}: the {config.protocol} protocol leaves {len(train_videos)} training and "
                             f"{len(test_videos)} test videos (with a known gender)")
    model, outcome = train_linear_classifier(data, train_videos, config, show_progress, f"{config.protocol} probe")
    predicted = video_class_probabilities(model, data, test_videos, config.eval_clips).argmax(axis=1)
    correct = predicted == table.label[test_videos]
    test_gender = video_gender[test_videos]
    accuracy = {g: (float(correct[test_gender == g].mean()) if (test_gender == g).any() else float("nan")) for g in GENDERS}
    return {
        "accuracy_F": accuracy["F"],
        "accuracy_M": accuracy["M"],
        "overall": float(correct.mean()),
        "gap": abs(accuracy["F"] - accuracy["M"]),
        "gap_F_minus_M": accuracy["F"] - accuracy["M"],
        "shortcut_class": None if shortcut is None else data.class_names[shortcut],
        "n_train_videos": {g: int((video_gender[train_videos] == g).sum()) for g in GENDERS},
        "n_test_videos": {g: int((test_gender == g).sum()) for g in GENDERS},
        "split_counts": split_summary(split, table.label, video_gender, data.class_names),
        "final_train_loss": outcome.losses[-1],
        "timing": timing_block(watch.seconds(), [outcome]),
    }


def register(app: typer.Typer) -> None:
    @app.command("bias")
    @config_options(BiasConfig, ("protocol", "--protocol"), ("genders", "--genders"), "shortcut_class", "ratio",
                    "epochs", "lr", "batch_size", "seed", "device", "labels_from")
    def bias_command(*, store: str = store_option(), config: BiasConfig, out: Optional[Path] = out_option(),
                     progress: bool = progress_option(), as_json: bool = json_option()) -> None:
        """Gender bias: per-gender accuracy, overall accuracy and their gap (NTU-Bias-F/M or Toyota Smarthome)."""

        def printer(opened: Store, metrics: dict) -> None:
            printed = {k: v for k, v in metrics.items() if k != "split_counts"}
            print_metrics(f"bias {config.protocol}: {opened.path}", printed)

        run_command(f"bias-{config.protocol}", run, config, store, out, show_progress=progress, printer=printer,
                    as_json=as_json)
