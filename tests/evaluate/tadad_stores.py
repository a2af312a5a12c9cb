"""Small TAD / AD stores for the TriDet / MGFN tests, built once per test session next to ``synth_root``.

Import the fixtures into a test module (``from tests.evaluate.tadad_stores import tad_store``). Each builder
checks whether its store already exists under the session's synthetic folder, so several modules share one
extraction. The planted copies add a known signal so a working head must score far above chance:

- TAD: clips whose centre lies in a segment get +3 on dimension ``label`` (the segment's class).
- AD: clips overlapping an anomalous interval get +3 on dimension 0.

``write_tad_array_store`` writes a TAD store straight from arrays (no videos, no encoder, milliseconds): for
cases the extracted stores do not have, e.g. a test video whose decoding failed (no clips).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from data_manifests.schema import Segment, VideoRecord
from featstore.extract import ExtractConfig, extract
from featstore.store import Part, StagingArea, Store, StoreContents, VideoResult, write_store, write_transformed_store

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


def write_tad_array_store(out: Path, videos: list[tuple[str, int, list]], class_names: list[str], dim: int = 8,
                          seed: int = 0) -> Path:
    """A TAD store from arrays: one video per ``(split, n_clips, [[start_s, end_s, label], ...])``.

    Clip g covers [g, g + 1) seconds (16 frames at 16 fps, non-overlapping); its embedding is Gaussian noise
    (std 0.3) plus ``PLANT`` on dimension ``label`` when its centre lies in a segment of that class.
    ``n_clips == 0``: the video's decoding failed, so it has annotations but no clips.
    """
    rng = np.random.default_rng(seed)
    records, results = [], []
    for index, (split, n_clips, segments) in enumerate(videos):
        video_id = f"t{index:04d}"
        segments = np.asarray(segments, dtype=np.float64).reshape(-1, 3)
        records.append(VideoRecord(video_id=video_id, path=f"{video_id}.mp4", split=split,
                                   segments=[Segment(float(s), float(e), int(lab)) for s, e, lab in segments],
                                   fps=16.0, duration=float(max(n_clips, 1)), n_frames=16 * max(n_clips, 1)))
        if n_clips == 0:
            results.append(VideoResult(video_id=video_id, failed_reason="could not decode"))
            continue
        times = np.stack([np.arange(n_clips), np.arange(n_clips) + 1], axis=1).astype(np.float64)
        clips = rng.normal(0, 0.3, (n_clips, dim)) + tad_rule(times, segments, dim)
        results.append(VideoResult(
            video_id=video_id, decoder="arrays", n_frames=16 * n_clips, fps=16.0, duration=float(n_clips),
            clip_embeddings=clips.astype(np.float16), clip_frames=(16 * times).astype(np.int64), clip_times=times,
            static_embeddings=clips[:2].astype(np.float16), static_frames=np.array([0, 16], dtype=np.int64)))
    header = {"manifest": "featstore-manifest", "version": 1, "name": "tad-arrays", "task": "tad",
              "class_names": list(class_names), "attribute_names": [], "root": ".", "description": "tad arrays"}
    attrs = {"identity": {"model": "arrays", "weights_sha256": "0" * 64}, "config": {"source": "tests"},
             "provenance": {"encoder": "arrays", "weights": "tad arrays", "weights_sha256": "0" * 64},
             "dataset": {"header": header, "fingerprint": f"tad-arrays-{seed}", "source": None, "n_videos": len(records)}}
    with tempfile.TemporaryDirectory() as staging_dir:
        staging = StagingArea(Path(staging_dir), dim, "float16")
        staging.root.mkdir(parents=True)
        staging.save_part(Part(0, results))
        write_store(out, StoreContents(records, [], attrs), staging, 1)
    return Path(out)
