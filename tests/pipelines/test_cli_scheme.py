"""attack, report and tradeoff under the one CLI scheme (issue #15): ``--store`` / ``--raw-store`` (old ``--anon`` /
``--raw`` still work), stores and run folders as fsspec URLs (file://, memory://), ``--json`` printing one JSON
document alone on stdout, help panels Data / Protocol / Output."""

from __future__ import annotations

import json
import shutil
import uuid

import fsspec
import pytest
from typer.testing import CliRunner

from anonymize.export import export_store
from anonymize.train import train
from pipelines.evaluate_cli import app
from tests.anonymize.conftest import small_config, structured_store
from tests.conftest import one_torch_thread, run_in_process

ATTACK_FAST = ["--inverter-epochs", "2", "--whitebox-steps", "5", "--action-epochs", "3", "--attribute-epochs", "2",
               "--device", "cpu", "--no-progress"]
REPORT_FAST = ["--ar-epochs", "2", "--privacy-epochs", "2", "--vp-epochs", "2", "--attack-inverter-epochs", "2",
               "--attack-whitebox-steps", "5", "--device", "cpu", "--no-progress"]
TRADEOFF_FAST = ["--ar-epochs", "2", "--privacy-epochs", "2", "--attacker", "knn", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A raw array store, a 1-epoch anonymizer run on it and the anonymized export."""
    root = tmp_path_factory.mktemp("scheme")
    raw = structured_store(root / "raw.zarr")
    with one_torch_thread():
        train(small_config(raw, root / "run", epochs=1))
        export_store(root / "run", raw, root / "anon.zarr", device="cpu")
    return raw, root / "anon.zarr", root / "run"


@pytest.fixture
def memory():
    """``copy(local folder) -> memory:// URL`` of a fresh in-memory copy; the copies are removed afterwards."""
    fs, made = fsspec.filesystem("memory"), []

    def copy(local) -> str:
        name = f"scheme-{uuid.uuid4().hex}"
        fs.put(str(local), f"/{name}", recursive=True)
        made.append(name)
        return f"memory://{name}"

    yield copy
    for name in made:
        fs.rm(f"/{name}", recursive=True)


def evaluate(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return run_in_process(monkeypatch, capsys, "evaluate", *args)


def test_attack_takes_store_urls_and_a_run_url_and_the_old_option_names(inputs, memory, tmp_path, monkeypatch,
                                                                        capsys):
    raw, anon, run_dir = inputs
    code, stdout, err = evaluate(monkeypatch, capsys, "attack", "--store", memory(anon), "--raw-store",
                                 "file://" + str(raw), "--run", memory(run_dir), "--out", str(tmp_path / "url"),
                                 "--json", *ATTACK_FAST)
    assert code == 0, err
    document = json.loads(stdout)  # stdout is the one JSON document
    assert document["protocol"] == "attack" and document["store"]["raw"] == "file://" + str(raw)
    assert document["store"]["anon"].startswith("memory://")
    assert json.loads((tmp_path / "url" / "attack.json").read_text()) == document
    code, stdout, err = evaluate(monkeypatch, capsys, "attack", "--anon", str(anon), "--raw", str(raw), "--run",
                                 str(run_dir), "--out", str(tmp_path / "local"), *ATTACK_FAST)
    assert code == 0, err
    assert "white-box inversion" in stdout  # without --json: the table
    local = json.loads((tmp_path / "local" / "attack.json").read_text())
    assert local["metrics"]["table"] == document["metrics"]["table"]  # the same stores and run, read from URLs


def test_report_takes_store_urls_and_prints_its_results_as_json(inputs, memory, tmp_path, monkeypatch, capsys):
    raw, anon, run_dir = inputs
    out = tmp_path / "report"
    code, stdout, err = evaluate(monkeypatch, capsys, "report", "--raw-store", "file://" + str(raw), "--store",
                                 memory(anon), "--run", memory(run_dir), "--out", str(out), "--json", *REPORT_FAST)
    assert code == 0, err
    printed = json.loads(stdout)
    assert printed == json.loads((out / "results.json").read_text())
    assert printed["pairs"][0]["raw"] == "file://" + str(raw) and printed["attack"]["table"]
    assert "Table 1 form" not in stdout and f"wrote {out / 'report.md'}" in " ".join(err.split())
    code, _, err = evaluate(monkeypatch, capsys, "report", "--raw", str(raw), "--raw", str(raw), "--anon", str(anon),
                            "--out", str(tmp_path / "r"))
    assert code == 2 and "--raw-store and --store pair up in order" in err


def test_tradeoff_takes_file_and_memory_url_runs_and_a_memory_raw_store(inputs, memory, tmp_path, monkeypatch, capsys):
    raw, _, run_dir = inputs
    own_run = tmp_path / "run"  # the trade-off caches its export and results in the run folder
    shutil.copytree(run_dir, own_run)
    code, stdout, err = evaluate(monkeypatch, capsys, "tradeoff", "--run", "file://" + str(own_run), "--raw-store",
                                 memory(raw), "--out", str(tmp_path / "t"), "--json", *TRADEOFF_FAST)
    assert code == 0, err
    document = json.loads(stdout)
    assert document["protocol"] == "tradeoff" and document["metrics"]["n_runs"] == 1
    assert document["config"]["raw_store"].startswith("memory://") and document["metrics"]["raw"]["utility"] >= 0
    assert (own_run / "anon.zarr").is_dir()
    # a run at a remote URL: its files are copied under --out, where its caches then go; the same point
    remote = memory(run_dir)
    code, stdout, err = evaluate(monkeypatch, capsys, "tradeoff", "--run", remote, "--raw-store", memory(raw),
                                 "--out", str(tmp_path / "m"), "--json", *TRADEOFF_FAST)
    assert code == 0, err
    remote_point = json.loads(stdout)["metrics"]["points"][0]
    local_point = document["metrics"]["points"][0]
    assert (remote_point["utility"], remote_point["privacy"]) == (local_point["utility"], local_point["privacy"])
    (copy,) = (tmp_path / "m" / "remote-runs").iterdir()
    assert (copy / "aam.safetensors").is_file() and (copy / "anon.zarr").is_dir()
    code, _, err = evaluate(monkeypatch, capsys, "tradeoff", "--run", memory(run_dir) + "-missing", *TRADEOFF_FAST)
    assert code == 2 and "no run folder at" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["attack", "report", "tradeoff"])
def test_help_groups_the_options_into_data_protocol_and_output(command):
    shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
    flat = " ".join(shown.split())
    assert all(f"─ {panel} ─" in shown for panel in ("Data", "Protocol", "Output")), shown
    assert "--json" in shown and "[default:" in shown and "(default" not in flat
    if command != "tradeoff":
        assert "--store,--anon" in flat.replace(", ", ",") and "--raw-store,--raw" in flat.replace(", ", ",")
    else:
        assert "--raw-store,--raw" in flat.replace(", ", ",") and "--run,--runs" in flat.replace(", ", ",")
