"""Kill -9 at any moment, restart, and get the arrays of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from featstore.extract import ExtractConfig, extract
from featstore.store import STAGING_DIR, Store
from tests.featstore._killed import run_until_killed
from tests.featstore.test_extract_cli import assert_same_arrays

SETTINGS = ["--videos-per-part", "2", "--batch-size", "4"]


@pytest.fixture(scope="module")
def reference(trimmed_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.zarr"
    extract(ExtractConfig(model="tiny-vit", dataset=str(trimmed_manifest), out=str(out), videos_per_part=2,
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


@pytest.mark.parametrize("parts_before_kill", [1, 20, 44])
def test_kill_9_then_resume_equals_uninterrupted_run(trimmed_manifest, reference, tmp_path, parts_before_kill):
    """45 parts in all: the last case kills while the last part is computed (a kill at finalize is
    the next test: polling for the 45th part races the finalize that follows it on a busy machine)."""
    out = tmp_path / "killed.zarr"
    process = start_extract(trimmed_manifest, out)
    assert wait_for_parts(out, parts_before_kill, process), "the run ended before the planned kill"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with pytest.raises(Exception, match="unfinished extraction"):
        Store.open(out)

    resumed = extract(ExtractConfig(model="tiny-vit", dataset=str(trimmed_manifest), out=str(out), videos_per_part=2,
                                    batch_size=4), show_progress=False)
    assert resumed.parts_reused >= parts_before_kill - 1
    assert not (out / STAGING_DIR).exists()
    assert_same_arrays(out, reference)


def test_kill_9_at_finalize_then_resume_equals_uninterrupted_run(trimmed_manifest, reference, tmp_path):
    out = tmp_path / "killed.zarr"
    run_until_killed(f"""
        import featstore.extract as extract_module
        from featstore.extract import ExtractConfig
        extract_module.write_store = kill_here  # every part is staged; killed as finalize starts writing
        extract_module.extract(ExtractConfig(model="tiny-vit", dataset={str(trimmed_manifest)!r}, out={str(out)!r},
                                             videos_per_part=2, batch_size=4), show_progress=False)
    """)
    with pytest.raises(Exception, match="unfinished extraction"):
        Store.open(out)
    resumed = extract(ExtractConfig(model="tiny-vit", dataset=str(trimmed_manifest), out=str(out), videos_per_part=2,
                                    batch_size=4), show_progress=False)
    assert resumed.parts_reused == 45
    assert not (out / STAGING_DIR).exists()
    assert_same_arrays(out, reference)


def test_kill_at_random_moments(trimmed_manifest, reference, tmp_path):
    rng = np.random.default_rng(0)
    out = tmp_path / "random.zarr"
    for _ in range(3):
        process = start_extract(trimmed_manifest, out)
        time.sleep(float(rng.uniform(2.5, 5.0)))  # torch import takes ~2 s; kills land during the work
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    extract(ExtractConfig(model="tiny-vit", dataset=str(trimmed_manifest), out=str(out), videos_per_part=2,
                          batch_size=4), show_progress=False)
    assert_same_arrays(out, reference)


def test_a_torn_part_file_is_ignored(trimmed_manifest, reference, tmp_path):
    out = tmp_path / "torn.zarr"
    process = start_extract(trimmed_manifest, out)
    assert wait_for_parts(out, 3, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # What a kill in the middle of np.savez leaves behind: a half-written temporary file.
    (out / STAGING_DIR / "part-000099.npz.tmp").write_bytes(b"PK\x03\x04 half a zip")
    extract(ExtractConfig(model="tiny-vit", dataset=str(trimmed_manifest), out=str(out), videos_per_part=2,
                          batch_size=4), show_progress=False)
    assert_same_arrays(out, reference)
