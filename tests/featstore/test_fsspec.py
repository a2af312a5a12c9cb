"""Stores at fsspec URLs: extract, info, verify, resume and finalize through a local fsspec filesystem
(file://) and an in-memory one (memory://), giving the arrays of a local store."""

import importlib.util
import uuid

import fsspec
import pytest

import featstore.extract
from data_manifests.errors import FeatstoreError
from featstore.extract import extract, finalize_store
from featstore.store import STAGING_DIR, Store
from featstore.summary import verify_store
from tests.featstore._scaleout import (  # noqa: F401  (fixtures)
    BROKEN_ID,
    CLI_SETTINGS,
    cli_in_process,
    small_config,
    small_manifest,
    small_reference,
)
from tests.featstore.test_extract_cli import assert_same_arrays

pytestmark = pytest.mark.usefixtures("single_thread")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_file_url_extract_info_verify(small_manifest, small_reference, tmp_path, monkeypatch, capsys):
    url = "file://" + str(tmp_path / "remote.zarr")
    code, out, err = cli_in_process(monkeypatch, capsys, "extract", "--model", "tiny-vit", "--dataset",
                                    str(small_manifest), "--out", url, *CLI_SETTINGS)
    assert code == 1 and "1 videos failed" in flat(err) and BROKEN_ID in err  # the damaged video, recorded
    assert f"{url}: 7 videos" in flat(out)
    assert_same_arrays(tmp_path / "remote.zarr", small_reference)  # the same bytes as a local store
    assert Store.open(url).failures == Store.open(small_reference).failures
    assert not [p for p in (tmp_path / "remote.zarr").rglob("*") if ".tmp" in p.name]

    code, out, _ = cli_in_process(monkeypatch, capsys, "info", url)
    assert code == 0 and "tiny-vit" in out and "7 (1 failed)" in flat(out) and BROKEN_ID in out
    code, out, _ = cli_in_process(monkeypatch, capsys, "verify", url)
    assert code == 0 and f"{url}: OK" in flat(out)
    again = extract(small_config(small_manifest, url), show_progress=False)
    assert again.parts_computed == 0 and again.parts_reused == 0  # up to date: nothing to do


def test_memory_url_resume_after_a_kill_and_finalize(small_manifest, small_reference, monkeypatch):
    name = f"scaleout-{uuid.uuid4().hex}.zarr"
    url = f"memory://{name}"
    fs = fsspec.filesystem("memory")

    def killed(out, settle_seconds=0.0):
        raise KeyboardInterrupt  # the job stops after staging every part, before finalizing

    try:
        with monkeypatch.context() as patch:
            patch.setattr(featstore.extract, "finalize_store", killed)
            with pytest.raises(KeyboardInterrupt):
                extract(small_config(small_manifest, url), show_progress=False)
        staged = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"/{name}/{STAGING_DIR}", detail=False))
        assert staged == ["manifest.jsonl", *(f"part-{i:06d}.npz" for i in range(4)), "run.json"]

        # A part lost with its rank, and the temporary object a killed write leaves.
        fs.rm(f"/{name}/{STAGING_DIR}/part-000002.npz")
        fs.pipe(f"/{name}/{STAGING_DIR}/part-000003.npz.tmp", b"PK\x03\x04 half an upload")
        with pytest.raises(FeatstoreError, match=r"1 of 4 parts are missing \(part-000002\)"):
            finalize_store(url)
        with pytest.raises(FeatstoreError, match="unfinished extraction"):
            Store.open(url)

        resumed = extract(small_config(small_manifest, url), show_progress=False)
        assert (resumed.parts_computed, resumed.parts_reused) == (1, 3)
        assert not fs.exists(f"/{name}/{STAGING_DIR}")
        assert_same_arrays(url, small_reference)
        assert verify_store(url) == []
        assert finalize_store(url) is None  # already complete
    finally:
        if fs.exists(f"/{name}"):
            fs.rm(f"/{name}", recursive=True)


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed here")
def test_s3_url_without_s3fs_is_a_one_line_error():
    with pytest.raises(FeatstoreError, match="s3fs"):
        Store.open("s3://some-bucket/features.zarr")
