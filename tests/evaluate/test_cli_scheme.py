"""The evaluate protocol commands under the one CLI scheme (issue #15): every store as a local path or an fsspec
URL (file://, memory://), ``--json`` printing the result document alone on stdout, help panels Data / Protocol /
Output."""

from __future__ import annotations

import json
import uuid

import fsspec
import pytest
from click.testing import CliRunner

from evaluate.cli import PROTOCOLS, protocol_command
from tests.conftest import run_in_process

# each protocol on the store it needs, with the fewest epochs/steps that run it (the numbers are not the point)
PROTOCOL_RUNS = {
    "ar": ("tiny_store", ["--epochs", "2", "--batch-size", "32"]),
    "privacy": ("tiny_store", ["--attacker", "standard", "--epochs", "2", "--batch-size", "32"]),
    "vp": ("tiny_store", ["--attacker", "standard", "--epochs", "2", "--batch-size", "32"]),
    "retrieval": ("tiny_store", []),
    "tad": ("tad_store", ["--epochs", "2", "--warmup-epochs", "0"]),
    "ad": ("ad_store", ["--steps", "3"]),
}
NO_PROGRESS = {"ar", "privacy", "vp", "tad", "ad"}  # the protocols that train show progress bars


def in_memory(local) -> str:
    """A copy of the local store ``local`` at a fresh ``memory://`` URL (this process's in-memory filesystem)."""
    name = f"scheme-{uuid.uuid4().hex}.zarr"
    fsspec.filesystem("memory").put(str(local), f"/{name}", recursive=True)
    return f"memory://{name}"


def run_json(monkeypatch, capsys, protocol: str, store: str, out, extra: list[str]) -> dict:
    """``evaluate PROTOCOL --store STORE --json``: stdout must be exactly one JSON document."""
    args = [protocol, "--store", store, "--out", str(out), "--device", "cpu", "--json", *extra]
    code, stdout, err = run_in_process(monkeypatch, capsys, "evaluate", *args,
                                       *(["--no-progress"] if protocol in NO_PROGRESS else []))
    assert code == 0, err
    return json.loads(stdout)


def comparable(value):
    """The metrics without their wall-clock times (``timing``, ``seconds``, ``train_s``) and where a trained head
    was saved (``saved``: under OUT)."""
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()
                if key not in ("timing", "seconds", "train_s", "saved")}
    return value


@pytest.mark.parametrize("scheme", ["file", "memory"])
@pytest.mark.parametrize("protocol", list(PROTOCOL_RUNS))
def test_every_protocol_reads_a_store_url_as_its_local_path(protocol, scheme, request, tmp_path, monkeypatch,
                                                            capsys):
    fixture, extra = PROTOCOL_RUNS[protocol]
    local = request.getfixturevalue(fixture)
    url = "file://" + str(local) if scheme == "file" else in_memory(local)
    try:
        document = run_json(monkeypatch, capsys, protocol, url, tmp_path / "url", extra)
    finally:
        if scheme == "memory":
            fsspec.filesystem("memory").rm(url.removeprefix("memory:/"), recursive=True)
    assert document["protocol"] == protocol and document["store"] == url
    assert document["store_provenance"]["path"] == url
    # the printed document is the one written to OUT/<protocol>.json
    assert json.loads((tmp_path / "url" / f"{protocol}.json").read_text()) == document
    reference = run_json(monkeypatch, capsys, protocol, str(local), tmp_path / "local", extra)
    assert comparable(document["metrics"]) == comparable(reference["metrics"])  # the same data, same seed


def test_a_store_url_serves_as_labels_from(tiny_store, tmp_path, monkeypatch, capsys):
    url = "file://" + str(tiny_store)
    document = run_json(monkeypatch, capsys, "retrieval", url, tmp_path, [])
    assert document["store"] == url
    labels = in_memory(tiny_store)
    document = run_json(monkeypatch, capsys, "privacy", url, tmp_path, ["--labels-from", labels, "--attacker", "knn"])
    assert document["config"]["labels_from"] == labels and document["metrics"]["cmap"] is not None


def test_json_replaces_the_table_and_the_wrote_line(tiny_store, tmp_path, monkeypatch, capsys):
    code, stdout, err = run_in_process(monkeypatch, capsys, "evaluate", "retrieval", "--store", str(tiny_store),
                                       "--out", str(tmp_path), "--json")
    assert code == 0 and json.loads(stdout)["metrics"]["R@1"] is not None
    assert f"wrote {tmp_path / 'retrieval.json'}" in " ".join(err.split())
    code, stdout, _ = run_in_process(monkeypatch, capsys, "evaluate", "retrieval", "--store", str(tiny_store),
                                     "--out", str(tmp_path))
    assert code == 0 and "R@1" in stdout and "wrote" in stdout  # without --json: the table, as before


# the options of each panel that every protocol has (labels-from, save-head, genders: where the protocol has them)
PANEL_OF = {"--store": "Data", "--labels-from": "Data", "--genders": "Data", "--device": "Protocol",
            "--seed": "Protocol", "--epochs": "Protocol", "--out": "Output", "--save-head": "Output",
            "--json": "Output", "--progress": "Output"}


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_help_groups_the_options_into_data_protocol_and_output(protocol):
    command = protocol_command(protocol)
    panels = {}
    for parameter in command.params:
        for name in parameter.opts:
            panels[name] = parameter.rich_help_panel
    for name, panel in PANEL_OF.items():
        if name in panels:
            assert panels[name] == panel, (protocol, name, panels[name])
    assert set(panels.values()) <= {"Data", "Protocol", "Output"}, (protocol, panels)
    assert "--json" in panels and "--store" in panels
    shown = help_text(protocol)
    assert all(f"─ {panel} ─" in shown for panel in ("Data", "Protocol", "Output")), shown


def help_text(protocol: str) -> str:
    return CliRunner().invoke(protocol_command(protocol), ["--help"], env={"COLUMNS": "200"}).stdout


def test_options_with_no_default_say_in_words_what_not_giving_them_does():
    flat = " ".join(help_text("tad").split())
    assert "not given: runs/eval/STORE-STEM/" in flat and "not given: OUT/tad-head.safetensors" in flat
    assert "(default" not in flat
