"""Gait recognition by retrieval (Casia-B-style): which subject is walking? No training.

Each subject's walks are ordered; the first ``gallery_walks`` (4) walks of every subject form the
gallery and the last ``probe_walks`` (2) walks are the probes (walks in between take no part).
A probe video is correct when its most similar gallery video (cosine similarity of the mean clip
embeddings) belongs to the same subject: top-1 accuracy over probe videos. Chance is about
1 / subjects.

Walks: without ``walk_pattern`` each video is one walk, in the order of the subject's videos in the
store. With ``walk_pattern`` (a regular expression with one group, searched in ``video_id``) the
videos whose group is equal form one walk (e.g. the views of one Casia-B sequence:
``walk_pattern="(nm-\\d+)"``), ordered by the group (numerically when every group is a number).
Subjects with fewer than ``gallery_walks + probe_walks`` walks are left out and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from evaluate.common import (
    StoreData,
    Stopwatch,
    check,
    device_of,
    device_option,
    finish,
    open_store,
    out_option,
    store_option,
    timing_block,
)
from evaluate.metrics import hit_at_1
from evaluate.protocols.retrieval import cosine_matrix
from featstore.errors import FeatstoreError
from featstore.store import Store

SPLITS = ("all", "train", "val", "test")


@dataclass
class GaitConfig:
    gallery_walks: int = 4
    probe_walks: int = 2
    split: str = "all"  # which videos take part: all, or one split
    walk_pattern: Optional[str] = None
    device: str = "auto"

    def __post_init__(self):
        check(self.gallery_walks >= 1, f"gallery_walks must be >= 1, got {self.gallery_walks}")
        check(self.probe_walks >= 1, f"probe_walks must be >= 1, got {self.probe_walks}")
        check(self.split in SPLITS, f"split must be one of {list(SPLITS)}, got {self.split!r}")
        if self.walk_pattern is not None:
            try:
                compiled = re.compile(self.walk_pattern)
            except re.error as exc:
                raise FeatstoreError(f"walk_pattern {self.walk_pattern!r} is not a regular expression: {exc}") from exc
            check(compiled.groups == 1, f"walk_pattern must have exactly one group, got {compiled.groups}")


def order_walks(video_ids: list[str], pattern: str | None) -> list[list[int]]:
    """Positions of one subject's videos grouped into walks, in walk order (see module docs)."""
    if pattern is None:
        return [[i] for i in range(len(video_ids))]
    keys = []
    for video_id in video_ids:
        match = re.search(pattern, video_id)
        if match is None:
            raise FeatstoreError(f"walk_pattern {pattern!r} does not match video id {video_id!r}")
        keys.append(match.group(1))
    unique = list(dict.fromkeys(keys))
    numeric = all(k.isdigit() for k in unique)
    unique.sort(key=(lambda k: int(k)) if numeric else None)
    return [[i for i, k in enumerate(keys) if k == key] for key in unique]


def gallery_and_probes(subjects: np.ndarray, video_ids: np.ndarray, candidates: np.ndarray, config: GaitConfig
                       ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(gallery videos, probe videos, subjects used, subjects skipped) among ``candidates`` (store order)."""
    gallery, probes, used, skipped = [], [], 0, 0
    need = config.gallery_walks + config.probe_walks
    for subject in dict.fromkeys(subjects[candidates].tolist()):
        videos = candidates[subjects[candidates] == subject]
        walks = order_walks(video_ids[videos].tolist(), config.walk_pattern)
        if len(walks) < need:
            skipped += 1
            continue
        used += 1
        gallery.extend(videos[i] for walk in walks[: config.gallery_walks] for i in walk)
        probes.extend(videos[i] for walk in walks[-config.probe_walks :] for i in walk)
    return np.array(gallery, dtype=np.int64), np.array(probes, dtype=np.int64), used, skipped


def run(store: Store, config: GaitConfig, *, show_progress: bool = False) -> dict:
    watch = Stopwatch(device_of(config.device))
    data = StoreData(store, watch.device, kinds=("clips",))
    table = data.videos
    has_clips = data.counts("clips") > 0
    in_split = np.ones(len(table), dtype=bool) if config.split == "all" else table.split == config.split
    candidates = np.flatnonzero(has_clips & in_split & (table.subject != ""))
    if len(candidates) == 0:
        raise FeatstoreError(f"{store.path}: no videos with clips and a subject id in split {config.split!r}")
    gallery, probes, used, skipped = gallery_and_probes(table.subject, table.video_id, candidates, config)
    if used < 2:
        raise FeatstoreError(f"{store.path}: {used} subjects have at least {config.gallery_walks + config.probe_walks} "
                             "walks; gait retrieval needs two or more")
    similarity = cosine_matrix(data.video_means(probes), data.video_means(gallery))
    return {
        "top1": hit_at_1(similarity, table.subject[probes], table.subject[gallery]),
        "chance_top1": 1.0 / used,
        "n_subjects": used,
        "n_subjects_skipped": skipped,
        "n_gallery": int(len(gallery)),
        "n_probes": int(len(probes)),
        "timing": timing_block(watch.seconds(), []),
    }


def register(app: typer.Typer) -> None:
    @app.command("gait")
    def gait_command(
        store: str = store_option(),
        out: Optional[Path] = out_option(),
        gallery_walks: int = typer.Option(4, help="First walks of each subject in the gallery."),
        probe_walks: int = typer.Option(2, help="Last walks of each subject as probes."),
        split: str = typer.Option("all", help="Videos taking part: all, train, val or test."),
        walk_pattern: Optional[str] = typer.Option(None, help="Regex with one group on video_id naming the walk."),
        device: str = device_option(),
    ) -> None:
        """Gait recognition: top-1 subject retrieval, gallery = first 4 walks, probes = last 2."""
        config = GaitConfig(gallery_walks=gallery_walks, probe_walks=probe_walks, split=split,
                            walk_pattern=walk_pattern, device=device)
        opened = open_store(store)
        finish("gait", config, run(opened, config), opened, out)
