"""Unreadable, truncated, zero-byte and non-video files are recorded as failed; the rest finishes."""

import json
import shutil

import numpy as np

from featstore.store import Store
from featstore.summary import verify_store
from tests.conftest import run_cli, run_in_process


def damaged_copy(synth_root, tmp_path, n_videos=12):
    """A copy of the dataset with its trimmed part cut to the first ``n_videos`` (three extractions follow) and
    four of them damaged, each in another way."""
    data = tmp_path / "data"
    shutil.copytree(synth_root, data)
    manifest = data / "manifests" / "synthetic.jsonl"
    manifest.write_text("\n".join(manifest.read_text().splitlines()[: 1 + n_videos]) + "\n")
    trimmed = data / "trimmed"
    originals = {}
    for name in ("trim_00001.mp4", "trim_00004.mp4", "trim_00007.mp4", "trim_00010.mp4"):
        originals[name] = (trimmed / name).read_bytes()
    (trimmed / "trim_00001.mp4").write_bytes(b"")  # zero bytes
    (trimmed / "trim_00004.mp4").write_bytes(b"this is a text file, not a video\n")
    raw = originals["trim_00007.mp4"]
    (trimmed / "trim_00007.mp4").write_bytes(raw[: len(raw) // 2])  # truncated
    (trimmed / "trim_00010.mp4").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    return data, originals


def test_damaged_files_are_recorded_and_retried(synth_root, tmp_path, monkeypatch, capsys):
    data, originals = damaged_copy(synth_root, tmp_path)
    out = tmp_path / "store.zarr"
    args = ["featstore", "extract", "--model", "tiny-vit", "--dataset", "synthetic", "--data-root", str(data),
            "--out", str(out), "--no-progress"]
    first = run_cli(*args)  # as a user runs it; the runs after it in this process (no interpreter and torch start-up)
    assert first.returncode == 1, first.stderr
    assert "4 videos failed" in first.stderr
    for name in ("trim_00001", "trim_00004", "trim_00007", "trim_00010"):
        assert name in first.stderr

    store = Store.open(out)
    failed = {f["video_id"]: f["reason"] for f in store.failures}
    assert set(failed) == {"trim_00001", "trim_00004", "trim_00007", "trim_00010"}
    assert "zero-byte" in failed["trim_00001"]
    assert all(reason for reason in failed.values())
    offsets = store.clip_offsets()
    table = store.videos()
    for v, video_id in enumerate(table.video_id.tolist()):
        assert (offsets[v + 1] == offsets[v]) == (video_id in failed)
    assert verify_store(out) == []
    info = run_cli("featstore", "info", str(out))
    assert "4 failed" in info.stdout and "zero-byte" in info.stdout

    # A plain re-run keeps the failures (and says so); --retry-failed after a repair finishes them.
    code, _, err = run_in_process(monkeypatch, capsys, *args)
    assert code == 1 and "4 videos failed" in " ".join(err.split())
    for name, content in originals.items():
        (data / "trimmed" / name).write_bytes(content)
    code, _, err = run_in_process(monkeypatch, capsys, *args, "--retry-failed")
    assert code == 0, err
    assert Store.open(out).failures == []
    assert verify_store(out) == []


def test_verify_exit_codes(synth_root, tmp_path, tiny_store):
    broken = tmp_path / "b.zarr"
    shutil.copytree(tiny_store, broken)
    meta = json.loads((broken / "zarr.json").read_text())
    meta["attributes"]["failures"] = [{"video_id": "trim_00000", "path": "x", "reason": "pretend"}]
    (broken / "zarr.json").write_text(json.dumps(meta))
    done = run_cli("featstore", "verify", str(broken))
    assert done.returncode == 1 and "problem" in done.stderr
    missing = run_cli("featstore", "verify", str(tmp_path / "none.zarr"))
    assert missing.returncode == 2 and "no store" in missing.stderr
