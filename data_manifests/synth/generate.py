"""``generate_synthetic``: plan, render and write the four parts, then ``synth_config.json`` and the manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data_manifests.errors import FeatstoreError
from data_manifests.schema import Manifest, ManifestHeader, Segment, VideoRecord
from data_manifests.synth.appearance import Identity, code_attributes, make_identity, render_background
from data_manifests.synth.config import (
    AD_CLASS_NAMES, ATTRIBUTE_NAMES, CLASS_NAMES, CONFIG_FILE, PARTS, Geometry, SynthConfig, manifest_path, part_name,
)
from data_manifests.synth.motion import jitter, plan_anomaly, plan_untrimmed, random_start, trimmed_motion
from data_manifests.synth.planning import (
    SEED_AD, SEED_IMAGES, SEED_SUBJECT, SEED_TAD, SEED_TRIMMED, Item, plan, seeded_rng, subject_id,
)
from data_manifests.synth.rendering import render_video
from data_manifests.synth.style import SynthStyle
from data_manifests.synth.writers import write_mp4, write_png, write_text

GENERATOR_VERSION = 2  # 2: trimmed classes share one subject run per split


def _subjects(config: SynthConfig, geo: Geometry) -> list[Identity]:
    return [make_identity(code_attributes(s), seeded_rng(config, SEED_SUBJECT, s), geo)
            for s in range(config.n_subjects)]


def _seconds(frame: int, fps: float) -> float:
    """A frame index as the manifests' time in seconds."""
    return round(frame / fps, 6)


def _produce(item: Item, config: SynthConfig, geo: Geometry, subjects: list[Identity], out: Path) -> VideoRecord:
    """Render and write one item; return its manifest record."""
    fps = config.fps
    target = out / item.path
    if item.part == "synthetic-images":
        rng = seeded_rng(config, SEED_IMAGES, item.index)
        ident = make_identity(code_attributes(item.code), rng, geo)
        background = render_background(ident.attributes[3], rng, geo.height, geo.width, geo.style)
        start = random_start(rng, geo)
        image = render_video(background, [(ident.sprite, start[None, :], None)], 1, geo)[0]
        write_png(target, image)
        return VideoRecord(item.video_id, item.path, item.split, label=None, attributes=ident.attributes,
                           subject=None, segments=[], fps=None, duration=None, n_frames=1, media="image")

    subject = subjects[item.subject]
    n = item.n_frames
    segments: list[Segment] = []
    actors = []
    if item.part == "synthetic":
        rng = seeded_rng(config, SEED_TRIMMED, item.index)
        state = trimmed_motion(item.label, n, rng, geo)
    elif item.part == "synthetic-tad":
        rng = seeded_rng(config, SEED_TAD, item.index)
        state, segs = plan_untrimmed(n, item.classes, item.lengths, rng, geo)
        segments = [Segment(_seconds(a, fps), _seconds(b, fps), c) for a, b, c in segs]
    else:
        rng = seeded_rng(config, SEED_AD, item.index)
        state, intervals, intruders = plan_anomaly(item, subjects, rng, geo)
        segments = [Segment(_seconds(a, fps), _seconds(b, fps), 1) for a, b, _ in intervals]
        actors += intruders
    background = render_background(subject.attributes[3], rng, geo.height, geo.width, geo.style)
    state = state + jitter(n, rng, geo)
    state[:, 0] = np.clip(state[:, 0], geo.margin - 1, geo.width - geo.margin + 1)
    state[:, 1] = np.clip(state[:, 1], geo.margin - 1, geo.height - geo.margin + 1)
    frames = render_video(background, [(subject.sprite, state, None)] + actors, n, geo)
    write_mp4(target, frames, fps)
    return VideoRecord(
        item.video_id, item.path, item.split, label=item.label, attributes=list(subject.attributes),
        subject=subject_id(item.subject, config.n_subjects), segments=segments, fps=float(fps),
        duration=_seconds(n, fps), n_frames=n, media="video",
    )


