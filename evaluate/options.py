"""Command-line pieces every protocol subcommand shares: the store, out and progress options, the options made
from its config's settings (``config_options``: default and help written once, in the config), and the ending of
every subcommand (``run_command``: open the store, run, write the result, print).

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

if TYPE_CHECKING:
    from featstore.store import Store

DEFAULT_OUT_ROOT = Path("runs/eval")


def default_out_dir(store_path: str | Path) -> Path:
    """``runs/eval/<store stem>/`` (``raw`` for ``runs/raw.zarr`` and for ``s3://bucket/raw.zarr``)."""
    return DEFAULT_OUT_ROOT / Path(str(store_path).rstrip("/")).stem


def store_option() -> typer.models.OptionInfo:
    return typer.Option(..., "--store", help="Feature store to evaluate: a .zarr path or an fsspec URL.")


def out_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--out", help="Folder for the JSON result (default: runs/eval/STORE-STEM/).")


def progress_option() -> typer.models.OptionInfo:
    return typer.Option(True, "--progress/--no-progress", help="Show progress bars.")


def config_option(config: type, name: str, *param_decls: str) -> typer.models.OptionInfo:
    """The option of the config field ``name``: the field's default (none when the command line requires it) and
    help (``evaluate.settings.setting``)."""
    spec = config.__dataclass_fields__[name]
    if "help" not in spec.metadata:
        raise TypeError(f"{config.__name__}.{name} is not declared with setting(...): it has no help")
    default = spec.default_factory() if spec.default is MISSING else spec.default
    return typer.Option(... if spec.metadata.get("required") else default, *param_decls, help=spec.metadata["help"])


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
    """A training setting's value in each named preset, for the help of an option that overrides it:
    "presets: thumos14 20, small 40" (or "preset: 2" when they agree)."""
    values = {preset: getattr(recipe(**overrides), name) for preset, overrides in presets.items()}
    if len(set(values.values())) == 1:
        return f"preset: {next(iter(values.values())):g}"
    return "presets: " + ", ".join(f"{preset} {value:g}" for preset, value in values.items())


def with_head_file(store: str | Path, out: Optional[Path], file_name: str, config):
    """A head protocol's (result folder, config): a head it trains is saved to ``<result folder>/file_name``
    unless the config says where (or evaluates a saved head instead)."""
    out_dir = out if out is not None else default_out_dir(store)
    if config.save_head is None and config.head_checkpoint is None:
        config = replace(config, save_head=str(out_dir / file_name))
    return out_dir, config


def run_command(name: str, run: Callable, config, store: str | Path, out: Optional[Path], *,
                show_progress: bool = False, printer: Callable[[Store, dict], None] | None = None) -> Path:
    """The end of every subcommand: open ``store``, ``run(store, config)``, write ``<out>/<name>.json`` and print
    the metrics table (or ``printer(store, metrics)``) and the path."""
    from evaluate.data import open_store
    from evaluate.results import finish

    opened = open_store(store)
    metrics = run(opened, config, show_progress=show_progress)
    return finish(name, config, metrics, opened, out,
                  printer=None if printer is None else lambda: printer(opened, metrics))
