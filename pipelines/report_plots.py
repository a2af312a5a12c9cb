"""The report's figures beyond per-attribute AP: training curves, utility before/after, embedding
projections and the spread over seeds.

Each ``*_data`` function gathers what a figure shows (plain lists, JSON-ready) and each ``plot_*``
function draws it; the report writes the data beside the PNG as ``<figure>.json``, so every plotted
number can be read back and checked.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg  # the Agg canvas: no display, no global backend
from matplotlib.figure import Figure

from anonymize import checkpoint as ckpt
from anonymize.baselines import BaselineConfig, is_baseline_run
from anonymize.config import TrainConfig
from evaluate.results import json_safe
from data_manifests.errors import FeatstoreError
from featstore.store import Store

TRAIN_TERMS = ("loss", "utility", "privacy", "lc", "adversary")  # the per-epoch means anonymize/train.py records
PROJECTION_POINTS = 300  # test clips drawn for the PCA / t-SNE panels
BASELINE_RECORD_KEYS = ("out", "seed", "fitted", "sha256", "created")  # not settings: where, which seed, what came out


def _finite_or_none(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path, data) -> None:
    """The PNG and its data sidecar ``<stem>.json``."""
    figure.savefig(path, bbox_inches="tight")
    path.with_suffix(".json").write_text(json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n")


# ---------------------------------------------------------------------------------------------- training curves
def training_curves_data(runs: list[Path]) -> tuple[dict, dict]:
    """({run name: {"epochs", "train": {term: values}, "val_epochs", "val": {metric: values}}},
    {run name: why it has no curves}). A baseline run folder is fitted, not trained: no history."""
    curves, skipped = {}, {}
    for run in runs:
        run = Path(run)
        if is_baseline_run(run):
            skipped[run.name] = "a fitted baseline (anonymize baseline): no training history"
            continue
        history = ckpt.read_checkpoint_info(run).get("history") or []
        epochs = [r for r in history if "loss" in r]  # epoch 0 is the initialization record: validation only
        validated = [r for r in history if r.get("val")]
        if not epochs and not validated:
            skipped[run.name] = "no trained epoch in its history"
            continue
        terms = [t for t in TRAIN_TERMS if any(_finite_or_none(r.get(t)) is not None for r in epochs)]
        metrics = sorted({key for r in validated for key in r["val"]})
        curves[run.name] = {
            "epochs": [r["epoch"] for r in epochs],
            "train": {t: [_finite_or_none(r.get(t)) for r in epochs] for t in terms},
            "val_epochs": [r["epoch"] for r in validated],
            "val": {m: [_finite_or_none(r["val"].get(m)) for r in validated] for m in metrics},
        }
    return curves, skipped


def plot_training_curves(curves: dict, path: Path) -> None:
    """One panel per loss term and validation metric, one line per run."""
    panels = [("train", t) for t in TRAIN_TERMS if any(t in c["train"] for c in curves.values())]
    panels += [("val", m) for m in sorted({m for c in curves.values() for m in c["val"]})]
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = _new_figure(3.4 * columns + 1.6, 2.6 * rows)
    for index, (kind, name) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        for colour, (run, curve) in enumerate(curves.items()):
            xs = curve["epochs"] if kind == "train" else curve["val_epochs"]
            ys = curve[kind].get(name)
            if ys is not None:
                axes.plot(xs, [np.nan if y is None else y for y in ys], marker=".", color=f"C{colour % 10}",
                          label=run)
        axes.set_title(f"train {name}" if kind == "train" else f"validation {name}", fontsize=9)
        axes.set_xlabel("epoch", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    handles, names = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="run")
    figure.tight_layout()
    save_figure(figure, path, curves)


# ---------------------------------------------------------------------------------------------- utility
def utility_data(table1: list[dict]) -> list[dict]:
    """Every utility row of the Table 1 form (action top-1, retrieval R@1, TAD mAP, AD AUC): raw and anonymized."""
    return [{"pair": row["pair"], "metric": row["metric"], "raw": row["raw"], "anonymized": row["anonymized"]}
            for row in table1 if row["kind"] == "utility"]


def plot_utility(rows: list[dict], path: Path) -> None:
    """Grouped bars: raw against anonymized for every utility metric the report measured."""
    pairs = {row["pair"] for row in rows}
    names = [row["metric"] if len(pairs) == 1 else f"{row['pair']}: {row['metric']}" for row in rows]
    x = np.arange(len(rows))
    figure = _new_figure(1.5 * len(rows) + 2.5, 3.8)
    axes = figure.add_subplot()
    for shift, role, label in ((-0.2, "raw", "raw"), (0.2, "anonymized", "anonymized")):
        values = [np.nan if row[role] is None else row[role] for row in rows]
        bars = axes.bar(x + shift, values, 0.4, label=label)
        axes.bar_label(bars, labels=["-" if math.isnan(v) else f"{v * 100:.1f}" for v in values], fontsize=7)
    axes.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    axes.set_ylim(0, 1.1)
    axes.set_ylabel("score (higher is better)")
    axes.set_title("utility before and after anonymization", fontsize=10)
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=2, fontsize=8, frameon=False)
    figure.tight_layout()
    save_figure(figure, path, rows)


# ---------------------------------------------------------------------------------------------- projections
def projection_data(raw: Store, anon: Store, attribute: str | None, seed: int,
                    max_points: int = PROJECTION_POINTS) -> dict | None:
    """PCA and t-SNE of up to ``max_points`` test clips, raw and anonymized (the same clips, the same seed),
    with each clip's action label and value of ``attribute`` (its video's); None without test clips."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    videos = raw.videos()
    offsets = raw.clip_offsets()
    counts = np.diff(offsets)
    test = np.flatnonzero(videos.split == "test")
    rows = np.concatenate([np.arange(offsets[v], offsets[v + 1]) for v in test]) if len(test) else np.zeros(0, int)
    if len(rows) < 5:  # t-SNE needs a handful of points
        return None
    rows = np.sort(np.random.default_rng(seed).choice(rows, size=min(max_points, len(rows)), replace=False))
    video_of_row = np.repeat(np.arange(len(counts)), counts)[rows]
    attribute_names = raw.attribute_names
    data = {"rows": rows.tolist(), "seed": seed, "action": videos.label[video_of_row].tolist(),
            "class_names": raw.class_names, "attribute": attribute}
    if attribute is not None:
        data["attribute_value"] = videos.attributes[video_of_row, attribute_names.index(attribute)].tolist()
    perplexity = min(30.0, (len(rows) - 1) / 3)
    for role, store in (("raw", raw), ("anon", anon)):
        embeddings = np.asarray(store.clip_embeddings[rows.min():rows.max() + 1], dtype=np.float64)[rows - rows.min()]
        data[f"pca_{role}"] = PCA(n_components=2, random_state=seed).fit_transform(embeddings).tolist()
        data[f"tsne_{role}"] = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed) \
            .fit_transform(embeddings).tolist()
    return data


