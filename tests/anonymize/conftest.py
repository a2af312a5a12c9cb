"""Fixtures: small feature stores written straight from arrays (fast, with a known structure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anonymize.array_store import write_array_store
from anonymize.config import TrainConfig
from anonymize.model import AAMConfig

DIM = 16


def structured_store(out: Path, n_videos: int = 36, dim: int = DIM, seed: int = 0, dtype: str = "float16") -> Path:
    """Clips = class direction + attribute directions + noise; static clips = attributes + frame noise."""
    rng = np.random.default_rng(seed)
    class_dirs = rng.normal(size=(3, dim))
    attribute_dirs = rng.normal(size=(2, dim))
    labels = np.arange(n_videos) % 3
    attributes = rng.integers(0, 2, size=(n_videos, 2))
    clips, static = [], []
    for v in range(n_videos):
        appearance = attributes[v] @ attribute_dirs
        n_clips = 2 + v % 3
        clips.append(class_dirs[labels[v]] + appearance + 0.3 * rng.normal(size=(n_clips, dim)))
        static.append(appearance + 0.3 * rng.normal(size=(4, dim)))
    splits = ["train" if v % 4 else "test" for v in range(n_videos)]
    return write_array_store(out, clips, static, splits, labels.tolist(), attributes, ["a", "b", "c"], ["p", "q"],
                             dtype=dtype)


@pytest.fixture(scope="session")
def array_store(tmp_path_factory) -> Path:
    return structured_store(tmp_path_factory.mktemp("anon") / "arrays.zarr")


def small_config(store: Path, out: Path, **overrides) -> TrainConfig:
    """A seconds-long training config on the array store."""
    settings = dict(store=str(store), out=str(out), aam=AAMConfig(layers=2, heads=2), epochs=4, batch_size=8,
                    head_init_epochs=3, validate_every=2, progress=False, device="cpu", budget_hidden=32,
                    budget_proj=8)
    settings["identity"] = overrides.pop("identity", {"preset": "code", "epochs": 3})
    settings.update(overrides)
    return TrainConfig(**settings)
