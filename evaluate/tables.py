"""Terminal output of the protocols: the consoles and the metric tables (rich)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def format_value(value) -> str:
    if value is None:
        return "n/a (undefined)"
    if isinstance(value, float):
        return "nan (undefined)" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value[:8]) + (" ..." if len(value) > 8 else "")
    return str(value)


def flatten_metrics(metrics: Mapping, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts -> [("a.b", value)] rows, in insertion order."""
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(flatten_metrics(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def print_metrics(title: str, metrics: Mapping, skip: tuple[str, ...] = ("timing",)) -> None:
    """A two-column rich table of every (flattened) metric; keys in ``skip`` are left out."""
    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in flatten_metrics({k: v for k, v in metrics.items() if k not in skip}):
        table.add_row(name, format_value(value))
    console.print(table)


def print_columns(title: str, columns: list[str], rows: list[list]) -> None:
    """A rich table with a header row (e.g. attributes x attackers)."""
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(format_value(v) if not isinstance(v, str) else v for v in row))
    console.print(table)
