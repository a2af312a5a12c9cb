import h5py
import numpy as np
import pytest

from data_manifests.errors import FeatstoreError
from featstore.h5io import ATTRS_KEY, export_h5, import_h5
from featstore.store import STAGING_DIR, Store
from featstore.summary import open_for_info
from tests.conftest import run_cli
from tests.featstore._killed import run_until_killed
from tests.featstore.test_extract_cli import all_arrays, assert_same_arrays


def test_h5_round_trip_is_exact(tiny_store, tmp_path):
    h5 = export_h5(tiny_store, tmp_path / "f.h5")
    back = import_h5(h5, tmp_path / "back.zarr")
    assert_same_arrays(back, tiny_store)
    original, imported = Store.open(tiny_store).attrs, Store.open(back).attrs
    for key in ("identity", "config", "provenance", "dataset", "failures"):
        assert imported[key] == original[key], key
    with h5py.File(h5, "r") as handle:
        np.testing.assert_array_equal(handle["clips/embeddings"][...], Store.open(tiny_store).clip_embeddings[...])
        assert handle["videos/video_id"].asstr()[0] == "trim_00000"


def test_cli_and_api_round_trips_agree(tiny_store, tmp_path):
    assert run_cli("featstore", "export", str(tiny_store), "--format", "h5", "--out", str(tmp_path / "c.h5")).returncode == 0
    done = run_cli("featstore", "import", str(tmp_path / "c.h5"), "--out", str(tmp_path / "c.zarr"))
    assert done.returncode == 0, done.stderr
    api = import_h5(export_h5(tiny_store, tmp_path / "a.h5"), tmp_path / "a.zarr")
    assert_same_arrays(tmp_path / "c.zarr", api)
    assert run_cli("featstore", "verify", str(tmp_path / "c.zarr")).returncode == 0


def test_import_refuses_bad_files_and_keeps_existing_stores(tiny_store, tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["features"] = np.zeros((3, 4))
    with pytest.raises(FeatstoreError, match="not in the featstore HDF5 layout"):
        import_h5(tmp_path / "other.h5", tmp_path / "x.zarr")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(FeatstoreError, match="not a readable HDF5"):
        import_h5(tmp_path / "text.h5", tmp_path / "x.zarr")
    before = all_arrays(tiny_store)
    with pytest.raises(FeatstoreError, match="already exists"):
        import_h5(export_h5(tiny_store, tmp_path / "ok.h5"), tiny_store)
    after = all_arrays(tiny_store)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    done = run_cli("featstore", "export", str(tiny_store), "--format", "parquet", "--out", str(tmp_path / "p"))
    assert done.returncode == 2 and "unknown export format" in done.stderr


@pytest.mark.parametrize("attrs, problem", [("{not json", "is not valid JSON"), ("[1, 2]", "must hold a JSON object"),
                                            ('{"failures": [{"video_id": "a"}]}', '"failures" must be a list')])
def test_bad_json_attributes_are_one_line_and_keep_the_existing_store(tiny_store, tmp_path, attrs, problem):
    h5 = export_h5(tiny_store, tmp_path / "bad.h5")
    with h5py.File(h5, "a") as handle:
        handle.attrs[ATTRS_KEY] = attrs
    existing = import_h5(export_h5(tiny_store, tmp_path / "ok.h5"), tmp_path / "kept.zarr")
    with pytest.raises(FeatstoreError, match=problem):
        import_h5(h5, existing, overwrite=True)  # refused before the existing store is touched
    assert_same_arrays(existing, tiny_store)
    done = run_cli("featstore", "import", str(h5), "--out", str(tmp_path / "new.zarr"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert problem in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5", "kept.zarr", "ok.h5"]


def test_killed_import_is_rerun_without_overwrite(tiny_store, tmp_path):
    h5, out = export_h5(tiny_store, tmp_path / "f.h5"), tmp_path / "back.zarr"
    run_until_killed(f"""
        from featstore import h5io
        h5io.write_store = kill_here  # the parts are staged; the arrays are not written yet
        h5io.import_h5({str(h5)!r}, {str(out)!r})
    """)
    [leftover] = [p for p in tmp_path.iterdir() if p.name.startswith("back.zarr.partial-")]
    assert not out.exists()
    with pytest.raises(FeatstoreError, match=r"interrupted `featstore import` into .*back\.zarr, not a store"):
        open_for_info(leftover)
    assert_same_arrays(import_h5(h5, out), tiny_store)
    assert not leftover.exists()


def test_an_import_killed_in_place_by_an_earlier_version_is_replaced(tiny_store, tmp_path):
    h5, out = export_h5(tiny_store, tmp_path / "f.h5"), tmp_path / "back.zarr"
    (out / STAGING_DIR).mkdir(parents=True)  # what the import used to leave at OUT: parts, no run.json
    (out / STAGING_DIR / "part-000000.npz").write_bytes(b"")
    with pytest.raises(FeatstoreError, match="interrupted `featstore import`"):
        open_for_info(out)
    assert_same_arrays(import_h5(h5, out), tiny_store)
