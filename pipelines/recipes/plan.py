"""Before any work: where each dataset is, what is missing (all of it, in one message), what will be computed.

A dataset's root is ``--root NAME=PATH`` (NAME: the recipe's store name or the registry dataset name), else
``--data-root``/<its official folder name>. The clip count of a video is estimated from its duration or frame
count as the manifest gives them (the builders leave most unset: then ``ASSUMED_SECONDS`` per video); the
time is that count over the encoder's clips/s, measured here with a short timed forward of random clips.

A pixel-level baseline row extracts again every dataset one of its columns reads (not those only its
``skip_columns`` read: they count in no estimate); blur and blacken read the dataset's person box file,
``--boxes NAME=CSV`` (featstore.pixel_transforms documents the format). Blur without one blurs the whole frame (as
``featstore extract`` does); blacken without one cannot run: a missing input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from data_manifests.errors import FeatstoreError
from data_manifests.schema import Manifest
from pipelines.recipes.loader import PixelRowSpec, Recipe

ASSUMED_SECONDS = 10.0  # per video of unknown length (a typical trimmed action clip)
ASSUMED_FPS = 30.0
TIMED_BATCH = 4  # clips in the timed forward
TIMED_REPEATS = 2  # forwards timed after one warm-up


class MissingInputs(FeatstoreError):
    """Dataset roots, annotation files or checkpoints a recipe needs and does not find."""


@dataclass
class DatasetPlan:
    store: str
    dataset: str
    root: Path
    manifest: Manifest

    @property
    def n_videos(self) -> int:
        return len(self.manifest.records)

    def estimated_clips(self, clip_len: int, static_per_video: int) -> int:
        """Clips plus static clips (an image is one static clip)."""
        total = 0.0
        for record in self.manifest.records:
            if record.media == "image":
                total += 1
                continue
            if record.n_frames is not None:
                frames = record.n_frames
            else:
                frames = (record.duration or ASSUMED_SECONDS) * (record.fps or ASSUMED_FPS)
            total += max(1, int(frames // clip_len)) + static_per_video
        return int(total)


def parse_named_paths(values: list[str], option: str, example: str) -> dict[str, Path]:
    """``--root NAME=PATH`` or ``--boxes NAME=CSV`` values -> {NAME: PATH}."""
    roots = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise FeatstoreError(f"{option} takes NAME=PATH (e.g. {example}), got {value!r}")
        roots[name] = Path(path)
    return roots


def named_path(recipe: Recipe, store: str, paths: dict[str, Path]) -> Path | None:
    """The path given for a store by its store name or its registry dataset name."""
    if store in paths:
        return paths[store]
    return paths.get(recipe.datasets[store].dataset)


def dataset_root(recipe: Recipe, store: str, data_root: Path | None, roots: dict[str, Path]) -> Path | None:
    root = named_path(recipe, store, roots)
    if root is not None:
        return root
    return None if data_root is None else data_root / recipe.datasets[store].folder


def _unknown_names(recipe: Recipe, option: str, paths: dict[str, Path]) -> None:
    unknown = sorted(set(paths) - set(recipe.datasets) - {spec.dataset for spec in recipe.datasets.values()})
    if unknown:
        raise FeatstoreError(f"{option} {unknown[0]}=...: not a dataset of recipe {recipe.name!r} "
                             f"(its datasets: {', '.join(recipe.datasets)})")


def check_inputs(recipe: Recipe, encoder: str, weights: str | None, data_root: Path | None,
                 roots: dict[str, Path], pixel_rows: dict[str, PixelRowSpec], pixel_stores: list[str],
                 boxes: dict[str, Path]) -> dict[str, DatasetPlan]:
    """Every dataset's manifest (its annotation files and videos checked), the checkpoint and, for the pixel
    baseline rows (extracting ``pixel_stores`` again), the person box files (read and checked against the
    manifest); everything missing is raised together as one ``MissingInputs``."""
    from data_manifests.registry import resolve_dataset
    from featstore.encoders import get_encoder_entry
    from featstore.pixel_transform_config import BOX_TRANSFORMS

    _unknown_names(recipe, "--root", roots)
    _unknown_names(recipe, "--boxes", boxes)
    boxed = [label for label, row in pixel_rows.items() if row.transform in BOX_TRANSFORMS]
    if boxes and not boxed:
        raise FeatstoreError(f"--boxes: no pixel baseline row of this run reads person boxes "
                             f"({', '.join(BOX_TRANSFORMS)}; see --pixel-baselines)")
    for name in boxes:
        if not any(name in (store, recipe.datasets[store].dataset) for store in pixel_stores):
            raise FeatstoreError(f"--boxes {name}=...: the pixel baseline rows of this run do not extract {name} "
                                 f"(they extract {', '.join(pixel_stores) or 'nothing'}; a dataset only "
                                 f"pixel_baselines skip_columns read is not extracted for them)")
    missing, plans = [], {}
    entry = get_encoder_entry(encoder)
    if weights is not None and not Path(weights).is_file():
        missing.append(f"checkpoint: --weights {weights} is not a file")
    elif weights is None and entry.weights_required:
        missing.append(f"checkpoint: encoder {encoder!r} needs --weights FILE")
    for store, spec in recipe.datasets.items():
        root = dataset_root(recipe, store, data_root, roots)
        if root is None:
            missing.append(f"{store}: no root (pass --data-root ROOT holding {spec.folder}/, or --root {store}=PATH)")
        elif not root.is_dir():
            missing.append(f"{store}: dataset root {root} is not a folder")
        else:
            try:
                plans[store] = DatasetPlan(store, spec.dataset, root, resolve_dataset(spec.dataset, root, spec.fold))
            except FeatstoreError as exc:
                missing.append(f"{store}: {exc}")
            for evaluation in recipe.evaluate:
                if evaluation.store == store:
                    missing += [f"{store}: {evaluation.protocol} --{name.replace('_', '-')} file {path} does not exist"
                                for name, path in evaluation.root_files(root).items() if not path.is_file()]
    missing += _box_problems(recipe, pixel_rows, pixel_stores, boxes, plans)
    missing = list(dict.fromkeys(missing))  # columns of one evaluation name its files once
    if missing:
        raise MissingInputs(f"recipe {recipe.name!r} is missing {len(missing)} input(s):\n  - " + "\n  - ".join(missing))
    return plans


def _box_problems(recipe: Recipe, pixel_rows: dict[str, PixelRowSpec], pixel_stores: list[str],
                  boxes: dict[str, Path], plans: dict[str, DatasetPlan]) -> list[str]:
    """What keeps the pixel rows from running: a transform that needs boxes (blacken) without a box file (one
    line for every such row), a box file that is not there or does not fit its dataset's videos."""
    from featstore.pixel_transform_config import BOX_TRANSFORMS, BOXES_REQUIRED
    from featstore.pixel_transforms import read_boxes

    problems = []
    for label, row in pixel_rows.items():
        if row.transform in BOXES_REQUIRED:
            without = [store for store in pixel_stores if named_path(recipe, store, boxes) is None]
            if without:
                problems.append(f"pixel baseline {label} ({row.transform}) needs a person box file per dataset: "
                                f"--boxes NAME=CSV for {', '.join(without)} (or leave it out: --pixel-baselines "
                                f"{','.join(other for other in pixel_rows if other != label) or 'none'})")
    if any(row.transform in BOX_TRANSFORMS for row in pixel_rows.values()):
        for store in pixel_stores:
            path = named_path(recipe, store, boxes)
            if path is None:
                continue
            if not path.is_file():
                problems.append(f"{store}: --boxes file {path} does not exist")
            elif store in plans:
                try:
                    read_boxes(path, {record.video_id for record in plans[store].manifest.records})
                except FeatstoreError as exc:
                    problems.append(f"{store}: {exc}")
    return problems


