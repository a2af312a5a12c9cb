"""A damaged staged part (torn, zero bytes, junk) is found on resume and computed again."""

import numpy as np
import pytest

from featstore.store import STAGING_DIR, DamagedPartError, Part, StagingArea, VideoResult
from tests.conftest import run_cli
from featstore.extract import ExtractConfig, extract
from featstore.sampling import SamplingConfig
from tests.conftest import one_torch_thread
from tests.featstore._killed import run_until_killed
from tests.featstore.test_extract_cli import assert_same_arrays

DIM = 6
# 8 videos -> 4 parts; few static clips keep the encoder's work small.
SETTINGS = {"videos_per_part": 2, "batch_size": 4, "sampling": SamplingConfig(static_per_video=2)}
CLI_SETTINGS = ["--videos-per-part", "2", "--batch-size", "4", "--static-per-video", "2", "--no-progress"]


def few_config(manifest, out) -> ExtractConfig:
    return ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(out), **SETTINGS)


def killed_extract_code(manifest, out, kill_at: str) -> str:
    """Code for run_until_killed: the extraction of ``few_config``, killed where ``kill_at`` is called."""
    return f"""
        import featstore.extract, featstore.store
        from featstore.sampling import SamplingConfig
        {kill_at} = kill_here
        featstore.extract.extract(featstore.extract.ExtractConfig(
            model="tiny-vit", dataset={str(manifest)!r}, out={str(out)!r}, videos_per_part=2, batch_size=4,
            sampling=SamplingConfig(static_per_video=2)), show_progress=False)
    """


@pytest.fixture(scope="module")
def few_reference(few_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("few-ref") / "ref.zarr"
    with one_torch_thread():
        extract(few_config(few_manifest, out), show_progress=False)
    return out


def damage(path, kind: str) -> None:
    raw = path.read_bytes()
    if kind == "truncated":  # what a copy cut short leaves
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "junk":
        path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    elif kind == "foreign npz":  # a whole archive, but not a part
        with open(path, "wb") as handle:
            np.savez(handle, something=np.arange(3))
    elif kind == "flipped byte":  # inside the embeddings: only the zip's CRC tells
        data = bytearray(raw)
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


def staged_part(tmp_path) -> StagingArea:
    staging = StagingArea(tmp_path / "s.zarr", DIM, "float16")
    staging.create()
    rng = np.random.default_rng(0)
    results = [
        VideoResult("a", decoder="pyav", n_frames=40, fps=25.0, duration=1.6,
                    clip_embeddings=rng.normal(size=(300, DIM)), clip_frames=np.zeros((300, 2), np.int64),
                    clip_times=np.zeros((300, 2)), static_embeddings=rng.normal(size=(2, DIM)),
                    static_frames=np.arange(2)),
        VideoResult("b", failed_reason="not a video"),
    ]
    staging.save_part(Part(0, results, {"rank": 0}))
    return staging


@pytest.mark.parametrize("kind, reason", [
    ("truncated", "unreadable (BadZipFile"),
    ("zero-byte", "zero bytes"),
    ("junk", "not an .npz archive"),
    ("foreign npz", "lacks video_ids"),
    ("flipped byte", "unreadable (BadZipFile: Bad CRC-32"),
])
def test_each_kind_of_damage_is_named(tmp_path, kind, reason):
    staging = staged_part(tmp_path)
    assert staging.verify_part(0)["video_ids"].tolist() == ["a", "b"]
    damage(staging.part_file(0), kind)
    with pytest.raises(DamagedPartError, match=reason.replace("(", r"\(")):
        staging.verify_part(0)


def test_a_part_of_another_width_or_dtype_is_damaged(tmp_path):
    staged_part(tmp_path)
    with pytest.raises(DamagedPartError, match=r"clip_embeddings has shape \(300, 6\), expected \(300, 8\)"):
        StagingArea(tmp_path / "s.zarr", 8, "float16").verify_part(0)
    with pytest.raises(DamagedPartError, match="clip_embeddings is float16, expected float32"):
        StagingArea(tmp_path / "s.zarr", DIM, "float32").verify_part(0)


def test_damaged_parts_are_named_by_finalize_and_recomputed_by_extract(few_manifest, few_reference, tmp_path):
    out = tmp_path / "damaged.zarr"
    run_until_killed(killed_extract_code(few_manifest, out, "featstore.extract.finalize_store"))  # all 4 staged
    staged = out / STAGING_DIR
    for index, kind in enumerate(["truncated", "zero-byte", "junk"]):
        damage(staged / StagingArea.part_name(index), kind)

    finalized = run_cli("featstore", "finalize", str(out))
    assert finalized.returncode == 2 and "Traceback" not in finalized.stderr, finalized.stderr
    takeover, error = finalized.stderr.strip().splitlines()  # the killed run's lock, then the one-line error
    assert takeover.startswith("note: taking over the lock")
    message = " ".join(error.split())
    assert "3 of 4 parts are missing or damaged (part-000000 (unreadable (BadZipFile" in message
    assert "part-000001 (zero bytes)" in message and "part-000002 (not an .npz archive)" in message

    resumed = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(few_manifest), "--out",
                      str(out), *CLI_SETTINGS)
    assert resumed.returncode == 0, resumed.stderr
    notes = [line for line in resumed.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "recomputing 3 damaged staged parts: part-000000 (unreadable" in notes[0]
    assert "part-000001 (zero bytes)" in notes[0] and "part-000002 (not an .npz archive)" in notes[0]
    assert "(3 parts computed, 1 reused)" in " ".join(resumed.stdout.split())
    assert not staged.exists()
    assert_same_arrays(out, few_reference)
