"""`featstore verify` finds damage that reads back silently: absent chunks, damaged shard indexes,
NaN rows, out-of-range labels and attributes, identities that disagree with the arrays."""

import json
import shutil

import h5py
import numpy as np
import pytest
import zarr

from data_manifests.errors import FeatstoreError
from featstore.h5io import export_h5, import_h5
from featstore.store import DamagedStoreError, Store
from featstore.summary import verify_store
from tests.anonymize.conftest import structured_store
from tests.conftest import run_cli, write_tad_array_store


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory):
    return structured_store(tmp_path_factory.mktemp("verify") / "sound.zarr", n_videos=8)


@pytest.fixture()
def copy(sound_store, tmp_path):
    out = tmp_path / "damaged.zarr"
    shutil.copytree(sound_store, out)
    return out


def edit_attrs(store, edit):
    meta = json.loads((store / "zarr.json").read_text())
    edit(meta["attributes"])
    (store / "zarr.json").write_text(json.dumps(meta))


def test_sound_store_passes(sound_store):
    assert verify_store(sound_store) == []
    assert verify_store(sound_store, quick=True) == []


@pytest.mark.parametrize("name", ["clips/embeddings", "videos/label"])
def test_absent_chunk_is_found(copy, name):
    chunk = copy / name / "c" / "0" / "0" if name.endswith("embeddings") else copy / name / "c" / "0"
    chunk.unlink()
    problems = verify_store(copy, quick=True)
    assert len(problems) == 1 and "chunks are missing" in problems[0] and name in problems[0]


def test_damaged_shard_index_and_offsets_chunk_give_one_line(copy):
    shard = copy / "static/embeddings/c/0/0"
    raw = shard.read_bytes()
    shard.write_bytes(raw[:-8] + b"\0" * 8)
    assert verify_store(copy) == ["static/embeddings/c/0/0: the shard index is damaged (checksum mismatch)"]
    shard.write_bytes(raw)
    (copy / "clips/offsets/c/0").write_bytes(b"junk")
    [problem] = verify_store(copy)
    assert problem.startswith("cannot read clips/offsets:")
    done = run_cli("featstore", "verify", str(copy))
    assert done.returncode == 1 and "Traceback" not in done.stderr and "cannot read clips/offsets" in done.stderr


def test_nan_row_is_found_except_by_quick(copy):
    zarr.open_group(str(copy), mode="r+")["clips/embeddings"][5] = np.nan
    assert verify_store(copy) == ["clips/embeddings has 1 rows with NaN or Inf (first row 5)"]
    assert verify_store(copy, quick=True) == []
    done = run_cli("featstore", "verify", "--quick", str(copy))
    assert done.returncode == 0 and "OK" in done.stdout


def test_labels_and_attributes_out_of_range(copy):
    group = zarr.open_group(str(copy), mode="r+")
    group["videos/label"][2] = 3  # 3 class names
    group["videos/attributes"][1, 0] = 5
    problems = verify_store(copy, quick=True)
    assert any("videos/label: 1 labels outside -1..2" in p and "v000002" in p for p in problems)
    assert any("videos/attributes: 1 values outside -1, 0, 1" in p and "v000001" in p for p in problems)


def test_identity_must_match_arrays_and_provenance(copy):
    def edit(attrs):
        attrs["identity"].update(spec={"embed_dim": 99}, dtype="float32", model="other")
    edit_attrs(copy, edit)
    problems = verify_store(copy, quick=True)
    assert "identity.spec.embed_dim is 99 but the embeddings are 16 wide" in problems
    assert "identity.dtype is 'float32' but the embeddings are float16" in problems
    assert "identity.model is 'other' but provenance.encoder is 'arrays'" in problems


def test_rows_handed_to_the_wrong_video_are_found(copy):
    group = zarr.open_group(str(copy), mode="r+")
    offsets = group["clips/offsets"][...]
    offsets[1] += 1  # video 0 takes video 1's first clip
    group["clips/offsets"][...] = offsets
    assert any("v000000's rows are not in time order" in p for p in verify_store(copy, quick=True))


