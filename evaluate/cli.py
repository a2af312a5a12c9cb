"""``evaluate`` command line: one subcommand per protocol module, registered in ``PROTOCOLS`` order."""

from __future__ import annotations

import importlib

import typer

from featstore.cli import run_app

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Privacy and utility protocols on feature stores; each writes a JSON result and prints a table.")

# each name is a module evaluate/protocols/<name>.py with register(app); add new protocols here
PROTOCOLS = ["ar", "privacy", "vp", "retrieval", "gait", "bias", "tad", "ad", "attack", "tradeoff", "report"]

for _name in PROTOCOLS:
    importlib.import_module(f"evaluate.protocols.{_name}").register(app)


def main() -> None:
    run_app(app)