def measure_clips_per_second(encoder: str, weights: str | None, device: str) -> float:
    """The encoder's clips/s on this device: a short timed forward of random clips (decoding not included)."""
    import torch

    from featstore.device import autocast, resolve_device, resolve_precision
    from featstore.encoders import create_encoder

    loaded = create_encoder(encoder, weights)
    spec = loaded.spec
    torch_device = resolve_device(device)
    precision = resolve_precision(torch_device, "auto")
    module = loaded.module.to(torch_device)
    clips = torch.randn(TIMED_BATCH, 3, spec.num_frames, spec.resolution, spec.resolution, device=torch_device)
    with torch.inference_mode(), autocast(torch_device, precision):
        module(clips)  # warm-up: kernels chosen, memory allocated
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)
        started = time.perf_counter()
        for _ in range(TIMED_REPEATS):
            module(clips)
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)
    return TIMED_BATCH * TIMED_REPEATS / (time.perf_counter() - started)


def describe_plan(plans: dict[str, DatasetPlan], clips_per_second: float,
                  pixel_rows: dict[str, list[str]]) -> list[str]:
    """The lines printed before any work: per dataset videos, estimated clips and extraction time; per pixel
    baseline row (label -> the stores it extracts again) its extractions."""
    from featstore.sampling import SamplingConfig

    sampling = SamplingConfig()  # the recipes extract with the default sampling
    lines, total = [], 0
    clips_of = {store: plan.estimated_clips(sampling.clip_len, sampling.static_per_video) for store, plan in plans.items()}
    for plan in plans.values():
        clips = clips_of[plan.store]
        total += clips
        lines.append(f"{plan.store:>12}: {plan.dataset} at {plan.root}: {plan.n_videos} videos, ~{clips} clips, "
                     f"~{format_seconds(clips / clips_per_second)}")
    for label, stores in pixel_rows.items():
        clips = sum(clips_of[store] for store in stores)
        total += clips
        lines.append(f"{label:>12}: pixel baseline, {len(stores)} datasets extracted again from transformed frames: "
                     f"~{clips} clips, ~{format_seconds(clips / clips_per_second)}")
    lines.append(f"{'total':>12}: ~{total} clips at {clips_per_second:.1f} clips/s (measured here) "
                 f"-> ~{format_seconds(total / clips_per_second)} of extraction (an estimate; decoding not included)")
    return lines


def format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
