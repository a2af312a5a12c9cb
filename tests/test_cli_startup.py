"""The command lines start fast: --help loads no heavy library; the lazily loaded parts stay as they were."""

import dataclasses
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import evaluate.protocols
from evaluate.cli import PROTOCOLS, app, protocol_command
from pipelines.cli import DEFAULTS
from pipelines.demo_config import DemoConfig
from pipelines.evaluate_cli import ORCHESTRATION

HEAVY = ("torch", "sklearn", "matplotlib")  # each takes a second or more to import
# a protocol's --help reads only its module, evaluate.options and evaluate.settings; they leave out zarr and numpy
# as well (numpy alone takes about 0.3 s here, most of the 0.5 s a --help may take)
HEAVY_FOR_PROTOCOL_HELP = (*HEAVY, "zarr", "numpy")
REPO = Path(__file__).resolve().parents[1]


def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m <args>`` in a fresh process: its result and every module it imported."""
    env = dict(os.environ, COLUMNS="200")
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    # lines "import time: <self us> | <cumulative us> | <indented module name>"
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, modules


@pytest.mark.parametrize("command", ["featstore --help", "anonymize --help", "evaluate --help", "pipelines --help",
                                     "pipelines run --help"])
def test_help_imports_no_heavy_library(command):
    done, modules = imported_modules(*command.split())
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage:" in done.stdout
    assert "featstore.cli" in modules  # the timing lines were read
    loaded = sorted({name.split(".")[0] for name in modules} & set(HEAVY))
    assert not loaded, f"{command} imported {loaded}"


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_protocol_help_imports_no_heavy_library(protocol):
    done, modules = imported_modules("evaluate", protocol, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--store" in done.stdout
    assert "evaluate.cli" in modules  # the timing lines were read
    loaded = sorted({name.split(".")[0] for name in modules} & set(HEAVY_FOR_PROTOCOL_HELP))
    assert not loaded, f"evaluate {protocol} --help imported {loaded}"


@pytest.mark.parametrize("command", list(ORCHESTRATION))
def test_pipelines_command_help_imports_no_heavy_library(command):
    """`evaluate attack|report|tradeoff --help` read pipelines/<command>_command.py alone, as a protocol's help does."""
    done, modules = imported_modules("pipelines.evaluate_cli", command, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--seed" in done.stdout  # the command's own options, not the group's help
    assert "evaluate.settings" in modules  # the timing lines were read
    loaded = sorted({name.split(".")[0] for name in modules} & set(HEAVY_FOR_PROTOCOL_HELP))
    assert not loaded, f"evaluate {command} --help imported {loaded}"
    assert f"pipelines.{command}" not in modules  # what runs the command is loaded when it runs


def test_evaluate_lists_every_protocol_module_with_its_commands_help():
    modules = [m.name for m in pkgutil.iter_modules(evaluate.protocols.__path__)]
    with_command = [m for m in modules if hasattr(importlib.import_module(f"evaluate.protocols.{m}"), "register")]
    assert sorted(PROTOCOLS) == sorted(with_command)
    for name, listed in PROTOCOLS.items():
        command = protocol_command(name)
        assert command.name == name
        first_paragraph = inspect.cleandoc(command.help).split("\n\n")[0]
        assert listed == " ".join(first_paragraph.split()), name


def test_evaluate_subcommands_load_their_options_and_typos_get_suggestions():
    runner = CliRunner()
    result = runner.invoke(app, ["ar", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--epochs" in result.stdout and "Training epochs (official preset: 250)" in result.stdout
    result = runner.invoke(app, ["retrieval", "--store", "x.zarr", "--unknown"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "No such option: --unknown" in result.output
    result = runner.invoke(app, ["privacyy"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "Did you mean 'privacy'?" in result.output


def test_pipelines_defaults_are_the_demo_configs():
    built = dataclasses.asdict(DemoConfig())
    assert DEFAULTS["data_root"] is None and built["data_root"] == "data/synth"  # filled in from the style
    assert {key: value for key, value in DEFAULTS.items() if key != "data_root"} == \
           {key: value for key, value in built.items() if key != "data_root"}
