"""The ``evaluate`` console script: evaluate's protocols plus report, tradeoff and attack from pipelines, each
loaded when it runs; ``python -m evaluate`` (protocols only) sends those three to the console script."""

import importlib
import inspect
import pkgutil
import tomllib

import pipelines
from evaluate.cli import PIPELINES_COMMANDS, PROTOCOLS, module_command
from pipelines.evaluate_cli import ORCHESTRATION, app
from tests.test_cli_startup import HEAVY, REPO, imported_modules
from typer.testing import CliRunner


def test_the_console_script_is_this_app():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["evaluate"] == "pipelines.evaluate_cli:main"


def test_every_pipelines_command_module_is_listed_with_its_commands_help():
    modules = [f"pipelines.{m.name}" for m in pkgutil.iter_modules(pipelines.__path__) if m.name != "__main__"]
    with_command = [module for module in modules if hasattr(importlib.import_module(module), "register")]
    assert sorted(module for module, _ in ORCHESTRATION.values()) == sorted(with_command)
    assert tuple(ORCHESTRATION) == PIPELINES_COMMANDS
    for name, (module, listed) in ORCHESTRATION.items():
        command = module_command(module)
        assert command.name == name
        assert listed == " ".join(inspect.cleandoc(command.help).split("\n\n")[0].split()), name


def test_help_lists_every_command_in_order_and_loads_no_heavy_library():
    done, modules = imported_modules("pipelines.evaluate_cli", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    listed = [line.split()[1] for line in done.stdout.splitlines()
              if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1].isalpha()]
    assert listed == [*PROTOCOLS, *ORCHESTRATION]
    assert "featstore.cli" in modules  # the timing lines were read
    loaded = sorted({name.split(".")[0] for name in modules} & set(HEAVY))
    assert not loaded, f"evaluate --help imported {loaded}"


def test_subcommands_load_their_options_and_typos_get_suggestions():
    runner = CliRunner()
    result = runner.invoke(app, ["report", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--sweep" in result.stdout and "AR probe epochs (the default is the official " \
        "preset)" in result.stdout and "[default: 250]" in result.stdout  # the default once, shown typer's way
    result = runner.invoke(app, ["tradeoff", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--run" in result.stdout and "--runs" in result.stdout
    result = runner.invoke(app, ["ar", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--epochs" in result.stdout
    result = runner.invoke(app, ["reprot"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "Did you mean 'report'?" in result.output


def test_python_m_evaluate_sends_the_pipelines_commands_to_the_console_script():
    for name in PIPELINES_COMMANDS:
        done, modules = imported_modules("evaluate", name, "--help")
        errors = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
        assert done.returncode == 2, errors
        assert errors == [f"error: {name!r} is a command of the `evaluate` console script: run "
                          f"`evaluate {name} ...` (or `python -m pipelines.evaluate_cli {name} ...`)"]
        assert "evaluate.cli" in modules and not {m for m in modules if m.startswith("pipelines")}
