"""The paper's table form: one column per evaluation; a raw row, one anonymized row per anonymizer (with the
relative change to raw), and the published numbers of the same encoder beside them (``published`` in the recipe
file). A trade-off recipe adds the normalized hypervolume of the sweep's Pareto front."""

from __future__ import annotations

import json
from pathlib import Path

from data_manifests.errors import FeatstoreError
from pipelines.recipes.loader import ANONYMIZED, Recipe, variant_labels
from pipelines.report import lookup, percent, table1_cell

TABLE_FILE = "table.md"
TABLE_JSON = "table.json"


def table_rows(recipe: Recipe, encoder: str, results: dict[tuple[str, str], dict]) -> list[dict]:
    """One entry per column: the measured values per row (fractions; rows raw and each anonymizer's label) and the
    published ones (percent, None where the paper has none)."""
    published = recipe.published.get(encoder, {})
    labels = ["raw", *variant_labels(recipe)]
    columns = []
    for evaluation in recipe.evaluate:
        result = results[evaluation.key]
        if lookup(result["raw"], evaluation.metric_path) is None:  # a misspelled metric, not a missing number
            raise FeatstoreError(f"recipe {recipe.name!r}, column {evaluation.column}: no number at "
                                 f"{evaluation.metric!r} in the {evaluation.protocol} result")
        columns.append({"column": evaluation.column, "store": evaluation.store, "protocol": evaluation.protocol,
                        "metric": evaluation.metric,
                        "values": {label: lookup(result[label], evaluation.metric_path) for label in labels},
                        "published": {label: published.get(label, {}).get(evaluation.column) for label in labels}})
    return columns


def render(recipe: Recipe, encoder: str, columns: list[dict], tradeoff: dict | None = None) -> str:
    labels = variant_labels(recipe)
    lines = [f"# {recipe.name}: {encoder}", "", f"Source: {recipe.source}.", "",
             "Measured here (percent; an anonymized row with its relative change to raw), then the paper's numbers "
             f"for {encoder} ('-': not published for it).", "",
             "| Row | " + " | ".join(column["column"] for column in columns) + " |",
             "|" + " --- |" * (len(columns) + 1)]
    lines.append("| Raw | " + " | ".join(percent(column["values"]["raw"]) for column in columns) + " |")
    for label in labels:
        lines.append(f"| {label[0].upper() + label[1:] if label == ANONYMIZED else label} | " + " | ".join(
            table1_cell(column["values"]["raw"], column["values"][label]) for column in columns) + " |")
    if recipe.published.get(encoder):
        lines.append("| Paper raw | " + " | ".join(_published(column, "raw") for column in columns) + " |")
        for label in labels:
            lines.append(f"| Paper {label} | " + " | ".join(_published(column, label) for column in columns) + " |")
    else:
        lines += ["", f"The paper publishes no numbers of this recipe for {encoder}."]
    if tradeoff is not None:
        lines += ["", f"Trade-off ({tradeoff['utility_metric']} against {tradeoff['privacy_metric']}): normalized "
                      f"hypervolume of the Pareto front {tradeoff['hypervolume']:.4f} "
                      f"(raw point alone: {_hypervolume(tradeoff)}); front: {', '.join(_front_labels(recipe, tradeoff))}."]
    return "\n".join(lines) + "\n"


def _published(column: dict, label: str) -> str:
    raw, value = column["published"]["raw"], column["published"][label]
    if value is None:
        return "-"
    if label == "raw":
        return f"{value:.2f}"
    return table1_cell(raw / 100 if raw is not None else None, value / 100)


def _hypervolume(tradeoff: dict) -> str:
    raw = tradeoff.get("raw")
    return "-" if raw is None else f"{raw['hypervolume']:.4f}"


def _front_labels(recipe: Recipe, tradeoff: dict) -> list[str]:
    labels = variant_labels(recipe)  # the sweep's runs, in order
    return [labels[index] for index in tradeoff["front"]]


def write_table(recipe: Recipe, encoder: str, results: dict[tuple[str, str], dict], out: Path,
                tradeoff: dict | None = None) -> Path:
    """``table.md`` (the table form) and ``table.json`` (its numbers) in ``out``; returns the markdown file."""
    columns = table_rows(recipe, encoder, results)
    record = {"recipe": recipe.name, "encoder": encoder, "columns": columns}
    if tradeoff is not None:
        record["tradeoff"] = {"hypervolume": tradeoff["hypervolume"], "front": _front_labels(recipe, tradeoff),
                              "raw_hypervolume": (tradeoff.get("raw") or {}).get("hypervolume"),
                              "points": [{"label": label, "utility": point["utility"], "privacy": point["privacy"]}
                                         for label, point in zip(variant_labels(recipe), tradeoff["points"])]}
    (out / TABLE_JSON).write_text(json.dumps(record, indent=2) + "\n")
    path = out / TABLE_FILE
    path.write_text(render(recipe, encoder, columns, tradeoff))
    return path
