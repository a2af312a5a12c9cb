"""Shared by the scale-out tests: a small manifest with one damaged video, its single-process store,
and ways to run the command line (in this process, or as torchrun ranks)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_manifests.schema import Manifest
from featstore.extract import ExtractConfig, extract
from featstore.sampling import SamplingConfig
from tests.conftest import one_torch_thread

# 7 videos -> 4 parts, batches cut across videos; few static clips keep the encoder's work small.
SETTINGS = {"videos_per_part": 2, "batch_size": 4, "sampling": SamplingConfig(static_per_video=2)}
CLI_SETTINGS = ["--videos-per-part", "2", "--batch-size", "4", "--static-per-video", "2", "--no-progress"]
BROKEN_ID = "trim_00003"

# Both test modules import these fixtures, which makes two session fixtures; they share one result.
_BUILT: dict[str, Path] = {}


def small_config(manifest: Path, out: str | Path, **changes) -> ExtractConfig:
    return ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(out), **{**SETTINGS, **changes})


@pytest.fixture(scope="session")
def small_manifest(trimmed_manifest, tmp_path_factory) -> Path:
    if "manifest" in _BUILT:
        return _BUILT["manifest"]
    full = Manifest.load(trimmed_manifest)
    folder = tmp_path_factory.mktemp("scaleout")
    # the videos are copied next to the manifest: every record path stays inside its data root
    records = []
    for record in full.records[:7]:
        name = f"{record.video_id}{full.resolve_path(record).suffix}"
        if record.video_id == BROKEN_ID:
            (folder / name).write_bytes(b"this is not a video\n")
        else:
            shutil.copyfile(full.resolve_path(record), folder / name)
        records.append(dataclasses.replace(record, path=name))
    assert records[3].video_id == BROKEN_ID
    _BUILT["manifest"] = Manifest(full.header, records, folder).save(folder / "small.jsonl")
    return _BUILT["manifest"]


@pytest.fixture(scope="session")
def small_reference(small_manifest, tmp_path_factory) -> Path:
    """The single-process, inline-decoding store every other way of running must reproduce."""
    if "reference" not in _BUILT:
        out = tmp_path_factory.mktemp("scaleout-ref") / "ref.zarr"
        with one_torch_thread():
            extract(small_config(small_manifest, out), show_progress=False)
        _BUILT["reference"] = out
    return _BUILT["reference"]


def cli_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``featstore ARGS`` as the console script does (run_app: errors -> one line, exit 2), in this process."""
    from featstore.cli import app, run_app

    monkeypatch.setattr(sys, "argv", ["featstore", *args])
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    try:
        run_app(app)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_torchrun(*args: str, nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node N -m featstore ARGS`` on the CPU (gloo)."""
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "featstore", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
