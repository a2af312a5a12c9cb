"""Gait recognition by retrieval: which subject is walking? No training.

A video's embedding is the mean of its clip embeddings; a probe video is correct (rank-1) when its
most similar gallery video (cosine similarity) belongs to the same subject. Videos without clips take
no part (counted). Two protocols; ``auto`` picks ``casia-b`` when every video id is a CASIA-B name
and ``splits`` when none is (a store with both is an error: name the protocol).

``casia-b``: the standard CASIA-B cross-view evaluation. Video ids are CASIA-B names
``<subject>-<condition>-<sequence>-<view>`` (``001-nm-01-090``, as the ``casia-b`` manifest builder
writes them); the names give subject, walk and view, the store's split column is not used.

- gallery: the normal walks nm-01..04 of every subject, all views;
- probes, by condition: NM = nm-05/06, BG = bg-01/02 (bag), CL = cl-01/02 (coat), those the store has;
- cell (probe view p, gallery view g): rank-1 of the condition's probes of view p against the gallery
  videos of view g only (a probe whose subject has no gallery video of view g is a miss, as in the
  usual CASIA-B evaluation code);
- a probe view's rank-1 is the mean of its cells over the gallery views other than p (the identical
  view is excluded: the same walk seen from the same camera is not a cross-view match); a
  condition's ``rank1`` is the mean over its probe views, the headline ``rank1`` the mean over the
  conditions. The means including the identical view are reported beside them.

``splits``: any other store. Gallery = the ``train`` videos, probes = the ``test`` videos whose
subject has a train video (the others cannot be found and are left out, counted); one rank-1 over
the probes. The result says which protocol ran and why (``protocol``, ``note``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from data_manifests.builders.casia_b import parse_casia_path
from data_manifests.errors import FeatstoreError
from evaluate.options import config_options, json_option, out_option, run_command, store_option
from evaluate.protocols.retrieval import cosine_matrix
from evaluate.settings import check, check_choice, device_setting, labels_from_setting, setting
from evaluate.tables import console, format_value, print_columns, print_metrics

if TYPE_CHECKING:
    import numpy as np

    from evaluate.data import StoreData
    from featstore.store import Store

PROTOCOLS = ("auto", "casia-b", "splits")
GALLERY_WALKS = ("nm", (1, 2, 3, 4))
PROBE_WALKS = {"NM": ("nm", (5, 6)), "BG": ("bg", (1, 2)), "CL": ("cl", (1, 2))}  # condition: (name part, sequences)
CASIA_B_RULE = ("gallery nm-01..04; per condition, rank-1 of each probe view against each gallery view, "
                "averaged over the gallery views other than the probe's (identical view excluded), then over "
                "probe views; rank1 = mean over conditions")
SPLITS_RULE = "gallery = train split, probes = test split videos whose subject has a train video"


@dataclass
class GaitConfig:
    protocol: str = setting("auto", "auto (casia-b when every video id is a CASIA-B name such as 001-nm-01-090, "
                                    "else splits), casia-b or splits (gallery = train, probes = test).")
    device: str = device_setting()
    labels_from: Optional[str] = labels_from_setting()

    def __post_init__(self):
        check_choice("protocol", self.protocol, PROTOCOLS)


def resolve_protocol(requested: str, video_ids: list[str], where: Path | str) -> str:
    """The protocol that runs: ``requested``, or for ``auto`` the one the video ids call for."""
    if requested == "splits":
        return "splits"
    check(len(video_ids) > 0, f"{where}: the store has no videos")
    not_casia = [video_id for video_id in video_ids if parse_casia_path((video_id,)) is None]
    if not not_casia:
        return "casia-b"
    if requested == "auto" and len(not_casia) == len(video_ids):
        return "splits"
    raise FeatstoreError(
        f"{where}: {len(not_casia)} of {len(video_ids)} video ids are not CASIA-B names like 001-nm-01-090 "
        f"(e.g. {not_casia[0]!r}); use --protocol splits to evaluate by the train/test splits"
    )


def _mean(values: Iterable[float]) -> float:
    """Mean of the finite values; nan when there are none."""
    import numpy as np

    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def cross_view_rank1(similarity: np.ndarray, probe_subjects: np.ndarray, probe_views: np.ndarray,
                     gallery_subjects: np.ndarray, gallery_views: np.ndarray) -> dict[str, dict[str, float]]:
    """``{probe view: {gallery view: rank-1}}``: the probes of each view against the gallery videos of each
    view alone (``similarity`` is probes x gallery)."""
    import numpy as np

    from evaluate.metrics import hit_at_1

    table = {}
    for probe_view in sorted(set(probe_views.tolist())):
        rows = probe_views == probe_view
        table[probe_view] = {}
        for gallery_view in sorted(set(gallery_views.tolist())):
            columns = gallery_views == gallery_view
            table[probe_view][gallery_view] = hit_at_1(similarity[np.ix_(rows, columns)], probe_subjects[rows],
                                                       gallery_subjects[columns])
    return table


def summarize_views(table: dict[str, dict[str, float]]) -> dict:
    """A condition's rank-1 from its cross-view table: per probe view the mean over the other gallery views
    (nan when the gallery has no other view), then the mean over probe views."""
    per_probe_view = {probe: _mean(v for gallery, v in row.items() if gallery != probe) for probe, row in table.items()}
    return {
        "rank1": _mean(per_probe_view.values()),
        "rank1_including_identical_view": _mean(_mean(row.values()) for row in table.values()),
        "per_probe_view": per_probe_view,
        "cross_view": table,
    }


def casia_b_retrieval(data: StoreData, has_clips: np.ndarray) -> dict:
    """The standard CASIA-B cross-view evaluation (see module docs)."""
    import numpy as np

    where = data.store.path
    names = [parse_casia_path((video_id,)) for video_id in data.videos.video_id.tolist()]
    subjects, conditions, sequences, views = (np.array(column) for column in zip(*names))

    def walks(condition: str, numbers: tuple[int, ...]) -> np.ndarray:
        return has_clips & (conditions == condition) & np.isin(sequences, numbers)

    in_gallery = walks(*GALLERY_WALKS)
    gallery = np.flatnonzero(in_gallery)
    n_subjects = len(set(subjects[gallery].tolist()))
    check(n_subjects >= 2, f"{where}: the CASIA-B gallery (nm-01..04 videos with clips) has {n_subjects} subjects; "
                           "gait retrieval needs two or more")
    gallery_means = data.video_means(gallery)
    in_protocol = in_gallery.copy()
    per_condition = {}
    for condition, (name_part, numbers) in PROBE_WALKS.items():
        in_probes = walks(name_part, numbers)
        probes = np.flatnonzero(in_probes)
        if len(probes) == 0:
            continue
        in_protocol |= in_probes
        similarity = cosine_matrix(data.video_means(probes), gallery_means)
        table = cross_view_rank1(similarity, subjects[probes], views[probes], subjects[gallery], views[gallery])
        per_condition[condition] = {"probe_walks": [f"{name_part}-{n:02d}" for n in numbers], "n_probes": len(probes),
                                    **summarize_views(table)}
    check(len(per_condition) > 0, f"{where}: no CASIA-B probe videos with clips (nm-05/06, bg-01/02 or cl-01/02)")
    rank1 = _mean(result["rank1"] for result in per_condition.values())
    check(math.isfinite(rank1), f"{where}: the CASIA-B gallery has only view(s) "
                                f"{sorted(set(views[gallery].tolist()))}, the probes' own; cross-view rank-1 "
                                "needs gallery videos of other views")
    return {
        "protocol": "casia-b",
        "rule": CASIA_B_RULE,
        "rank1": rank1,
        "chance_rank1": 1.0 / n_subjects,
        "conditions": per_condition,
        "n_subjects": n_subjects,
        "n_gallery": len(gallery),
        "n_probes": sum(result["n_probes"] for result in per_condition.values()),
        "n_videos_outside_protocol": int((has_clips & ~in_protocol).sum()),  # e.g. nm-07 or bg-03
    }


def splits_retrieval(data: StoreData, has_clips: np.ndarray, reason: str) -> dict:
    """Gallery = train videos, probes = test videos whose subject has a train video: one rank-1."""
    import numpy as np

    from evaluate.metrics import hit_at_1

    where, table = data.store.path, data.videos
    known = has_clips & (table.subject != "")
    gallery = np.flatnonzero(known & (table.split == "train"))
    candidates = np.flatnonzero(known & (table.split == "test"))
    gallery_subjects = sorted(set(table.subject[gallery].tolist()))
    check(len(gallery_subjects) >= 2, f"{where}: the train videos with clips and a subject id (the gallery) have "
                                      f"{len(gallery_subjects)} subjects; gait retrieval needs two or more")
    probes = candidates[np.isin(table.subject[candidates], gallery_subjects)]
    check(len(probes) > 0, f"{where}: no test video with clips has the subject of a train video; gait retrieval by "
                           "splits needs the test subjects in the train split (the gallery)")
    similarity = cosine_matrix(data.video_means(probes), data.video_means(gallery))
    return {
        "protocol": "splits",
        "note": f"{reason}: {SPLITS_RULE}",
        "rank1": hit_at_1(similarity, table.subject[probes], table.subject[gallery]),
        "chance_rank1": 1.0 / len(gallery_subjects),
        "n_subjects": len(gallery_subjects),
        "n_gallery": len(gallery),
        "n_probes": len(probes),
        "n_probes_left_out": len(candidates) - len(probes),  # their subject has no train video
    }


def run(store: Store, config: GaitConfig, *, show_progress: bool = False) -> dict:
    from evaluate.data import StoreData, check_private_labels
    from evaluate.training import Stopwatch, device_of, timing_block

    watch = Stopwatch(device_of(config.device))
    data = StoreData(store, watch.device, kinds=("clips",), labels_from=config.labels_from)
    protocol = resolve_protocol(config.protocol, data.videos.video_id.tolist(), store.path)
    if protocol == "splits":  # CASIA-B names its subjects in the video ids; the splits protocol reads the subjects
        check_private_labels(store, config.labels_from)
    has_clips = data.counts("clips") > 0
    if protocol == "casia-b":
        metrics = casia_b_retrieval(data, has_clips)
    else:
        reason = ("--protocol splits" if config.protocol == "splits"
                  else "video ids are not CASIA-B names like 001-nm-01-090")
        metrics = splits_retrieval(data, has_clips, reason)
    metrics["n_videos_without_clips"] = int((~has_clips).sum())
    metrics["timing"] = timing_block(watch.seconds(), [])
    return metrics


def print_result(title: str, metrics: dict) -> None:
    """CASIA-B: conditions x probe views (identical view excluded); splits: the metrics and the note."""
    if metrics["protocol"] == "splits":
        print_metrics(title, metrics, skip=("timing", "note"))
        console.print(f"[yellow]note:[/] {metrics['note']}")
        return
    conditions = metrics["conditions"]
    views = sorted({view for result in conditions.values() for view in result["per_probe_view"]})
    rows = [[condition, *(result["per_probe_view"].get(view, "-") for view in views), result["rank1"],
             result["rank1_including_identical_view"]] for condition, result in conditions.items()]
    print_columns(title, ["probe", *views, "mean", "incl. identical view"], rows)
    console.print(f"rank1 (mean over {', '.join(conditions)}, identical view excluded): "
                  f"{format_value(metrics['rank1'])}  chance {format_value(metrics['chance_rank1'])}  {metrics['n_subjects']} subjects, "
                  f"{metrics['n_gallery']} gallery / {metrics['n_probes']} probe videos")


def register(app: typer.Typer) -> None:
    @app.command("gait")
    @config_options(GaitConfig, ("protocol", "--protocol"), "device", "labels_from")
    def gait_command(*, store: str = store_option(), config: GaitConfig, out: Optional[Path] = out_option(),
                     as_json: bool = json_option()) -> None:
        """Gait recognition by retrieval: CASIA-B cross-view rank-1 (NM/BG/CL), or train -> test splits."""
        run_command("gait", run, config, store, out, as_json=as_json, printer=lambda opened, metrics: print_result(
            f"gait ({metrics['protocol']}): {opened.path}", metrics))
