"""Small TAD / AD stores for the TriDet / MGFN tests, built once per test session next to ``synth_root``.

Import the fixtures into a test module (``from tests.evaluate.tadad_stores import tad_store``). Each builder
checks whether its store already exists under the session's synthetic folder, so several modules share one
extraction. The planted copies add a known signal so a working head must score far above chance:

- TAD: clips whose centre lies in a segment get +3 on dimension ``label`` (the segment's class).
- AD: clips overlapping an anomalous interval get +3 on dimension 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featstore.extract import ExtractConfig, extract
from featstore.store import Store, write_transformed_store

PLANT = 3.0


def _extract(manifest: Path, out: Path, stride: int | None = None) -> Path:
    if not Store.is_store(out):
        from featstore.sampling import SamplingConfig

        extract(ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(out), videos_per_part=4,
                              sampling=SamplingConfig(stride=stride)), show_progress=False)
    return out


def _clip_signal(store: Store, rule) -> np.ndarray:
    """(N_clips, D) additive signal: ``rule(centre_seconds, segments)`` -> (n, D) per video."""
    offsets, times, table = store.clip_offsets(), store.array("clips/times"), store.videos()
    signal = np.zeros((int(offsets[-1]), store.dim), dtype=np.float32)
    for v in range(store.n_videos):
        rows = slice(int(offsets[v]), int(offsets[v + 1]))
        signal[rows] = rule(times[rows], table.segments[v], store.dim)
    return signal


def _planted(source: Path, out: Path, rule) -> Path:
    if Store.is_store(out):
        return out
    store = Store.open(source)
    signal = _clip_signal(store, rule)
    position = {"row": 0}
    n_clips = len(signal)

    def transform(block: np.ndarray) -> np.ndarray:
        start = position["row"]
        position["row"] += len(block)
        if start >= n_clips:  # static rows come after every clip row
            return block
        return block.astype(np.float32) + signal[start:start + len(block)]

    write_transformed_store(store, out, transform, {"transform": "planted test signal"})
    return out


def tad_rule(times: np.ndarray, segments: np.ndarray, dim: int) -> np.ndarray:
    centres = times.mean(1)
    out = np.zeros((len(times), dim), dtype=np.float32)
    for start, end, label in segments:
        out[(centres >= start) & (centres < end), int(label)] += PLANT
    return out


def ad_rule(times: np.ndarray, segments: np.ndarray, dim: int) -> np.ndarray:
    out = np.zeros((len(times), dim), dtype=np.float32)
    for start, end, _ in segments:
        out[(times[:, 1] > start) & (times[:, 0] < end), 0] += PLANT
    return out


@pytest.fixture(scope="session")
def tad_store(synth_root) -> Path:
    folder = synth_root.parent / "tadad-stores"
    return _extract(synth_root / "manifests" / "synthetic-tad.jsonl", folder / "tad.zarr")


@pytest.fixture(scope="session")
def tad_planted_store(tad_store) -> Path:
    return _planted(tad_store, tad_store.parent / "tad-planted.zarr", tad_rule)


@pytest.fixture(scope="session")
def ad_store(synth_root) -> Path:
    folder = synth_root.parent / "tadad-stores"
    return _extract(synth_root / "manifests" / "synthetic-ad.jsonl", folder / "ad.zarr")


@pytest.fixture(scope="session")
def ad_planted_store(ad_store) -> Path:
    return _planted(ad_store, ad_store.parent / "ad-planted.zarr", ad_rule)
