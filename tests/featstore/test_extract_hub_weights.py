"""`featstore extract --weights org/name[@revision]`: weights from the local Hugging Face cache, recorded by id and
commit as well as by path and sha256; an id that is not cached is one line and exit code 2."""

from __future__ import annotations

from safetensors.torch import save_file

from featstore.encoders import create_encoder
from featstore.hashing import file_sha256
from featstore.store import Store
from tests.conftest import run_in_process
from tests.featstore._hub_cache import cache_model, commit_hash


def test_extract_with_a_cached_model_id_records_it(few_manifest, tmp_path, monkeypatch, capsys):
    repository = tmp_path / "repository"
    repository.mkdir()
    state = create_encoder("tiny-vit", seed=4).module.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, repository / "model.safetensors")
    snapshot = cache_model(tmp_path / "hub", "someone/tiny-vit", repository, commit_hash(0), refs=("v1",))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "hub.zarr"

    code, _, err = run_in_process(monkeypatch, capsys, "featstore", "extract", "--model", "tiny-vit", "--dataset",
                                  str(few_manifest), "--weights", "someone/tiny-vit@v1", "--out", str(out),
                                  "--no-progress")
    assert code == 0, err
    store = Store.open(out)
    assert store.provenance["weights"] == str(snapshot)
    assert store.provenance["weights_sha256"] == file_sha256(repository / "model.safetensors")
    assert store.provenance["weights_hub_model"] == {"repo_id": "someone/tiny-vit", "revision": "v1",
                                                     "commit": commit_hash(0)}
    code, shown, err = run_in_process(monkeypatch, capsys, "featstore", "info", "--store", str(out))
    assert code == 0, err
    assert f"someone/tiny-vit@{commit_hash(0)[:12]}" in shown  # info names the model by id and commit


def test_extract_with_a_model_id_not_cached_is_one_line(few_manifest, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "x.zarr"
    code, _, err = run_in_process(monkeypatch, capsys, "featstore", "extract", "--model", "tiny-vit", "--dataset",
                                  str(few_manifest), "--weights", "facebook/vjepa2-vitl-fpc64-256", "--out", str(out))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "'facebook/vjepa2-vitl-fpc64-256'" in err and str(tmp_path / "hub") in err
    assert not out.exists()
