"""The ``evaluate`` console script: evaluate's protocol commands plus report, tradeoff and attack.

Those three train or export anonymizers (anonymize), so they live in pipelines, above both evaluate and
anonymize; the protocols stay in ``evaluate.cli``. As there, each command's module is imported only when the
command runs or shows its own help, so ``evaluate --help`` loads no heavy library; and as a protocol's module
does, a command's module (``pipelines/<name>_command.py``: its settings and its options) imports what runs it
(``pipelines/<name>.py``: torch, numpy, matplotlib) only when it runs, so its own ``--help`` loads none either.
"""

from __future__ import annotations

from evaluate.cli import ProtocolGroup, evaluate_app
from featstore.cli import run_app

# name -> (the module whose register(app) defines the command, the command's one-line help: the docstring's first
# paragraph); tests/pipelines/test_evaluate_cli.py checks both agree with the modules and with
# evaluate.cli.PIPELINES_COMMANDS
ORCHESTRATION = {
    "attack": ("pipelines.attack_command", "Inversion attacks (Table 8): black-box inverter and white-box preimage; "
                                           "action top-1 and attribute cMAP."),
    "tradeoff": ("pipelines.tradeoff_command", "Privacy-utility trade-off of a sweep of runs: points, Pareto front, "
                                               "normalized hypervolume, PNG."),
    "report": ("pipelines.report_command", "Run every protocol the stores support, raw vs anonymized; write "
                                           "report.md, results.json and figures."),
}


class EvaluateGroup(ProtocolGroup):
    """The protocols, then the orchestration commands (in the order ``evaluate --help`` always listed them)."""

    COMMANDS = {**ProtocolGroup.COMMANDS, **ORCHESTRATION}


app = evaluate_app(EvaluateGroup)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