def test_import_refuses_broken_offsets_and_writes_nothing(sound_store, tmp_path):
    h5 = tmp_path / "x.h5"
    export_h5(sound_store, h5)
    with h5py.File(h5, "a") as handle:
        offsets = handle["clips/offsets"][...]
        offsets[1] += 1
        handle["clips/offsets"][...] = offsets
    out = tmp_path / "imported.zarr"
    with pytest.raises(FeatstoreError, match="not a sound featstore export: video v000000's rows are not in time order"):
        import_h5(h5, out)
    assert list(tmp_path.iterdir()) == [h5]
    done = run_cli("featstore", "import", str(h5), "--out", str(out))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "nothing was written" in done.stderr


def test_import_refuses_nan_rows(sound_store, tmp_path):
    h5 = tmp_path / "x.h5"
    export_h5(sound_store, h5)
    with h5py.File(h5, "a") as handle:
        handle["static/embeddings"][3] = np.inf
    with pytest.raises(FeatstoreError, match=r"static/embeddings has 1 rows with NaN or Inf \(first row 3\)"):
        import_h5(h5, tmp_path / "imported.zarr")
    assert list(tmp_path.iterdir()) == [h5]


@pytest.mark.parametrize("name", ["videos/label", "clips/times", "clips/embeddings"])
def test_a_flipped_byte_in_any_chunk_fails_its_checksum(copy, name):
    """Every chunk ends with a crc32c: a flipped byte is found, not read as other numbers. Embeddings
    are read only by the full check (the shard file's first bytes are its first inner chunk)."""
    chunk = sorted(path for path in (copy / name / "c").rglob("*") if path.is_file())[0]
    data = bytearray(chunk.read_bytes())
    data[2] ^= 0x01
    chunk.write_bytes(bytes(data))
    [problem] = verify_store(copy)
    assert problem.startswith(f"cannot read {name}:") and "checksum" in problem


def flip_first_chunk_byte(store, name):
    chunk = sorted(path for path in (store / name / "c").rglob("*") if path.is_file())[0]
    data = bytearray(chunk.read_bytes())
    data[2] ^= 0x01
    chunk.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["clips/embeddings", "videos/label", "clips/offsets"])
def test_readers_refuse_an_absent_chunk_instead_of_reading_zeros(copy, name):
    chunk = copy / name / "c" / "0" / "0" if name.endswith("embeddings") else copy / name / "c" / "0"
    chunk.unlink()
    store = Store.open(copy)
    with pytest.raises(DamagedStoreError, match=f"chunk {name}/c/0.* is missing"):
        store.load_embeddings() if name.endswith("embeddings") else store.array(name)


@pytest.mark.parametrize("name", ["clips/embeddings", "videos/label"])
def test_readers_fail_a_damaged_chunk_with_one_line(copy, name):
    flip_first_chunk_byte(copy, name)
    store = Store.open(copy)
    with pytest.raises(DamagedStoreError, match="fails its crc32c checksum"):
        store.load_embeddings() if name.endswith("embeddings") else store.array(name)


def test_protocols_stop_with_one_line_on_absent_or_damaged_chunks(copy):
    (copy / "clips/embeddings/c/0/0").unlink()
    done = run_cli("evaluate", "ar", "--store", str(copy), "--epochs", "1", "--out", str(copy.parent / "ar"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "clips/embeddings/c/0/0 is missing" in done.stderr


def test_protocols_stop_with_one_line_on_a_damaged_label_chunk(copy):
    flip_first_chunk_byte(copy, "videos/label")
    done = run_cli("evaluate", "ar", "--store", str(copy), "--epochs", "1", "--out", str(copy.parent / "ar"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "fails its crc32c checksum" in done.stderr


def test_segments_out_of_range_or_inverted_are_found(tmp_path):
    store = write_tad_array_store(tmp_path / "tad.zarr", [("train", 6, [[1, 3, 0], [2, 4, 1]]), ("test", 6, [[0, 2, 1]])],
                                  ["a", "b"])
    assert verify_store(store, quick=True) == []
    group = zarr.open_group(str(store), mode="r+")
    segments = group["videos/segments"][...]
    segments[1, 2] = 2  # 2 class names
    segments[2, :2] = [5, 1]
    group["videos/segments"][...] = segments
    problems = verify_store(store, quick=True)
    assert "videos/segments: 1 segments are not 0 <= start < end, first [5, 1] of video t0001" in problems
    assert "videos/segments: 1 labels outside 0..1 (the 2 class names), first 2 of video t0000" in problems
