"""Every console script answers -h like --help (on the app and on a subcommand) and --version from the metadata."""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from featstore.cli import DISTRIBUTION

REPO = Path(__file__).resolve().parents[1]
# console script -> (its module for python -m, one subcommand; evaluate's protocol and report are loaded lazily)
TOOLS = {
    "featstore": ("featstore", ["info"]),
    "anonymize": ("anonymize", ["train"]),
    "evaluate": ("pipelines.evaluate_cli", ["ar"]),
    "pipelines": ("pipelines", ["run"]),
}
SUBCOMMANDS = [(tool, sub) for tool, (_, subs) in TOOLS.items() for sub in subs] + [("evaluate", "report")]


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)


@pytest.mark.parametrize("tool", list(TOOLS))
def test_short_help_is_help(tool):
    module = TOOLS[tool][0]
    short, long = run_module(module, "-h"), run_module(module, "--help")
    assert short.returncode == 0, short.stderr[-2000:]
    assert "Usage:" in short.stdout
    assert short.stdout == long.stdout


@pytest.mark.parametrize("tool,subcommand", SUBCOMMANDS)
def test_short_help_on_a_subcommand(tool, subcommand):
    module = TOOLS[tool][0]
    short, long = run_module(module, subcommand, "-h"), run_module(module, subcommand, "--help")
    assert short.returncode == 0, short.stderr[-2000:]
    assert f"{subcommand} [OPTIONS]" in short.stdout
    assert short.stdout == long.stdout


@pytest.mark.parametrize("tool", list(TOOLS))
def test_version_prints_the_installed_version_without_torch(tool):
    code = (f"import sys, runpy; sys.argv = ['{tool}', '--version']\n"
            f"try:\n    runpy.run_module('{TOOLS[tool][0]}', run_name='__main__')\n"
            "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f"{tool} {importlib.metadata.version(DISTRIBUTION)}", "torch not loaded"]
