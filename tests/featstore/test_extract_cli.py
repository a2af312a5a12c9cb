"""The extract / info / verify commands end to end, as a user runs them (fresh processes)."""

import shutil

import numpy as np
import zarr

from featstore.extract import ExtractConfig, extract
from featstore.sampling import SamplingConfig
from featstore.store import Store
from tests.conftest import run_cli


def all_arrays(path):
    group = zarr.open_group(str(path), mode="r")
    out = {}

    def walk(g, prefix):
        for name, member in g.members():
            if isinstance(member, zarr.Array):
                out[prefix + name] = member[...]
            else:
                walk(member, prefix + name + "/")

    walk(group, "")
    return out


def assert_same_arrays(a, b):
    left, right = all_arrays(a), all_arrays(b)
    assert sorted(left) == sorted(right)
    for name in left:
        assert left[name].dtype == right[name].dtype, name
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)


def test_cli_extract_info_verify_and_api_give_identical_arrays(trimmed_manifest, tiny_store, tmp_path):
    out = tmp_path / "cli.zarr"
    done = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(trimmed_manifest),
                   "--out", str(out), "--videos-per-part", "4")
    assert done.returncode == 0, done.stderr
    assert "90 videos" in done.stdout and "clips/s" in done.stdout + done.stderr
    assert_same_arrays(out, tiny_store)  # tiny_store came from the Python API with the same settings

    info = run_cli("featstore", "info", str(out))
    assert info.returncode == 0
    for fact in ("tiny-vit", "dim 192, float16", "synthetic", "90 (0 failed)", "clip_len 16", "resize short 73"):
        assert fact in info.stdout, fact
    verify = run_cli("featstore", "verify", str(out))
    assert verify.returncode == 0 and "OK" in verify.stdout

    again = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(trimmed_manifest),
                    "--out", str(out), "--videos-per-part", "4", "--no-progress")
    assert again.returncode == 0 and "0 parts computed" in again.stdout


def test_changed_sampling_is_refused_unless_overwrite(trimmed_manifest, tiny_store, tmp_path):
    out = tmp_path / "s.zarr"
    shutil.copytree(tiny_store, out)
    before = all_arrays(out)
    refused = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(trimmed_manifest),
                      "--out", str(out), "--videos-per-part", "4", "--stride", "8")
    assert refused.returncode == 2
    assert "sampling" in refused.stderr and "--overwrite" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    after = all_arrays(out)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing lost

    replaced = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(trimmed_manifest),
                       "--out", str(out), "--videos-per-part", "4", "--stride", "8", "--overwrite", "--no-progress")
    assert replaced.returncode == 0, replaced.stderr
    assert Store.open(out).provenance["sampling"]["stride"] == 8


def test_bad_inputs_get_one_line_and_exit_code_2(trimmed_manifest, tmp_path):
    cases = [
        (["--model", "nope", "--dataset", str(trimmed_manifest)], "unknown model"),
        (["--model", "tiny-vit", "--dataset", "nope"], "unknown dataset"),
        (["--model", "tiny-vit", "--dataset", "ucf101", "--data-root", str(tmp_path / "UCF101")], "UCF101"),
        (["--model", "tiny-vit", "--dataset", str(trimmed_manifest), "--clip-len", "8"], "16-frame clips"),
        (["--model", "tiny-vit", "--dataset", str(trimmed_manifest), "--dtype", "int8"], "--dtype"),
        (["--model", "tiny-vit", "--dataset", str(trimmed_manifest), "--tail", "wrap"], "tail rule"),
        (["--model", "tiny-vit", "--dataset", str(trimmed_manifest), "--weights", str(tmp_path / "w.pt")],
         "weights file not found"),
    ]
    for args, message in cases:
        done = run_cli("featstore", "extract", *args, "--out", str(tmp_path / "x.zarr"))
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not (tmp_path / "x.zarr").exists()


def test_missing_videos_are_named_before_anything_is_written(synth_root, tmp_path):
    data = tmp_path / "copy"
    shutil.copytree(synth_root, data)
    (data / "trimmed" / "trim_00003.mp4").unlink()
    done = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", "synthetic",
                   "--data-root", str(data), "--out", str(tmp_path / "x.zarr"))
    assert done.returncode == 2
    assert "1 of 90 files" in done.stderr and "trim_00003.mp4" in done.stderr
    assert not (tmp_path / "x.zarr").exists()


def test_out_that_is_not_a_store_is_left_alone(trimmed_manifest, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    done = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(trimmed_manifest),
                   "--out", str(precious), "--overwrite")
    assert done.returncode == 2 and "not a featstore store" in done.stderr
    assert (precious / "notes.txt").read_text() == "keep me"


def test_images_become_static_clips_only(synth_root, tmp_path):
    result = extract(ExtractConfig(model="tiny-vit", dataset=str(synth_root / "manifests" / "synthetic-images.jsonl"),
                                   out=str(tmp_path / "img.zarr")), show_progress=False)
    store = Store.open(result.store)
    assert result.n_clips == 0 and result.n_static == 12
    assert np.all(np.diff(store.static_offsets()) == 1)
    assert set(store.videos().decoder.tolist()) == {"pillow"}


def test_thumos_stride_and_fps_resampling(synth_root, tmp_path):
    manifest = synth_root / "manifests" / "synthetic-tad.jsonl"
    sampling = SamplingConfig(stride=4, fps=12.5, static_per_video=2)
    result = extract(ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(tmp_path / "tad.zarr"),
                                   sampling=sampling), show_progress=False)
    store = Store.open(result.store)
    table = store.videos()
    offsets, frames, times = store.clip_offsets(), store.array("clips/frames"), store.array("clips/times")
    for v in range(len(table)):
        n_ticks = int(np.ceil(table.n_frames[v] / table.fps[v] * 12.5 - 1e-9))
        n_clips = (n_ticks - 16) // 4 + 1
        assert offsets[v + 1] - offsets[v] == n_clips
        rows = slice(offsets[v], offsets[v + 1])
        np.testing.assert_allclose(times[rows][:, 0], np.arange(n_clips) * 4 / 12.5)
        np.testing.assert_allclose(times[rows][:, 1] - times[rows][:, 0], 16 / 12.5)
        np.testing.assert_array_equal(frames[rows][:, 0], np.arange(n_clips) * 8)  # 25 fps source, every 2nd frame
    assert len(store.videos().segments[0]) >= 2  # TAD segments travel into the table


def test_float32_option(trimmed_manifest, tiny_store, tmp_path):
    result = extract(ExtractConfig(model="tiny-vit", dataset=str(trimmed_manifest), out=str(tmp_path / "f32.zarr"),
                                   dtype="float32", videos_per_part=4), show_progress=False)
    f32 = Store.open(result.store).clip_embeddings[...]
    f16 = Store.open(tiny_store).clip_embeddings[...]
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32.astype(np.float16), f16)


def test_models_and_datasets_are_listed():
    models = run_cli("featstore", "models")
    assert models.returncode == 0 and "tiny-vit" in models.stdout
    datasets = run_cli("featstore", "datasets")
    assert datasets.returncode == 0
    for name in ("synthetic", "synthetic-tad", "synthetic-ad", "synthetic-images", "ucf101", "hmdb51"):
        assert name in datasets.stdout
