"""One writer per store: a second one stops with one line naming the first; a killed writer's lock is taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest

from data_manifests.errors import FeatstoreError
from featstore.extract import extract
from featstore.store import LOCK_SUFFIX, STAGING_DIR, StoreLock
from tests.conftest import run_cli
from tests.featstore._killed import REPO, folder_files, run_until_killed
from tests.featstore.test_extract_cli import assert_same_arrays
from tests.featstore.test_staged_parts import (  # noqa: F401  (fixtures)
    CLI_SETTINGS,
    few_config,
    few_reference,
    killed_extract_code,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def hold_lock(out) -> subprocess.Popen:
    """Another process holding the store's lock until its stdin closes."""
    code = (f"import sys; from featstore.store import StoreLock\n"
            f"with StoreLock({str(out)!r}):\n    print('held', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=REPO)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_stops_with_one_line_naming_the_first(few_manifest, few_reference, tmp_path):
    out = tmp_path / "busy.zarr"
    extract_args = ["featstore", "extract", "--model", "tiny-vit", "--dataset", str(few_manifest), "--out", str(out),
                    *CLI_SETTINGS]
    holder = hold_lock(out)
    try:
        for args in (extract_args, [*extract_args, "--overwrite", "--dtype", "float32"], ["featstore", "finalize", str(out)]):
            done = run_cli(*args)
            assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
            assert len(done.stderr.strip().splitlines()) == 1
            message = " ".join(done.stderr.split())
            assert f"pid {holder.pid} on host {socket.gethostname()}, since 20" in message
            assert f"delete {out}{LOCK_SUFFIX} if that process is gone" in message
            assert not out.exists()  # nothing written
    finally:
        holder.stdin.close()
        holder.wait()
    assert not (tmp_path / f"busy.zarr{LOCK_SUFFIX}").exists()  # released on exit

    done = run_cli(*extract_args)
    assert done.returncode == 0, done.stderr
    assert_same_arrays(out, few_reference)
    assert not (tmp_path / f"busy.zarr{LOCK_SUFFIX}").exists()


def test_overwrite_cannot_delete_a_running_writers_parts(few_manifest, tmp_path):
    out = tmp_path / "staged.zarr"
    run_until_killed(killed_extract_code(few_manifest, out, "featstore.extract.finalize_store"))
    holder = hold_lock(out)  # takes over the killed run's lock, as a resumed run would
    try:
        before = folder_files(out)
        done = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(few_manifest), "--out",
                       str(out), *CLI_SETTINGS, "--overwrite", "--dtype", "float32")
        assert done.returncode == 2 and "being written by another process" in done.stderr, done.stderr
        assert folder_files(out) == before
    finally:
        holder.stdin.close()
        holder.wait()


def test_a_killed_writers_lock_is_taken_over(few_manifest, few_reference, tmp_path, capsys):
    out = tmp_path / "killed.zarr"
    run_until_killed(killed_extract_code(few_manifest, out, "featstore.store.StagingArea.save_part"))
    lock = tmp_path / f"killed.zarr{LOCK_SUFFIX}"
    stale = json.loads(lock.read_text())
    assert stale["host"] == socket.gethostname() and stale["pid"] != os.getpid()

    capsys.readouterr()
    extract(few_config(few_manifest, out), show_progress=False)
    err = capsys.readouterr().err
    assert f"note: taking over the lock {lock} of pid {stale['pid']} on host {stale['host']}" in err
    assert len(err.strip().splitlines()) == 1
    assert not lock.exists() and not (out / STAGING_DIR).exists()
    assert_same_arrays(out, few_reference)


def test_the_lock_is_released_when_extract_fails(few_manifest, few_reference, tmp_path):
    out = tmp_path / "ref.zarr"
    out.mkdir()
    (out / "notes.txt").write_text("not a store")
    for _ in range(2):  # the second attempt meets the same error, not a leftover lock
        with pytest.raises(FeatstoreError, match="not a featstore store"):
            extract(few_config(few_manifest, out), show_progress=False)
    assert not (tmp_path / f"ref.zarr{LOCK_SUFFIX}").exists()


def test_a_lock_from_another_host_is_not_taken_over(tmp_path):
    lock = tmp_path / f"s.zarr{LOCK_SUFFIX}"
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "2025-01-01T00:00:00+00:00"}))
    with pytest.raises(FeatstoreError, match="pid 1 on host elsewhere, since 2025-01-01"):
        StoreLock(tmp_path / "s.zarr").acquire()
    assert lock.exists()
    with StoreLock(tmp_path / "t.zarr"), StoreLock(tmp_path / "t.zarr"):  # re-entrant in one process
        assert (tmp_path / f"t.zarr{LOCK_SUFFIX}").exists()
    assert not (tmp_path / f"t.zarr{LOCK_SUFFIX}").exists()
