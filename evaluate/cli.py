"""``evaluate`` command line: one subcommand per protocol module, listed in ``PROTOCOLS`` order.

A protocol's module imports torch, scikit-learn or matplotlib (seconds), so it is imported only when its
subcommand runs or shows its own help; ``evaluate --help`` lists the protocols from ``PROTOCOLS`` alone.

This app is ``python -m evaluate``. The ``evaluate`` console script is ``pipelines.evaluate_cli``: these
protocols plus ``PIPELINES_COMMANDS``, which train or export anonymizers and so live in pipelines, a package
this one never imports.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from data_manifests.errors import FeatstoreError
from featstore.cli import run_app, tool_app

# each name is a module evaluate/protocols/<name>.py with register(app), with its command's one-line help (the
# docstring's first paragraph; tests/test_cli_startup.py checks they agree); add new protocols here
PROTOCOLS = {
    "ar": "Action recognition: linear probe, video-level top-1/top-5 over 5 evenly spaced clips.",
    "privacy": "Static private-attribute attack on static-clip embeddings: worst-case cMAP over the attackers "
               "(lower = more private).",
    "vp": "Temporal private-attribute attack on clip embeddings: worst-case cMAP over the attackers and the "
          "5-clip aggregates (lower = more private).",
    "retrieval": "Video retrieval: test queries vs train gallery, cosine of mean clip embeddings; R@k and mAP.",
    "gait": "Gait recognition by retrieval: CASIA-B cross-view rank-1 (NM/BG/CL), or train -> test splits.",
    "bias": "Gender bias: per-gender accuracy, overall accuracy and their gap (NTU-Bias-F/M or Toyota Smarthome).",
    "tad": "Temporal action detection: TriDet head, mAP at tIoU 0.3:0.1:0.7 and their average.",
    "ad": "Anomaly detection: MGFN head, frame-level ROC AUC and PR AUC.",
}
# The console script's commands from pipelines, named here only to send `python -m evaluate report` there.
PIPELINES_COMMANDS = ("attack", "tradeoff", "report")


class ProtocolGroup(TyperGroup):
    """Commands listed by name and help; a command's module is imported when its subcommand is resolved.

    ``COMMANDS``: name -> (the module whose register(app) defines the command, the command's one-line help).
    """

    COMMANDS: dict[str, tuple[str, str]] = {name: (f"evaluate.protocols.{name}", text)
                                            for name, text in PROTOCOLS.items()}

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        # the entries the group's help and its did-you-mean suggestions read (no options: those are the module's)
        self.commands.update({name: TyperCommand(name, help=text) for name, (_, text) in self.COMMANDS.items()})

    def resolve_command(self, ctx, args):
        if args and args[0] in PIPELINES_COMMANDS and args[0] not in self.COMMANDS:
            raise FeatstoreError(f"{args[0]!r} is a command of the `evaluate` console script: run `evaluate "
                                 f"{args[0]} ...` (or `python -m pipelines.evaluate_cli {args[0]} ...`)")
        name, _, rest = super().resolve_command(ctx, args)
        return name, None if name is None else module_command(self.COMMANDS[name][0]), rest


def module_command(module: str) -> TyperCommand:
    """The subcommand a module's register(app) defines."""
    command_app = typer.Typer(add_completion=False)
    importlib.import_module(module).register(command_app)
    return typer.main.get_command(command_app)


def protocol_command(name: str) -> TyperCommand:
    """The subcommand of the protocol module evaluate/protocols/<name>.py."""
    return module_command(f"evaluate.protocols.{name}")


def evaluate_app(group: type[ProtocolGroup]) -> typer.Typer:
    """The ``evaluate`` app whose subcommands are ``group.COMMANDS``."""
    # tool_app's callback makes it a group (typer makes one only of registered commands or a callback); the group
    # adds the commands, which inherit its -h
    return tool_app("evaluate", cls=group,
                    help="Privacy and utility protocols on feature stores (paths or fsspec URLs); each writes a JSON "
                         "result and prints a table, or with --json that JSON.")


app = evaluate_app(ProtocolGroup)


def main() -> None:
    run_app(app)