def anomaly_kinds(config: SynthConfig) -> dict[str, list[tuple[float, float, str]]]:
    """Every AD video's anomalous intervals as (start s, end s, kind), kind one of ``ANOMALY_KINDS``, the manifest's
    segments with what they leave out. Replays the generator's plan (every draw depends only on the config), so
    nothing is rendered."""
    if not isinstance(config, SynthConfig):
        raise FeatstoreError(f"anomaly_kinds needs a SynthConfig, got {type(config).__name__}")
    geo = Geometry.of(config)
    subjects = _subjects(config, geo)
    kinds = {}
    for item in plan(config):
        if item.part == "synthetic-ad":
            _, intervals, _ = plan_anomaly(item, subjects, seeded_rng(config, SEED_AD, item.index), geo)
            kinds[item.video_id] = [(_seconds(a, config.fps), _seconds(b, config.fps), kind)
                                    for a, b, kind in intervals]
    return kinds


_DESCRIPTIONS = {
    "synthetic": "Synthetic trimmed action clips: 10 motion-defined classes; 4 static private attributes per subject.",
    "synthetic-tad": "Synthetic untrimmed videos: an idle actor performs annotated action segments (same 10 classes).",
    "synthetic-ad": "Synthetic untrimmed videos: normal motion; anomalous intervals of erratic jumps or an intruder.",
    "synthetic-images": "Synthetic still images of actors with the 4 private attribute labels (static privacy).",
}
_TASKS = {"synthetic": "action", "synthetic-tad": "tad", "synthetic-ad": "ad", "synthetic-images": "static"}


def generate_synthetic(out: Path, config: SynthConfig, show_progress: bool = True) -> dict[str, Path]:
    """Generate all four synthetic parts under ``out``; returns part name -> manifest path.

    Media files are written first (each to a temporary name, then renamed), then ``synth_config.json``,
    then the manifests; existing manifests are removed up front, so an interrupted run never leaves a
    manifest that points at a half-written dataset.
    """
    if not isinstance(config, SynthConfig):
        raise FeatstoreError(f"generate_synthetic needs a SynthConfig, got {type(config).__name__}")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            manifest_path(out, part).unlink(missing_ok=True)
        (out / CONFIG_FILE).unlink(missing_ok=True)
        for folder in ("trimmed", "untrimmed", "anomaly", "images"):
            (out / folder).mkdir(exist_ok=True)
    except OSError as exc:
        raise FeatstoreError(f"cannot prepare the synthetic dataset folder {out}: {exc}") from exc

    geo = Geometry.of(config)
    subjects = _subjects(config, geo)
    items = plan(config)
    records: dict[str, list[VideoRecord]] = {part: [] for part in PARTS}
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(total=sum(item.n_frames for item in items), desc=f"synthetic data -> {out}",
                        unit="frame", unit_scale=True, leave=False)
    try:
        for item in items:
            try:
                records[item.part].append(_produce(item, config, geo, subjects, out))
            except OSError as exc:
                raise FeatstoreError(f"cannot write {out / item.path}: {exc}") from exc
            if progress is not None:
                progress.update(item.n_frames)
    finally:
        if progress is not None:
            progress.close()

    write_text(out / CONFIG_FILE, json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n")
    paths = {}
    # a non-default style shows in the manifest (hence in every store extracted from it): its dataset
    # name (synthetic-<style>[-tad|-ad|-images]) and the description
    style_note = "" if config.style == SynthStyle() else f", style {config.style.name}"
    for part in PARTS:
        header = ManifestHeader(
            name=part_name(part, config.style),
            task=_TASKS[part],
            class_names=list(AD_CLASS_NAMES if part == "synthetic-ad" else CLASS_NAMES),
            attribute_names=list(ATTRIBUTE_NAMES),
            root="..",
            # "featstore.synth" names the generator as v2 manifests record it (the generator lived there then;
            # tests pin the manifests' bytes)
            description=f"{_DESCRIPTIONS[part]} Generated by featstore.synth v{GENERATOR_VERSION}, "
                        f"seed {config.seed}{style_note}.",
        )
        if part == "synthetic-images":
            header.class_names = []
        manifest = Manifest(header, records[part], out)
        paths[part] = manifest.save(manifest_path(out, part))
    return paths
