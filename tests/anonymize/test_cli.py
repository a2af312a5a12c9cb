"""The ``anonymize`` command end to end on the tiny extracted store: train, resume, info, export."""

from __future__ import annotations

import json

import numpy as np

from anonymize import checkpoint as ckpt
from featstore.store import Store
from featstore.summary import verify_store
from tests.conftest import run_cli, run_in_process

FAST = ["--epochs", "2", "--batch-size", "8", "--aam-layers", "1", "--identity-init", "zero",
        "--head-init-epochs", "2", "--validate-every", "1", "--device", "cpu"]


def test_train_resume_info_export(tiny_store, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    first = run_cli("anonymize", "train", "--store", str(tiny_store), "--out", str(run), *FAST)
    assert first.returncode == 0, first.stderr
    assert "clips/s" in first.stderr and "2 epochs" in first.stdout
    # resumed and shown in this process (no interpreter and torch start-up); exported as a user runs it
    code, printed, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--out", str(run), "--resume",
                                        "--epochs", "3")
    assert code == 0, err
    assert "3 epochs" in printed
    code, printed, err = run_in_process(monkeypatch, capsys, "anonymize", "info", "--run", str(run), "--json")
    assert code == 0, err
    summary = json.loads(printed)
    assert summary["parameters"]["aam"] > 0 and summary["parameters"]["head.action"] == 192 * 10 + 10
    assert len(summary["epochs"]) == 3 and summary["config"]["aam"]["layers"] == 1
    out = tmp_path / "anon.zarr"
    exported = run_cli("anonymize", "export", "--run", str(run), "--store", str(tiny_store), "--out", str(out),
                       "--device", "cpu")
    assert exported.returncode == 0, exported.stderr
    assert verify_store(out) == []
    assert Store.open(out).provenance["anonymizer"]["epoch"] == 3


def test_user_errors_are_one_line_with_exit_code_2(array_store, tmp_path, monkeypatch, capsys):
    cases = [
        ("train", "--out", str(tmp_path / "a")),  # no --store
        ("train", "--store", str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "b")),
        ("train", "--store", str(array_store), "--out", str(tmp_path / "c"), "--budget-mode", "magic"),
        ("train", "--store", str(array_store), "--out", str(tmp_path / "c"), "--aam-heads", "5"),
        ("train", "--out", str(tmp_path / "d"), "--resume"),
        ("export", "--run", str(tmp_path / "none"), "--store", str(array_store), "--out", str(tmp_path / "e.zarr")),
        ("info", "--run", str(tmp_path / "none")),
        ("train", "--store", str(array_store), "--out", str(tmp_path / "f"), "--aam-output-floor", "2"),
    ]
    for args in cases:
        code, _, err = run_in_process(monkeypatch, capsys, "anonymize", *args)
        assert code == 2, (args, err)
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("error:"), err


def test_info_prints_config_losses_and_parameters(array_store, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--store", str(array_store),
                                  "--out", str(run), "--aam-heads", "2", "--no-progress", *FAST)
    assert code in (0, None), err
    code, out, _ = run_in_process(monkeypatch, capsys, "anonymize", "info", "--run", str(run))
    assert code in (0, None)
    for text in ("trainable parameters", "aam", "head.action", "losses", "objective", "w_lc"):
        assert text in out
    assert "output floor" not in out  # off by default


def train_info_and_export(array_store, tmp_path, monkeypatch, capsys, *train_options) -> tuple[dict, Store]:
    """A small run trained with ``train_options`` into tmp_path/run: its `anonymize info --json` summary and its export
    of ``array_store``."""
    run = tmp_path / "run"
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--store", str(array_store),
                                  "--out", str(run), "--aam-heads", "2", *train_options, "--no-progress", *FAST)
    assert code in (0, None), err
    code, out, err = run_in_process(monkeypatch, capsys, "anonymize", "info", "--run", str(run), "--json")
    assert code in (0, None), err
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "export", "--run", str(run), "--store",
                                  str(array_store), "--out", str(tmp_path / "anon.zarr"), "--device", "cpu",
                                  "--no-progress")
    assert code in (0, None), err
    return json.loads(out), Store.open(tmp_path / "anon.zarr")


def test_the_output_floor_from_the_command_line_to_info_and_the_export(array_store, tmp_path, monkeypatch, capsys):
    summary, exported = train_info_and_export(array_store, tmp_path, monkeypatch, capsys, "--aam-output-floor", "0.2")
    kept = summary["overview"]["output floor"]
    assert summary["config"]["aam"]["output_floor"] == 0.2 and kept.startswith("0.2 x the mean output variance: kept ")
    assert exported.provenance["anonymizer"]["training_config"]["aam"]["output_floor"] == 0.2
    clips = exported.clip_embeddings[:].astype("float64")
    rank = ckpt.read_checkpoint_info(tmp_path / "run")["output_projection"]["kept"]
    singular = np.linalg.svd(clips - clips.mean(0), compute_uv=False)
    # every exported clip lies in the kept directions (up to the float16 store's rounding)
    assert rank < clips.shape[1] and (singular > 1e-2 * singular[0]).sum() <= rank


def test_the_output_rank_from_the_command_line_to_info_and_the_export(array_store, tmp_path, monkeypatch, capsys):
    summary, exported = train_info_and_export(array_store, tmp_path, monkeypatch, capsys, "--aam-output-floor", "0.01",
                                              "--aam-output-rank", "2")
    assert summary["config"]["aam"]["output_rank"] == 2
    assert summary["overview"]["output rank"].startswith("at most 2 directions: kept 2 of ")
    # the floor's line does not count what the cap then dropped
    assert summary["overview"]["output floor"].startswith("0.01 x the mean output variance, then the rank cap (")
    record = ckpt.read_checkpoint_info(tmp_path / "run")["output_projection"]
    assert record["rank"] == 2 and record["kept"] == 2 and record["floor"] == 0.01
    clips = exported.clip_embeddings[:].astype("float64")
    singular = np.linalg.svd(clips - clips.mean(0), compute_uv=False)
    # every exported clip lies in the two kept directions (up to the float16 store's rounding)
    assert (singular > 1e-2 * singular[0]).sum() == 2
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--store", str(array_store),
                                  "--out", str(tmp_path / "bad"), "--aam-output-rank", "-1", "--no-progress", *FAST)
    assert code == 2 and "output rank must be >= 0" in err and not (tmp_path / "bad").exists()


def test_the_output_centre_from_the_command_line_to_info_and_the_export(array_store, tmp_path, monkeypatch, capsys):
    summary, exported = train_info_and_export(array_store, tmp_path, monkeypatch, capsys, "--aam-output-centre")
    assert summary["config"]["aam"]["output_centre"] is True
    assert summary["overview"]["output centre"].startswith("the mean output over ")
    assert "output floor" not in summary["overview"]
    source = Store.open(array_store)
    clips, offsets = exported.clip_embeddings[:].astype("float64"), source.clip_offsets()
    train_rows = np.concatenate([np.arange(offsets[v], offsets[v + 1]) for v in source.split_indices("train")])
    scale = np.abs(clips).mean()
    # centred on the train clips' mean (up to the float16 store's rounding)
    assert np.abs(clips[train_rows].mean(0)).max() < 1e-2 * scale
