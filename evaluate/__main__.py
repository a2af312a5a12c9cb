"""``python -m evaluate``: the protocol commands only; report, tradeoff and attack are the ``evaluate`` console
script's (``pipelines.evaluate_cli``), and asking for one here says so in one line."""

from evaluate.cli import main

main()