def plot_projection(data: dict, title: str, path: Path) -> None:
    """Rows: raw, anonymized; columns: PCA and t-SNE, coloured by the attribute and by action."""
    colourings = [("action", "action")] + ([("attribute_value", data["attribute"])] if data["attribute"] else [])
    columns = [(method, key, name) for method in ("pca", "tsne") for key, name in colourings]
    figure = _new_figure(3.0 * len(columns), 6.0)
    for row, (role, role_title) in enumerate((("raw", "raw"), ("anon", "anonymized"))):
        for column, (method, key, name) in enumerate(columns):
            axes = figure.add_subplot(2, len(columns), row * len(columns) + column + 1)
            xy = np.asarray(data[f"{method}_{role}"])
            values = np.asarray(data[key])
            for colour, value in enumerate(np.unique(values)):
                chosen = values == value
                if key == "action":
                    label = data["class_names"][value] if 0 <= value < len(data["class_names"]) else "unlabelled"
                else:
                    label = f"{name} = {value}"
                axes.scatter(xy[chosen, 0], xy[chosen, 1], s=6, color=f"C{colour % 10}", label=label)
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(f"{role_title}: {'PCA' if method == 'pca' else 't-SNE'}, by {name}", fontsize=8)
            if row == 1:
                axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=3, fontsize=6, frameon=False,
                            markerscale=2)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path, data)


