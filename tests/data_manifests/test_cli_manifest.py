"""`featstore manifest DATASET --data-root R --out FILE.jsonl`: the manifest `extract --dataset` would read."""

from __future__ import annotations

from data_manifests.registry import resolve_dataset
from data_manifests.schema import Manifest
from tests.conftest import run_cli
from tests.data_manifests.test_builders_thumos14_formats import write_official

THUMOS_VIDEOS = ("validation/video_validation_0000051.mp4", "test/video_test_0000004.mp4",
                 "test/video_test_0001292.mp4")


def thumos_root(tmp_path):
    root = write_official(tmp_path / "TH14")
    for rel in THUMOS_VIDEOS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    return root


def one_line_error(done) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


def test_manifest_command_writes_the_builders_manifest(tmp_path):
    root = thumos_root(tmp_path)
    out = tmp_path / "elsewhere" / "thumos14.jsonl"
    done = run_cli("featstore", "manifest", "thumos14", "--data-root", str(root), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout.replace("\n", "")
    written = Manifest.load(out)
    written.check_files()  # the root is rewritten relative to the new file: records still resolve
    built = resolve_dataset("thumos14", data_root=root)
    assert [r.to_json() for r in written.records] == [r.to_json() for r in built.records]
    assert written.header.class_names == built.header.class_names and written.fingerprint() == built.fingerprint()
    assert not list(out.parent.glob("*.tmp"))
    # the written file is itself a --dataset
    assert resolve_dataset(str(out)).fingerprint() == built.fingerprint()


def test_manifest_command_refusals_are_one_line(tmp_path):
    root = thumos_root(tmp_path)
    out = tmp_path / "m.jsonl"
    error = one_line_error(run_cli("featstore", "manifest", "thumos-14", "--data-root", str(root), "--out", str(out)))
    assert "unknown dataset 'thumos-14'" in error and "thumos14" in error and "ucf101" in error
    error = one_line_error(run_cli("featstore", "manifest", "thumos14", "--data-root", str(tmp_path / "nope"),
                                   "--out", str(out)))
    assert f"--data-root {tmp_path / 'nope'} is not a folder" in error
    error = one_line_error(run_cli("featstore", "manifest", "thumos14", "--data-root", str(root),
                                   "--out", str(tmp_path)))
    assert f"--out {tmp_path} is a folder" in error
    error = one_line_error(run_cli("featstore", "manifest", "ucf101", "--data-root", str(root), "--out", str(out),
                                   "--fold", "9"))
    assert "UCF101 fold must be one of [1, 2, 3]" in error
    assert not out.exists()
    out.write_text("keep me\n")
    error = one_line_error(run_cli("featstore", "manifest", "thumos14", "--data-root", str(root), "--out", str(out)))
    assert f"--out {out} already exists; pass --overwrite" in error and out.read_text() == "keep me\n"
    done = run_cli("featstore", "manifest", "thumos14", "--data-root", str(root), "--out", str(out), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert Manifest.load(out).header.name == "thumos14"
