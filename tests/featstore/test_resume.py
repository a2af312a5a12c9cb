"""Kill -9 at any moment, restart, and get the arrays of an uninterrupted run.

The runs extract ``few_manifest`` (8 videos, 2 per part: 4 parts), so every moment of a run is reached in
seconds: a part staged, the last part in progress, the finalize.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from featstore.extract import ExtractConfig, extract
from featstore.store import LOCK_SUFFIX, STAGING_DIR, Store
from tests.featstore._killed import run_until_killed
from tests.featstore.test_extract_cli import assert_same_arrays

SETTINGS = ["--videos-per-part", "2", "--batch-size", "4"]


@pytest.fixture(scope="module")
def reference(few_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.zarr"
    extract(ExtractConfig(model="tiny-vit", dataset=str(few_manifest), out=str(out), videos_per_part=2,
                          batch_size=4), show_progress=False)
    return out


def start_extract(manifest, out):
    return subprocess.Popen(
        [sys.executable, "-m", "featstore", "extract", "--model", "tiny-vit", "--dataset", str(manifest),
         "--out", str(out), "--no-progress", *SETTINGS],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_for_parts(out, n, process, limit=300.0):
    deadline = time.time() + limit
    while time.time() < deadline and process.poll() is None:
        if len(list((out / STAGING_DIR).glob("part-*.npz"))) >= n:
            return True
        time.sleep(0.01)
    return False


def wait_for_lock(out, process, limit=300.0):
    """Until ``process`` holds the writer lock of ``out``: its imports are done and its work begins."""
    lock = Path(f"{out}{LOCK_SUFFIX}")
    deadline = time.time() + limit
    while time.time() < deadline and process.poll() is None:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):  # absent, or being written
            if json.loads(lock.read_text())["pid"] == process.pid:
                return
        time.sleep(0.01)


@pytest.mark.parametrize("parts_before_kill", [1, 2, 3])
def test_kill_9_then_resume_equals_uninterrupted_run(few_manifest, reference, tmp_path, parts_before_kill):
    """4 parts in all: killed after the first part, in the middle, and while the last part is computed (a kill
    at finalize is the next test: polling for the 4th part races the finalize that follows it on a busy machine)."""
    out = tmp_path / "killed.zarr"
    process = start_extract(few_manifest, out)
    assert wait_for_parts(out, parts_before_kill, process), "the run ended before the planned kill"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with pytest.raises(Exception, match="unfinished extraction"):
        Store.open(out)

    resumed = extract(ExtractConfig(model="tiny-vit", dataset=str(few_manifest), out=str(out), videos_per_part=2,
                                    batch_size=4), show_progress=False)
    assert resumed.parts_reused >= parts_before_kill - 1
    assert not (out / STAGING_DIR).exists()
    assert_same_arrays(out, reference)


def test_kill_9_at_finalize_then_resume_equals_uninterrupted_run(few_manifest, reference, tmp_path):
    out = tmp_path / "killed.zarr"
    run_until_killed(f"""
        import featstore.extract as extract_module
        from featstore.extract import ExtractConfig
        extract_module.write_store = kill_here  # every part is staged; killed as finalize starts writing
        extract_module.extract(ExtractConfig(model="tiny-vit", dataset={str(few_manifest)!r}, out={str(out)!r},
                                             videos_per_part=2, batch_size=4), show_progress=False)
    """)
    with pytest.raises(Exception, match="unfinished extraction"):
        Store.open(out)
    resumed = extract(ExtractConfig(model="tiny-vit", dataset=str(few_manifest), out=str(out), videos_per_part=2,
                                    batch_size=4), show_progress=False)
    assert resumed.parts_reused == 4
    assert not (out / STAGING_DIR).exists()
    assert_same_arrays(out, reference)


def test_kill_at_random_moments(few_manifest, reference, tmp_path):
    """Three runs, each resuming the one before, killed at a random moment of their work."""
    rng = np.random.default_rng(0)
    out = tmp_path / "random.zarr"
    for _ in range(3):
        process = start_extract(few_manifest, out)
        # counted from the moment it holds the store's lock (the torch import before takes seconds, more on a
        # busy machine, and a kill there would test nothing); a whole run takes about 3 s from there
        wait_for_lock(out, process)
        time.sleep(float(rng.uniform(0.0, 3.0)))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    extract(ExtractConfig(model="tiny-vit", dataset=str(few_manifest), out=str(out), videos_per_part=2,
                          batch_size=4), show_progress=False)
    assert_same_arrays(out, reference)


def test_a_torn_part_file_is_ignored(few_manifest, reference, tmp_path):
    out = tmp_path / "torn.zarr"
    process = start_extract(few_manifest, out)
    assert wait_for_parts(out, 2, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # What a kill in the middle of np.savez leaves behind: a half-written temporary file.
    (out / STAGING_DIR / "part-000099.npz.tmp").write_bytes(b"PK\x03\x04 half a zip")
    extract(ExtractConfig(model="tiny-vit", dataset=str(few_manifest), out=str(out), videos_per_part=2,
                          batch_size=4), show_progress=False)
    assert_same_arrays(out, reference)
