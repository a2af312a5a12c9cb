"""The evaluate command end to end, as a user runs it (fresh processes)."""

import json
from pathlib import Path

import pytest

from typer.testing import CliRunner

from evaluate.cli import PROTOCOLS, app
from evaluate.protocols.privacy import PrivacyConfig, run
from featstore.store import Store
from tests.conftest import run_cli, run_in_process


@pytest.fixture(autouse=True)
def one_thread_children(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # run_cli passes the environment on


def test_privacy_cli_matches_the_python_api_and_writes_its_result(tiny_store, tmp_path):
    done = run_cli("evaluate", "privacy", "--store", str(tiny_store), "--out", str(tmp_path), "--epochs", "5",
                   "--batch-size", "32", "--no-progress")
    assert done.returncode == 0, done.stderr
    rows = [line.split("│")[1].strip() for line in done.stdout.splitlines() if line.startswith("│")]
    assert {"standard", "authors (test-selected)", "mlp-wide", "worst case", "from"} <= set(rows)  # one per attacker
    assert "AP scene" in done.stdout
    document = json.loads((tmp_path / "privacy.json").read_text())
    assert document["protocol"] == "privacy" and document["config"]["epochs"] == 5
    api = run(Store.open(tiny_store), PrivacyConfig(epochs=5, batch_size=32))
    assert document["metrics"]["cmap"] == pytest.approx(api["cmap"], abs=1e-12)
    assert document["metrics"]["attackers"]["authors"]["cmap"] == pytest.approx(api["attackers"]["authors"]["cmap"],
                                                                               abs=1e-12)


def test_other_protocols_write_to_the_default_folder(tiny_store, tmp_path, monkeypatch):
    # run from another folder: make the package importable even before an editable reinstall maps it
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    for protocol, extra in {"ar": ["--epochs", "3", "--no-progress"], "retrieval": []}.items():
        done = run_cli("evaluate", protocol, "--store", str(tiny_store), *extra, cwd=tmp_path)
        assert done.returncode == 0, (protocol, done.stderr)
        result = tmp_path / "runs" / "eval" / "tiny" / f"{protocol}.json"
        assert result.is_file(), protocol
        assert str(result.relative_to(tmp_path)) in done.stdout.replace("\n", "")


def test_bad_inputs_get_one_line_and_exit_code_2(tiny_store, tmp_path, monkeypatch, capsys):
    genders = tmp_path / "g.csv"
    genders.write_text("subject,gender\ns00,F\n")
    out = ["--out", str(tmp_path / "out")]
    for args, message in [(["privacy", "--store", str(tmp_path / "none.zarr")], "no store"),
                          (["privacy", "--store", str(tiny_store), "--attacker", "oracle"], "attacker")]:
        done = run_cli("evaluate", *args, *out)  # as a user runs it
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    in_process = [
        (["ar", "--store", str(tiny_store), "--epochs", "0"], "epochs"),
        (["vp", "--store", str(tiny_store), "--clip-sampling", "some"], "clip_sampling"),
        (["gait", "--store", str(tiny_store)], "no test video with clips has the subject of a train video"),
        (["gait", "--store", str(tiny_store), "--protocol", "casia-b"], "not CASIA-B names"),
        (["bias", "--store", str(tiny_store), "--protocol", "ntu", "--genders", str(genders)], "protocol"),
        (["bias", "--store", str(tiny_store), "--genders", str(tmp_path / "missing.csv")], "does not exist"),
        (["bias", "--store", str(tiny_store), "--genders", str(genders), "--shortcut-class", "juggle"], "not a class"),
        (["privacy", "--store", str(tmp_path), "--epochs", "1"], "not a featstore store"),
    ]
    for args, message in in_process:
        code, _, err = run_in_process(monkeypatch, capsys, "evaluate", *args, *out)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_every_listed_protocol_has_a_subcommand():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for protocol in PROTOCOLS:
        assert protocol in result.stdout
