"""Command-line pieces every protocol subcommand shares: the store, out, progress and json options, the options made
from its config's settings (``config_options``: default, help and help panel written once, in the config), and the
ending of every subcommand (``run_command``: open the store, run, write the result, print the table or the JSON).

Options are grouped in the help into the panels ``DATA_PANEL`` (what is read), ``PROTOCOL_PANEL`` (how it is
evaluated) and ``OUTPUT_PANEL`` (what is written and printed).

Torch-free on purpose: ``evaluate <protocol> --help`` imports only this, ``evaluate.settings`` and the
protocol's module; what runs a protocol is imported when it runs.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import MISSING, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from evaluate.settings import DATA_PANEL, OUTPUT_PANEL, PROTOCOL_PANEL

if TYPE_CHECKING:
    from featstore.store import Store

DEFAULT_OUT_ROOT = Path("runs/eval")


def default_out_dir(store_path: str | Path) -> Path:
    """``runs/eval/<store stem>/`` (``raw`` for ``runs/raw.zarr`` and for ``s3://bucket/raw.zarr``)."""
    return DEFAULT_OUT_ROOT / Path(str(store_path).rstrip("/")).stem


STORE_HELP = "Feature store to evaluate: a .zarr path or an fsspec URL (file://, memory://, s3://)."


def store_option(*param_decls: str, help: str = STORE_HELP) -> typer.models.OptionInfo:  # noqa: A002  (typer's name)
    """A store the command reads, ``--store`` unless named otherwise (typed ``str``: typer's Path would turn
    ``memory://x`` into ``memory:/x``)."""
    return typer.Option(..., *(param_decls or ("--store",)), help=help, rich_help_panel=DATA_PANEL)


def out_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--out", help="Folder for the JSON result; not given: runs/eval/STORE-STEM/.",
                        rich_help_panel=OUTPUT_PANEL)


def progress_option() -> typer.models.OptionInfo:
    return typer.Option(True, "--progress/--no-progress", help="Show progress bars.", rich_help_panel=OUTPUT_PANEL)


def json_option() -> typer.models.OptionInfo:
    return typer.Option(False, "--json", help="Print the result (the JSON document written to OUT) on stdout instead "
                                              "of the table.", rich_help_panel=OUTPUT_PANEL)


def protocol_option(default, help: str) -> typer.models.OptionInfo:  # noqa: A002  (typer's name)
    """An option of how a command evaluates, for the commands whose options are not config settings (attack,
    report, tradeoff)."""
    return typer.Option(default, help=help, rich_help_panel=PROTOCOL_PANEL)


def config_option(config: type, name: str, *param_decls: str) -> typer.models.OptionInfo:
    """The option of the config field ``name``: the field's default (none when the command line requires it), help
    and help panel (``evaluate.settings.setting``)."""
    spec = config.__dataclass_fields__[name]
    if "help" not in spec.metadata:
        raise TypeError(f"{config.__name__}.{name} is not declared with setting(...): it has no help")
    default = spec.default_factory() if spec.default is MISSING else spec.default
    return typer.Option(... if spec.metadata.get("required") else default, *param_decls, help=spec.metadata["help"],
                        rich_help_panel=spec.metadata["panel"])


def config_options(config: type, *settings: str | tuple[str, ...]) -> Callable[[Callable], Callable]:
    """Give a subcommand ``f(*, ..., config, ...)`` one option per setting of ``config`` in place of ``config``
    (``config_option``: the field's default and help); ``f`` receives the validated ``config(**their values)``.

    A setting is a field name, or ``(field name, option names...)`` for other option names than ``--field-name``.
    """
    hints = typing.get_type_hints(config)

    def option_type(name: str) -> type:
        if config.__dataclass_fields__[name].metadata.get("path"):  # typer reads it as a path, the config stores str
            return Optional[Path] if config.__dataclass_fields__[name].default is None else Path
        return hints[name]

    declared = [(setting, ()) if isinstance(setting, str) else (setting[0], setting[1:]) for setting in settings]

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        options = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option_type(name),
                                     default=config_option(config, name, *decls)) for name, decls in declared]
        parameters = []
        for parameter in signature.parameters.values():
            parameters.extend(options if parameter.name == "config" else [parameter])

        @functools.wraps(command)
        def with_config(**values):
            built = config(**{name: values.pop(name) for name, _ in declared})
            return command(config=built, **values)

        with_config.__signature__ = signature.replace(parameters=parameters)
        with_config.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return with_config

    return decorate


def preset_help(recipe: type, presets: dict[str, dict], name: str) -> str:
    """What an option overriding a training setting does when it is not given, from the setting's value in each
    named preset: "not given: the preset's (thumos14 20, small 40)", or "not given: 2 (every preset)"."""
    values = {preset: getattr(recipe(**overrides), name) for preset, overrides in presets.items()}
    if len(set(values.values())) == 1:
        return f"not given: {next(iter(values.values())):g} (every preset)"
    return "not given: the preset's (" + ", ".join(f"{preset} {value:g}" for preset, value in values.items()) + ")"


def with_head_file(store: str | Path, out: Optional[Path], file_name: str, config):
    """A head protocol's (result folder, config): a head it trains is saved to ``<result folder>/file_name``
    unless the config says where (or evaluates a saved head instead)."""
    out_dir = out if out is not None else default_out_dir(store)
    if config.save_head is None and config.head_checkpoint is None:
        config = replace(config, save_head=str(out_dir / file_name))
    return out_dir, config


def run_command(name: str, run: Callable, config, store: str | Path, out: Optional[Path], *,
                show_progress: bool = False, printer: Callable[[Store, dict], None] | None = None,
                as_json: bool = False) -> Path:
    """The end of every subcommand: open ``store``, ``run(store, config)``, write ``<out>/<name>.json`` and print
    the metrics table (or ``printer(store, metrics)``) and the path; ``as_json``: the result document instead."""
    from evaluate.data import open_store
    from evaluate.results import finish

    opened = open_store(store)
    metrics = run(opened, config, show_progress=show_progress)
    return finish(name, config, metrics, opened, out,
                  printer=None if printer is None else lambda: printer(opened, metrics), as_json=as_json)
