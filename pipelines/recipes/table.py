"""The paper's table form: one column per evaluation; a raw row, the pixel-level baseline rows and one anonymized
row per anonymizer (each with the relative change to raw), and the published numbers of the same encoder beside
them (``published`` in the recipe file). A pixel baseline row shows '-' in the columns it skips; a note under the
table names the datasets a blur row blurred over the whole frame (no person box file), unlike the paper. A trade-off
recipe adds the normalized hypervolume of the sweep's Pareto front."""

from __future__ import annotations

import json
from pathlib import Path

from data_manifests.errors import FeatstoreError
from pipelines.recipes.loader import ANONYMIZED, Recipe, pixel_evaluations, variant_labels
from pipelines.report import lookup, percent, table1_cell

TABLE_FILE = "table.md"
TABLE_JSON = "table.json"


def table_rows(recipe: Recipe, encoder: str, results: dict[tuple[str, str], dict],
               pixel_labels: list[str] = ()) -> list[dict]:
    """One entry per column: the measured values per row (fractions; rows raw, the pixel baselines run and each
    anonymizer's label; None in a column the pixel baselines skip) and the published ones (percent, None where the
    paper has none)."""
    published = recipe.published.get(encoder, {})
    labels = ["raw", *pixel_labels, *variant_labels(recipe)]
    skipped = skipped_columns(recipe)
    columns = []
    for evaluation in recipe.evaluate:
        result = results[evaluation.key]
        if lookup(result["raw"], evaluation.metric_path) is None:  # a misspelled metric, not a missing number
            raise FeatstoreError(f"recipe {recipe.name!r}, column {evaluation.column}: no number at "
                                 f"{evaluation.metric!r} in the {evaluation.protocol} result")
        columns.append({"column": evaluation.column, "store": evaluation.store, "protocol": evaluation.protocol,
                        "metric": evaluation.metric,
                        "values": {label: None if label in pixel_labels and evaluation.column in skipped
                                   else lookup(result[label], evaluation.metric_path) for label in labels},
                        "published": {label: published.get(label, {}).get(evaluation.column) for label in labels}})
    return columns


def render(recipe: Recipe, encoder: str, columns: list[dict], tradeoff: dict | None = None,
           pixel_labels: list[str] = (), whole_frame_blur: dict[str, list[str]] | None = None) -> str:
    labels = [*pixel_labels, *variant_labels(recipe)]  # the paper's order: raw, pixel baselines, the anonymizer
    lines = [f"# {recipe.name}: {encoder}", "", f"Source: {recipe.source}.", "",
             "Measured here (percent; every row below raw with its relative change to raw), then the paper's numbers "
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
    skipped = skipped_columns(recipe) if pixel_labels else []
    if skipped:
        lines += ["", f"The pixel baseline rows are not evaluated on {', '.join(skipped)} (skip_columns in the "
                      f"recipe): '-'."]
    for label, stores in (whole_frame_blur or {}).items():
        lines += ["", f"{label}: no person box file (--boxes) for {', '.join(stores)}: the whole frame was blurred "
                      f"there, not the person boxes as in the paper; its cells of those datasets do not compare with "
                      f"the paper's {label} row."]
    if tradeoff is not None:
        lines += ["", f"Trade-off ({tradeoff['utility_metric']} against {tradeoff['privacy_metric']}): normalized "
                      f"hypervolume of the Pareto front {tradeoff['hypervolume']:.4f} "
                      f"(raw point alone: {_hypervolume(tradeoff)}); front: {', '.join(_front_labels(recipe, tradeoff))}; "
                      f"plot: {Path(tradeoff['plot']).name}."]
    return "\n".join(lines) + "\n"


def skipped_columns(recipe: Recipe) -> list[str]:
    """The columns the pixel baseline rows do not evaluate, in the table's order."""
    evaluated = pixel_evaluations(recipe)
    return [evaluation.column for evaluation in recipe.evaluate if evaluation not in evaluated]


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
                tradeoff: dict | None = None, pixel_labels: list[str] = (),
                whole_frame_blur: dict[str, list[str]] | None = None) -> Path:
    """``table.md`` (the table form) and ``table.json`` (its numbers) in ``out``; returns the markdown file.
    ``whole_frame_blur``: the blur rows that had no person box file for some datasets (row label -> those stores)."""
    columns = table_rows(recipe, encoder, results, pixel_labels)
    record = {"recipe": recipe.name, "encoder": encoder, "pixel_baselines": list(pixel_labels),
              "pixel_skipped_columns": skipped_columns(recipe) if pixel_labels else [],
              "whole_frame_blur": dict(whole_frame_blur or {}), "columns": columns}
    if tradeoff is not None:
        record["tradeoff"] = {"hypervolume": tradeoff["hypervolume"], "front": _front_labels(recipe, tradeoff),
                              "raw_hypervolume": (tradeoff.get("raw") or {}).get("hypervolume"),
                              "raw": {key: tradeoff["raw"][key] for key in ("utility", "privacy")},
                              "utility_metric": tradeoff["utility_metric"], "privacy_metric": tradeoff["privacy_metric"],
                              "plot": Path(tradeoff["plot"]).name,
                              "points": [{"label": label, "utility": point["utility"], "privacy": point["privacy"],
                                          "on_front": point["on_front"]}
                                         for label, point in zip(variant_labels(recipe), tradeoff["points"])]}
    (out / TABLE_JSON).write_text(json.dumps(record, indent=2) + "\n")
    path = out / TABLE_FILE
    path.write_text(render(recipe, encoder, columns, tradeoff, pixel_labels, whole_frame_blur))
    return path
