"""Shared fixtures and helpers: one tiny synthetic dataset and its stores (the trimmed part through two encoders,
small TAD / AD stores), built once per test session; running a command as a user does or in this process."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest

# Rich wraps console output at 80 columns when stdout is not a terminal; the tests read printed lines
# (paths included, whose length depends on the temporary folder), so they run on a wide console, set
# before any module creates one.
os.environ.setdefault("COLUMNS", "200")
# make test runs one test process per core: each, and every command it starts, runs torch on one intra-op
# thread (the models are small; two OpenMP threads per process on shared cores wait for each other and
# run several times slower). Set before torch is imported, which reads it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from featstore.extract import ExtractConfig, extract  # noqa: E402
from data_manifests.schema import Manifest, Segment, VideoRecord  # noqa: E402
from data_manifests.synth import SynthConfig, generate_synthetic  # noqa: E402
from featstore.store import (  # noqa: E402
    CLIP_TIMES,
    Part,
    StagingArea,
    Store,
    StoreContents,
    VideoResult,
    write_store,
    write_transformed_store,
)

TINY_SYNTH = SynthConfig(
    seed=3,
    train_per_class=8,  # 8 train subjects: their attribute codes are pairwise uncorrelated
    test_per_class=1,
    tad_train_videos=2,
    tad_test_videos=2,
    ad_train_videos=2,
    ad_test_videos=2,
    image_train=8,
    image_test=4,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a slow test first, each module's tests in their order.

    make test hands whole modules to its workers (--dist loadscope, --no-loadscope-reorder) in this order: the
    minutes-long modules start at once and the many short ones fill in after them, instead of one of them
    starting last and running alone.
    """
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    slow_modules = {module(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: module(item) not in slow_modules)


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` once per test session, however many xdist workers ask; the folder it filled.

    make test runs one worker per core and each worker holds its own session fixtures: without this, both
    workers generated the data and extracted the same stores. The first worker to ask builds under a lock,
    in the folder the workers share; the others wait for it and read the result. Tests only read these.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = shared / f"built-{name}", shared / f"built-{name}.done"
    with open(shared / f"built-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a build that failed left
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "synth",
                      lambda folder: generate_synthetic(folder, TINY_SYNTH, show_progress=False))


@pytest.fixture(scope="session")
def trimmed_manifest(synth_root) -> Path:
    return synth_root / "manifests" / "synthetic.jsonl"


@pytest.fixture(scope="session")
def few_manifest(trimmed_manifest, tmp_path_factory) -> Path:
    """The first 8 videos of the trimmed part: for runs that are killed and resumed, or repeated."""
    full = Manifest.load(trimmed_manifest)
    return Manifest(full.header, full.records[:8], full.root_dir).save(tmp_path_factory.mktemp("few") / "few.jsonl")


@pytest.fixture(scope="session")
def tiny_store(trimmed_manifest, tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "tiny", lambda folder: tiny_vit_store(
        trimmed_manifest, folder / "tiny.zarr")) / "tiny.zarr"


@pytest.fixture(scope="session")
def demo_store(synth_root, trimmed_manifest, tmp_path_factory) -> Path:
    """The tiny trimmed part through the demo encoder (pretrained demo-c3d): features with real signal."""

    def build(folder: Path) -> None:
        with one_torch_thread():
            extract(ExtractConfig(model="demo-c3d", dataset=str(trimmed_manifest), out=str(folder / "demo.zarr"),
                                  videos_per_part=16), show_progress=False)

    return built_once(tmp_path_factory, "demo", build) / "demo.zarr"


def tiny_vit_store(manifest: Path, out: Path) -> Path:
    """A manifest through the test encoder (tiny-vit), four videos per part."""
    extract(ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(out), videos_per_part=4),
            show_progress=False)
    return out


# ---------------------------------------------------------------------------------------------- TAD / AD stores
# The tiny TAD / AD parts for the TriDet / MGFN tests and the anonymizer's TAD / AD tasks. The planted copies
# add a known signal so a working head must score far above chance:
#
# - TAD: clips whose centre lies in a segment get +3 on dimension ``label`` (the segment's class).
# - AD: clips overlapping an anomalous interval get +3 on dimension 0.
#
# ``write_tad_array_store`` writes a TAD store straight from arrays (no videos, no encoder, milliseconds): for
# cases the extracted stores do not have, e.g. a test video whose decoding failed (no clips).
PLANT = 3.0


def clip_signal(store: Store, rule) -> np.ndarray:
    """(N_clips, D) additive signal: ``rule(clip_times, segments, dim)`` -> (n, D) per video."""
    offsets, times, table = store.clip_offsets(), store.array(CLIP_TIMES), store.videos()
    signal = np.zeros((int(offsets[-1]), store.dim), dtype=np.float32)
    for v in range(store.n_videos):
        rows = slice(int(offsets[v]), int(offsets[v + 1]))
        signal[rows] = rule(times[rows], table.segments[v], store.dim)
    return signal


def planted_clips(source: Path, out: Path, rule) -> Path:
    """A copy of ``source`` with ``rule``'s signal added to its clip rows (static rows unchanged)."""
    store = Store.open(source)
    signal = clip_signal(store, rule)
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
def tad_store(synth_root, tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "tad", lambda folder: tiny_vit_store(
        synth_root / "manifests" / "synthetic-tad.jsonl", folder / "tad.zarr")) / "tad.zarr"


@pytest.fixture(scope="session")
def tad_planted_store(tad_store, tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "tad-planted", lambda folder: planted_clips(
        tad_store, folder / "tad-planted.zarr", tad_rule)) / "tad-planted.zarr"


@pytest.fixture(scope="session")
def ad_store(synth_root, tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "ad", lambda folder: tiny_vit_store(
        synth_root / "manifests" / "synthetic-ad.jsonl", folder / "ad.zarr")) / "ad.zarr"


@pytest.fixture(scope="session")
def ad_planted_store(ad_store, tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "ad-planted", lambda folder: planted_clips(
        ad_store, folder / "ad-planted.zarr", ad_rule)) / "ad-planted.zarr"


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


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a console entry point as a user would (a fresh process), capturing its output."""
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


REPO = Path(__file__).resolve().parents[1]


def run_in_process(monkeypatch, capsys, program: str, *args: str) -> tuple[int, str, str]:
    """``PROGRAM ARGS`` in this process (no interpreter start-up), through the function its console script
    calls (pyproject.toml's [project.scripts]): exit code (0 for a normal return), stdout, stderr."""
    module, function = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"][program].split(":")
    main = getattr(importlib.import_module(module), function)
    monkeypatch.setattr(sys, "argv", [program, *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code or 0, captured.out, captured.err


@contextlib.contextmanager
def one_torch_thread():
    """Torch on one intra-op thread, as torchrun's ranks run it (OMP_NUM_THREADS=1).

    The models in the tests are small: one thread is as fast, and on a busy 2-core machine two
    OpenMP threads wait for each other and run several times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def single_thread():
    with one_torch_thread():
        yield
