"""``evaluate`` command line: one subcommand per protocol module, listed in ``PROTOCOLS`` order.

A protocol's module imports torch, scikit-learn or matplotlib (seconds), so it is imported only when its
subcommand runs or shows its own help; ``evaluate --help`` lists the protocols from ``PROTOCOLS`` alone.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from featstore.cli import run_app

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
    "attack": "Inversion attacks (Table 8): black-box inverter and white-box preimage; action top-1 and attribute "
              "cMAP.",
    "tradeoff": "Privacy-utility trade-off of a sweep of runs: points, Pareto front, normalized hypervolume, PNG.",
    "report": "Run every protocol the stores support, raw vs anonymized; write report.md, results.json and figures.",
}


class ProtocolGroup(TyperGroup):
    """The protocols listed by name and help; a protocol's module is imported when its subcommand is resolved."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        # the entries the group's help and its did-you-mean suggestions read (no options: those are the module's)
        self.commands.update({name: TyperCommand(name, help=text) for name, text in PROTOCOLS.items()})

    def resolve_command(self, ctx, args):
        name, _, rest = super().resolve_command(ctx, args)
        return name, None if name is None else protocol_command(name), rest


def protocol_command(name: str) -> TyperCommand:
    """The subcommand a protocol module's register(app) defines."""
    protocol_app = typer.Typer(add_completion=False)
    importlib.import_module(f"evaluate.protocols.{name}").register(protocol_app)
    return typer.main.get_command(protocol_app)


app = typer.Typer(cls=ProtocolGroup, add_completion=False, no_args_is_help=True,
                  help="Privacy and utility protocols on feature stores; each writes a JSON result and prints a table.")


@app.callback()
def evaluate() -> None:
    # typer makes a group only of registered commands or a callback; ProtocolGroup adds the commands
    pass


def main() -> None:
    run_app(app)
