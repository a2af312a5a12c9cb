"""The extract / info / verify commands end to end, as a user runs them (fresh processes; the bad-input
cases but one in this process)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from featstore.cli import app
from data_manifests.errors import FeatstoreError
from featstore.extract import ExtractConfig, extract
from featstore.sampling import SamplingConfig, static_frame_indices
from featstore.store import Store
from tests.conftest import run_cli, run_in_process


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


def test_cli_extract_info_verify_and_api_give_identical_arrays(trimmed_manifest, tmp_path):
    manifest, out, api = first_videos(trimmed_manifest, tmp_path, n=10), tmp_path / "cli.zarr", tmp_path / "api.zarr"
    done = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(manifest),
                   "--out", str(out), "--videos-per-part", "4")
    assert done.returncode == 0, done.stderr
    assert "10 videos" in done.stdout and "clips/s" in done.stdout + done.stderr
    extract(ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(api), videos_per_part=4),
            show_progress=False)
    assert_same_arrays(out, api)

    info = run_cli("featstore", "info", str(out))
    assert info.returncode == 0
    for fact in ("tiny-vit", "dim 192, float16", "synthetic", "10 (0 failed)", "clip_len 16", "resize short 73"):
        assert fact in info.stdout, fact
    verify = run_cli("featstore", "verify", str(out))
    assert verify.returncode == 0 and "OK" in verify.stdout

    again = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(manifest),
                    "--out", str(out), "--videos-per-part", "4", "--no-progress")
    assert again.returncode == 0 and "0 parts computed" in again.stdout


def test_changed_sampling_is_refused_unless_overwrite(trimmed_manifest, tmp_path):
    manifest, out = first_videos(trimmed_manifest, tmp_path), tmp_path / "s.zarr"
    extract(ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(out), videos_per_part=4),
            show_progress=False)
    before = all_arrays(out)
    refused = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(manifest),
                      "--out", str(out), "--videos-per-part", "4", "--stride", "8")
    assert refused.returncode == 2
    assert "sampling" in refused.stderr and "--overwrite" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    after = all_arrays(out)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing lost

    replaced = run_cli("featstore", "extract", "--model", "tiny-vit", "--dataset", str(manifest),
                       "--out", str(out), "--videos-per-part", "4", "--stride", "8", "--overwrite", "--no-progress")
    assert replaced.returncode == 0, replaced.stderr
    assert Store.open(out).provenance["sampling"]["stride"] == 8
    assert Store.open(out).clip_embeddings.shape[0] > len(before["clips/embeddings"])  # more clips: re-extracted


def test_bad_inputs_get_one_line_and_exit_code_2(trimmed_manifest, tmp_path, monkeypatch, capsys):
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
    # the first in a fresh process as a user runs it, the others in this one (no interpreter and torch start-up)
    for index, (args, message) in enumerate(cases):
        if index == 0:
            done = run_cli("featstore", "extract", *args, "--out", str(tmp_path / "x.zarr"))
            code, err = done.returncode, done.stderr
        else:
            code, _, err = run_in_process(monkeypatch, capsys, "featstore", "extract", *args, "--out",
                                          str(tmp_path / "x.zarr"))
        assert code == 2, (args, err)
        assert message in err, (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
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


def test_float32_option(few_manifest, tiny_store, tmp_path):
    # the first 8 videos: the same rows as the start of tiny_store (the whole part extracted in float16)
    result = extract(ExtractConfig(model="tiny-vit", dataset=str(few_manifest), out=str(tmp_path / "f32.zarr"),
                                   dtype="float32", videos_per_part=4), show_progress=False)
    f32 = Store.open(result.store).clip_embeddings[...]
    f16 = Store.open(tiny_store).clip_embeddings[: len(f32)]
    assert f32.dtype == np.float32 and Store.open(result.store).n_videos == 8
    np.testing.assert_array_equal(f32.astype(np.float16), f16)


def test_models_and_datasets_are_listed():
    models = run_cli("featstore", "models")
    assert models.returncode == 0 and "tiny-vit" in models.stdout
    datasets = run_cli("featstore", "datasets")
    assert datasets.returncode == 0
    for name in ("synthetic", "synthetic-tad", "synthetic-ad", "synthetic-images", "ucf101", "hmdb51"):
        assert name in datasets.stdout


def first_videos(manifest, folder, n=3):
    """The first ``n`` videos of a manifest as a manifest of their own (a fast extraction)."""
    lines = manifest.read_text().splitlines()
    header = json.loads(lines[0])
    header["root"] = str((manifest.parent / header["root"]).resolve())
    path = folder / "first.jsonl"
    path.write_text("\n".join([json.dumps(header), *lines[1 : n + 1]]) + "\n")
    return path


def test_linspace_static_frames_are_the_authors_and_recorded(trimmed_manifest, tmp_path):
    manifest, out = first_videos(trimmed_manifest, tmp_path), tmp_path / "linspace.zarr"
    args = ["extract", "--model", "tiny-vit", "--dataset", str(manifest), "--static-per-video", "4", "--no-progress"]
    runner = CliRunner()  # in-process: the command's code path without a fresh interpreter per call
    done = runner.invoke(app, [*args, "--out", str(out), "--positions", "linspace"])
    assert done.exit_code == 0, done.output
    store = Store.open(out)
    offsets, frames = store.static_offsets(), store.array("static/frames")
    for v, n_frames in enumerate(store.videos().n_frames):
        assert frames[offsets[v] : offsets[v + 1]].tolist() == np.linspace(0, n_frames - 1, 4).astype(int).tolist()
    for record in (store.provenance, store.config, store.identity):
        assert record["sampling"]["static_positions"] == "linspace"
    assert "static_positions linspace" in runner.invoke(app, ["info", str(out)], env={"COLUMNS": "200"}).output

    with pytest.raises(FeatstoreError, match="sampling"):  # centres, the default: other static frames
        extract(ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(out),
                              sampling=SamplingConfig(static_per_video=4)), show_progress=False)
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "x.zarr"), "--positions", "middle"])
    assert isinstance(bad.exception, FeatstoreError)  # run_app turns it into one line and exit code 2
    assert "positions must be one of ['centres', 'linspace'], got 'middle'" in str(bad.exception)
    assert not (tmp_path / "x.zarr").exists()


def test_a_store_without_the_recorded_rule_reads_as_centres(trimmed_manifest, tmp_path):
    manifest, out = first_videos(trimmed_manifest, tmp_path), tmp_path / "old.zarr"
    config = ExtractConfig(model="tiny-vit", dataset=str(manifest), out=str(out),
                           sampling=SamplingConfig(static_per_video=4))
    extract(config, show_progress=False)
    store = Store.open(out)
    offsets, frames = store.static_offsets(), store.array("static/frames")
    for v, n_frames in enumerate(store.videos().n_frames):
        assert frames[offsets[v] : offsets[v + 1]].tolist() == static_frame_indices(n_frames, 4).tolist()
    # as a store written before the rule was recorded: no static_positions anywhere
    group = zarr.open_group(str(out), mode="r+")
    attrs = group.attrs.asdict()
    for key in ("identity", "config", "provenance"):
        del attrs[key]["sampling"]["static_positions"]
    group.attrs.put(attrs)
    before = all_arrays(out)

    again = extract(config, show_progress=False)  # the same settings: up to date, nothing recomputed
    assert again.parts_computed == 0
    assert all(np.array_equal(before[k], v) for k, v in all_arrays(out).items())
    assert "static_positions centres" in CliRunner().invoke(app, ["info", str(out)], env={"COLUMNS": "200"}).output
    with pytest.raises(FeatstoreError, match="sampling"):
        extract(dataclasses.replace(config, sampling=SamplingConfig(static_per_video=4, static_positions="linspace")),
                show_progress=False)


def test_record_paths_outside_the_root_need_allow_outside_root(trimmed_manifest, tmp_path):
    from data_manifests.schema import Manifest

    source = Manifest.load(trimmed_manifest)
    records = [dataclasses.replace(r, path=str(source.resolve_path(r))) for r in source.records[:2]]
    manifest = Manifest(source.header, records, tmp_path / "root").save(tmp_path / "m.jsonl")
    args = ("featstore", "extract", "--model", "tiny-vit", "--dataset", str(manifest), "--out", str(tmp_path / "x.zarr"),
            "--no-progress")
    refused = run_cli(*args)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "2 of 2 record paths resolve outside the data root" in refused.stderr
    assert not (tmp_path / "x.zarr").exists()
    done = run_cli(*args, "--allow-outside-root")
    assert done.returncode == 0, done.stderr
    store = Store.open(tmp_path / "x.zarr")
    assert len(store.videos()) == 2
    assert store.config["allow_outside_root"] is True and store.provenance["allow_outside_root"] is True
