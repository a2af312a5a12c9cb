"""Before any work: where each dataset is, what is missing (all of it, in one message), what will be computed.

A dataset's root is ``--root NAME=PATH`` (NAME: the recipe's store name or the registry dataset name), else
``--data-root``/<its official folder name>. The clip count of a video is estimated from its duration or frame
count as the manifest gives them (the builders leave most unset: then ``ASSUMED_SECONDS`` per video); the
time is that count over the encoder's clips/s, measured here with a short timed forward of random clips.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from data_manifests.errors import FeatstoreError
from data_manifests.schema import Manifest
from pipelines.recipes.loader import Recipe

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


def parse_roots(values: list[str]) -> dict[str, Path]:
    """``--root NAME=PATH`` values -> {NAME: PATH}."""
    roots = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise FeatstoreError(f"--root takes NAME=PATH (e.g. ucf101=/data/UCF101), got {value!r}")
        roots[name] = Path(path)
    return roots


def dataset_root(recipe: Recipe, store: str, data_root: Path | None, roots: dict[str, Path]) -> Path | None:
    spec = recipe.datasets[store]
    if store in roots:
        return roots[store]
    if spec.dataset in roots:
        return roots[spec.dataset]
    return None if data_root is None else data_root / spec.folder


def check_inputs(recipe: Recipe, encoder: str, weights: str | None, data_root: Path | None,
                 roots: dict[str, Path]) -> dict[str, DatasetPlan]:
    """Every dataset's manifest (its annotation files and videos checked) and the checkpoint; everything
    missing is raised together as one ``MissingInputs``."""
    from data_manifests.registry import resolve_dataset
    from featstore.encoders import get_encoder_entry

    unknown = sorted(set(roots) - set(recipe.datasets) - {spec.dataset for spec in recipe.datasets.values()})
    if unknown:
        raise FeatstoreError(f"--root {unknown[0]}=...: not a dataset of recipe {recipe.name!r} "
                             f"(its datasets: {', '.join(recipe.datasets)})")
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
    missing = list(dict.fromkeys(missing))  # columns of one evaluation name its files once
    if missing:
        raise MissingInputs(f"recipe {recipe.name!r} is missing {len(missing)} input(s):\n  - " + "\n  - ".join(missing))
    return plans


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


def describe_plan(plans: dict[str, DatasetPlan], clips_per_second: float) -> list[str]:
    """The lines printed before any work: per dataset videos, estimated clips and extraction time."""
    from featstore.sampling import SamplingConfig

    sampling = SamplingConfig()  # the recipes extract with the default sampling
    lines, total = [], 0
    for plan in plans.values():
        clips = plan.estimated_clips(sampling.clip_len, sampling.static_per_video)
        total += clips
        lines.append(f"{plan.store:>12}: {plan.dataset} at {plan.root}: {plan.n_videos} videos, ~{clips} clips, "
                     f"~{format_seconds(clips / clips_per_second)}")
    lines.append(f"{'total':>12}: ~{total} clips at {clips_per_second:.1f} clips/s (measured here) "
                 f"-> ~{format_seconds(total / clips_per_second)} of extraction (an estimate; decoding not included)")
    return lines


def format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
