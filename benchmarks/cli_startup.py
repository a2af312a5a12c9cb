"""Command-line start-up: ``--help`` of every tool and subcommand, side by side with a bare typer app.

    python benchmarks/cli_startup.py [--repeats 5]

Each command runs in a fresh interpreter (``python -m <tool> ... --help``, output to /dev/null) --repeats times;
the best wall time is reported. The reference is the smallest typer app there is (two commands, one option
each) run the same way: the time typer itself needs to import (typer 0.2x imports pydantic and rich) and to
render a help page. Reported per command: seconds, and the ratio to that floor; issue #14's target is every
``--help`` under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (
    "featstore --help", "featstore extract --help", "featstore export --help",
    "anonymize --help", "anonymize train --help", "anonymize export --help",
    "pipelines.evaluate_cli --help", "pipelines.evaluate_cli ar --help", "pipelines.evaluate_cli tad --help",
    "pipelines.evaluate_cli attack --help", "pipelines.evaluate_cli report --help",
    "pipelines.evaluate_cli tradeoff --help", "pipelines --help", "pipelines run --help",
)
BARE_TYPER_APP = '''
import typer

app = typer.Typer()


@app.command()
def first(store: str = typer.Option(..., help="A store.")) -> None:
    pass


@app.command()
def second(store: str = typer.Option(..., help="A store.")) -> None:
    pass


app()
'''


def best_seconds(argv: list[str], repeats: int) -> float:
    env = dict(os.environ, COLUMNS="120")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bare = Path(folder) / "bare_typer_app.py"
        bare.write_text(BARE_TYPER_APP)
        floor = best_seconds([sys.executable, str(bare), "first", "--help"], args.repeats)
    print(f"bare typer app, subcommand --help: {floor:.3f} s (the floor)")
    print(f"{'command':42s} {'seconds':>8s} {'/ floor':>8s}  under 0.5 s")
    for command in COMMANDS:
        seconds = best_seconds([sys.executable, "-m", *command.split()], args.repeats)
        shown = command.replace("pipelines.evaluate_cli", "evaluate")
        print(f"{shown:42s} {seconds:8.3f} {seconds / floor:8.2f}  {'yes' if seconds < 0.5 else 'no'}")


if __name__ == "__main__":
    main()