def leakiest_attribute(pair: dict) -> str | None:
    """The attribute the raw store leaks most (highest worst-case AP above chance), full clips first."""
    for protocol in ("vp", "privacy"):
        result = pair["results"].get(protocol)
        if result is None:
            continue
        per_attribute, chance = result["raw"]["worst_case"]["per_attribute"], result["raw"]["positive_rate"]
        margins = {name: ap - chance[name] for name, ap in per_attribute.items()
                   if _finite_or_none(ap) is not None and _finite_or_none(chance.get(name)) is not None}
        if margins:
            return max(margins, key=margins.get)
    return None


# ---------------------------------------------------------------------------------------------- spread over seeds
def settings_without_seed(run: Path) -> str:
    """What defines a run except its seed, as a canonical string: runs equal here are repeats."""
    run = Path(run)
    if is_baseline_run(run):
        record = asdict(BaselineConfig.load(run / ckpt.BASELINE_FILE))
        settings = {k: v for k, v in record.items() if k not in BASELINE_RECORD_KEYS}
    else:
        settings = {k: v for k, v in TrainConfig.load(run / ckpt.CONFIG_FILE).training_settings().items() if k != "seed"}
    return json.dumps(json_safe(settings), sort_keys=True)


def seed_spread_data(points: list[dict]) -> list[dict]:
    """Groups of trade-off points whose runs differ only by seed (two or more): per coordinate the mean and
    the min-max."""
    groups: dict[str, list[dict]] = {}
    for point in points:
        groups.setdefault(settings_without_seed(Path(point["run"])), []).append(point)
    spread = []
    for members in groups.values():
        if len(members) < 2:
            continue
        entry = {"label": members[0]["label"] + ("" if members[0]["kind"] == "baseline"
                                                 else f", w_B {members[0]['w_budget']:g}"),
                 "runs": [p["name"] for p in members], "seeds": [seed_of_run(Path(p["run"])) for p in members]}
        for coordinate in ("utility", "privacy"):
            values = [p[coordinate] for p in members]
            entry[coordinate] = {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values)),
                                 "values": values}
        spread.append(entry)
    return spread


def seed_of_run(run: Path) -> int:
    if is_baseline_run(run):
        return BaselineConfig.load(Path(run) / ckpt.BASELINE_FILE).seed
    return TrainConfig.load(Path(run) / ckpt.CONFIG_FILE).seed


def plot_seed_spread(spread: list[dict], utility_metric: str, privacy_metric: str, path: Path) -> None:
    """Per group of repeats: the mean point with min-max bars on both coordinates, and each seed's point."""
    if not spread:
        raise FeatstoreError("no runs repeated over seeds: nothing to plot")
    figure = _new_figure(7.5, 5.0)
    axes = figure.add_subplot()
    for index, group in enumerate(spread):
        utility, privacy = group["utility"], group["privacy"]
        colour = f"C{index % 10}"
        axes.errorbar([utility["mean"]], [privacy["mean"]],
                      xerr=[[utility["mean"] - utility["min"]], [utility["max"] - utility["mean"]]],
                      yerr=[[privacy["mean"] - privacy["min"]], [privacy["max"] - privacy["mean"]]],
                      fmt="o", color=colour, capsize=4, label=f"{group['label']} ({len(group['runs'])} seeds)")
        axes.scatter(utility["values"], privacy["values"], s=12, facecolors="none", edgecolors=colour)
    axes.set_xlabel(f"utility: {utility_metric} (higher is better)")
    axes.set_ylabel(f"privacy: {privacy_metric} (lower is more private)")
    axes.set_title("spread over seeds: mean, min-max (bars) and each seed (hollow)", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    save_figure(figure, path, spread)
