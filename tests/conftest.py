"""Shared fixtures: one tiny synthetic dataset and one store, built once per test session."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Rich wraps console output at 80 columns when stdout is not a terminal; the tests read printed lines
# (paths included, whose length depends on the temporary folder), so they run on a wide console, set
# before any module creates one.
os.environ.setdefault("COLUMNS", "200")

from featstore.extract import ExtractConfig, extract  # noqa: E402
from featstore.synth import SynthConfig, generate_synthetic

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


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(root, TINY_SYNTH, show_progress=False)
    return root


@pytest.fixture(scope="session")
def trimmed_manifest(synth_root) -> Path:
    return synth_root / "manifests" / "synthetic.jsonl"


@pytest.fixture(scope="session")
def tiny_store(synth_root, trimmed_manifest, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stores") / "tiny.zarr"
    extract(ExtractConfig(model="tiny-vit", dataset=str(trimmed_manifest), out=str(out), videos_per_part=4),
            show_progress=False)
    return out


@pytest.fixture(scope="session")
def demo_store(synth_root, trimmed_manifest, tmp_path_factory) -> Path:
    """The tiny trimmed part through the demo encoder (pretrained demo-c3d): features with real signal."""
    out = tmp_path_factory.mktemp("stores") / "demo.zarr"
    with one_torch_thread():
        extract(ExtractConfig(model="demo-c3d", dataset=str(trimmed_manifest), out=str(out), videos_per_part=16),
                show_progress=False)
    return out


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a console entry point as a user would (a fresh process), capturing its output."""
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


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
