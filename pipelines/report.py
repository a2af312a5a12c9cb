"""The evaluation report: every protocol a pair of stores supports, raw against anonymized, in one folder.

``evaluate report --raw-store R --store A [--raw-store R2 --store A2 ...] [--run RUN] [--sweep RUN ...]
--out report/`` (old names ``--raw`` / ``--anon``); stores and ``--run`` are paths or fsspec URLs.

For each (raw, anonymized) pair the suite is chosen from what the raw store holds (its dataset task,
labels, attributes and static rows):

- action videos with labels: ``ar`` (top-1) and ``retrieval`` (R@1);
- private attributes with static rows: ``privacy`` (cMAP, worst case over every attacker);
- private attributes with clip rows: ``vp`` (cMAP over the evenly spaced clips, worst case over every
  attacker: the headline, the embeddings users consume);
- a ``tad`` dataset: ``tad`` (average mAP); an ``ad`` dataset: ``ad`` (frame ROC AUC).

Table 1 rows of a cMAP carry the leakage removed, (raw - anon) / (raw - chance), and the full-clip row also the
null floor of the anonymized store (``vp --null-permutations``) and the share removed above it; pairs with static and
full clips get the shortcut diagnostics (``evaluate.shortcut``). ``--run`` adds the inversion ``attack``
on the first pair with action labels; ``--sweep`` adds the ``tradeoff`` of those runs (AAM or baseline
run folders, each method with its own front). The folder then holds ``report.md`` (the paper's Table 1 form, raw ->
anonymized with the relative change, then each protocol's details), ``results.json`` (every metric
and config), each protocol's own JSON under ``<pair>/<protocol>-{raw,anon}.json``, and the figures
``attributes-<pair>.png`` (per-attribute AP, raw vs anonymized, with chance) and ``tradeoff.png``, and
the figures of ``pipelines.report_plots`` (training curves of the runs, utility before/after, each
pair's PCA / t-SNE of test clips, the spread over seeds of repeated sweep runs), each with its plotted
values as ``<figure>.json``.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluate.data import open_store
from evaluate.results import json_safe, save_result
from evaluate.tables import err_console, print_columns
from evaluate.metrics import leakage_removed
from evaluate.protocols import ad, ar, privacy, retrieval, tad, vp
from evaluate.shortcut import shortcut_diagnostics
from pipelines import attack, report_plots, tradeoff
from data_manifests.errors import FeatstoreError
from featstore.exporters import local_output
from featstore.store import Store, utc_now
from pipelines.report_command import CONFIG_FILE, REPORT_FILE, RESULTS_FILE, ReportConfig


@dataclass(frozen=True)
class Column:
    """One Table 1 column: where its number is in a protocol's metrics, and which direction is better."""

    label: str
    protocol: str
    path: tuple[str, ...]
    chance_path: tuple[str, ...] | None
    kind: str  # "utility" (higher is better) | "privacy" (lower is better: leakage)


COLUMNS = [
    # The headline: what the embeddings users consume (full clips) leak to the strongest attacker we run.
    Column("attribute cMAP, full clips, worst case", "vp", ("worst_case", "cmap"), ("chance_cmap",), "privacy"),
    Column("attribute cMAP, static clips, worst case", "privacy", ("worst_case", "cmap"), ("chance_cmap",), "privacy"),
    Column("attribute cMAP, static clips (authors' attacker, test-selected epoch)", "privacy",
           ("attackers", "authors", "cmap"),
           ("chance_cmap",), "privacy"),
    Column("action top-1", "ar", ("top1",), ("chance_top1",), "utility"),
    Column("retrieval R@1", "retrieval", ("R@1",), None, "utility"),
    Column("TAD average mAP", "tad", ("average_mAP",), ("chance_average_mAP",), "utility"),
    Column("AD ROC AUC", "ad", ("roc_auc",), ("chance_roc_auc",), "utility"),
]


def lookup(metrics: dict, path: tuple[str, ...]) -> float | None:
    """The number at ``path`` in a protocol's metrics; None when it is missing or not a number."""
    value = metrics
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def relative_change(raw: float, anon: float) -> float | None:
    """(anon - raw) / raw; None when raw is 0 or either is missing."""
    if raw is None or anon is None or raw == 0 or not math.isfinite(raw) or not math.isfinite(anon):
        return None
    return (anon - raw) / abs(raw)


def table1_cell(raw: float | None, anon: float | None) -> str:
    """The paper's Table 1 cell: the anonymized value in percent with its relative change, e.g. 41.07 (-35.5%)."""
    if anon is None:
        return "-"
    change = relative_change(raw, anon)
    suffix = "" if change is None else f" ({change * 100:+.1f}%)"
    return f"{anon * 100:.2f}{suffix}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


# ---------------------------------------------------------------------------------------------- the suite
def suite_of(store: Store) -> list[str]:
    """The protocols a store supports, from its dataset task, labels, attributes and rows."""
    videos = store.videos()
    task = store.header.get("task", "")
    has_labels = bool(store.class_names) and bool(np.any(videos.label >= 0))
    has_attributes = videos.attributes.shape[1] > 0 and bool(np.any(videos.attributes > 0))
    n_clips, n_static = store.clip_embeddings.shape[0], store.static_embeddings.shape[0]
    splits = set(videos.split.tolist()) if len(videos.split) else set()
    if not {"train", "test"} <= splits:
        return []
    protocols = []
    if task == "action" and has_labels and n_clips:
        protocols += ["ar", "retrieval"]
    if has_attributes and n_static:
        protocols.append("privacy")
    if has_attributes and n_clips and task in ("action", "static"):
        protocols.append("vp")
    if task == "tad" and n_clips:
        protocols.append("tad")
    if task == "ad" and n_clips:
        protocols.append("ad")
    return protocols


def protocol_config(name: str, config: ReportConfig, save_head: Path | None = None, labels_from: str | None = None,
                    null_floor: bool = False):
    """The settings of one protocol run; ``labels_from`` (the raw store, for an anonymized one) is where the
    private-attribute protocols read the labels an export drops; ``null_floor``: vp also measures its null floor."""
    if name == "ar":
        return ar.ARConfig(epochs=config.ar_epochs, seed=config.seed, device=config.device)
    if name == "retrieval":
        return retrieval.RetrievalConfig(device=config.device)
    if name == "privacy":
        return privacy.PrivacyConfig(attacker="all", epochs=config.privacy_epochs, seed=config.seed, device=config.device,
                                     labels_from=labels_from)
    if name == "vp":
        return vp.VPConfig(attacker="all", epochs=config.vp_epochs, seed=config.seed, device=config.device,
                           labels_from=labels_from, null_permutations=config.vp_null_permutations if null_floor else 0)
    if name == "tad":
        return tad.TADConfig(epochs=config.tad_epochs, seed=config.seed, device=config.device,
                             save_head=None if save_head is None else str(save_head))
    if name == "ad":
        return ad.ADConfig(steps=config.ad_steps, seed=config.seed, seeds=config.ad_seeds, device=config.device,
                           save_head=None if save_head is None else str(save_head))
    raise ValueError(f"no report settings for protocol {name!r}")


PROTOCOL_MODULES = {"ar": ar, "retrieval": retrieval, "privacy": privacy, "vp": vp, "tad": tad, "ad": ad}


def check_pair(raw: Store, anon: Store) -> None:
    """The anonymized store must hold the same videos as the raw one (an export of it)."""
    raw_ids, anon_ids = raw.videos().video_id, anon.videos().video_id
    if len(raw_ids) != len(anon_ids) or not np.array_equal(raw_ids, anon_ids):
        raise FeatstoreError(f"{anon.path} does not hold the videos of {raw.path} ({len(anon_ids)} vs {len(raw_ids)} "
                             f"videos): pair each --raw-store with the store exported from it")
    if not np.array_equal(raw.clip_offsets(), anon.clip_offsets()) or \
            not np.array_equal(raw.static_offsets(), anon.static_offsets()):
        raise FeatstoreError(f"{anon.path} and {raw.path} have different rows per video: not an export of it")


def pair_name(raw: Store, index: int, taken: set[str]) -> str:
    base = raw.dataset_name or Path(str(raw.path)).stem
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(base)) or f"pair{index}"
    while name in taken:
        name = f"{name}-{index}"
    taken.add(name)
    return name


# ---------------------------------------------------------------------------------------------- run
def run(config: ReportConfig, out: Path, *, show_progress: bool = False) -> dict:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FeatstoreError(f"{out} is a file; --out names the report folder")
    stores = [(open_store(r), open_store(a)) for r, a in zip(config.raw, config.anon)]
    for raw_store, anon_store in stores:
        check_pair(raw_store, anon_store)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeatstoreError(f"cannot create the report folder {out}: {exc.strerror or exc}") from exc
    (out / CONFIG_FILE).write_text(json.dumps(json_safe(config), indent=2) + "\n")

    pairs, taken = [], set()
    for index, (raw_store, anon_store) in enumerate(stores):
        name = pair_name(raw_store, index, taken)
        folder = out / name
        protocols = suite_of(raw_store)
        err_console.rule(f"report: {name} ({', '.join(protocols) or 'nothing to evaluate'})")
        results = {}
        for protocol in protocols:
            module = PROTOCOL_MODULES[protocol]
            results[protocol] = {}
            for role, store in (("raw", raw_store), ("anon", anon_store)):
                head = folder / f"{protocol}-head-{role}.safetensors" if protocol in ("tad", "ad") else None
                labels_from = str(raw_store.path) if role == "anon" else None
                protocol_settings = protocol_config(protocol, config, head, labels_from, null_floor=role == "anon")
                metrics = module.run(store, protocol_settings, show_progress=show_progress)
                save_result(folder, f"{protocol}-{role}", protocol_settings, metrics, store)
                results[protocol][role] = metrics
                err_console.print(f"  {protocol:<9} {role:<4} done")
        pairs.append({"name": name, "raw": str(raw_store.path), "anon": str(anon_store.path),
                      "protocols": protocols, "results": results})

    report = {"created": utc_now(), "config": json_safe(config), "pairs": pairs,
              "command": " ".join(shlex.quote(a) for a in sys.argv)}
    report["table1"] = table1_rows(pairs)
    report["static_vs_clips"] = static_vs_clip_drops(pairs, stores)

    action_pair = next((p for p, (r, _) in zip(pairs, stores) if "ar" in p["protocols"]), None)
    if config.run is not None:
        if action_pair is None:
            report["attack"] = {"skipped": "no store pair with action labels"}
        else:
            index = pairs.index(action_pair)
            attack_config = attack.AttackConfig(inverter_epochs=config.attack_inverter_epochs,
                                                whitebox_steps=config.attack_whitebox_steps,
                                                action_epochs=config.ar_epochs, attribute_epochs=config.privacy_epochs,
                                                seed=config.seed, device=config.device)
            err_console.rule("report: inversion attacks")
            metrics = attack.run(stores[index][0], stores[index][1], config.run, attack_config,
                                 show_progress=show_progress)
            save_result(out / action_pair["name"], "attack", attack_config,
                        metrics, {"raw": stores[index][0], "anon": stores[index][1]})
            report["attack"] = metrics
    if config.sweep:
        err_console.rule("report: privacy-utility trade-off")
        tradeoff_config = tradeoff.TradeoffConfig(ar_epochs=config.ar_epochs, privacy_epochs=config.privacy_epochs,
                                                  raw_store=config.raw[0], seed=config.seed, device=config.device)
        metrics = tradeoff.run(config.sweep, tradeoff_config, out=out / "tradeoff",
                               show_progress=show_progress)
        save_result(out / "tradeoff", "tradeoff", tradeoff_config, metrics)
        report["tradeoff"] = metrics

    report["figures"] = write_figures(report, out)
    report["figures"].update(write_report_plots(report, config, stores, out))
    (out / RESULTS_FILE).write_text(json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
    (out / REPORT_FILE).write_text(render_markdown(report, out))
    return report


def static_vs_clip_drops(pairs: list[dict], stores: list[tuple[Store, Store]]) -> list[dict]:
    """Per pair with both privacy (static) and vp (clips) results: how far each worst-case cMAP fell, and
    the shortcut diagnostics (``evaluate.shortcut``: static-vs-clip separability, how far each kind moved).

    An anonymizer can lower static-clip leakage by treating static-looking inputs differently from real
    clips (docs/anonymize.md); the two drops side by side, with the moves, show whether it did."""
    drops = []
    for pair, (raw_store, anon_store) in zip(pairs, stores):
        static, clips = pair["results"].get("privacy"), pair["results"].get("vp")
        if static is None or clips is None:
            continue
        values = [lookup(result[role], ("worst_case", "cmap")) for result in (static, clips) for role in ("raw", "anon")]
        if None in values:
            continue
        static_raw, static_anon, clips_raw, clips_anon = values
        drops.append({"pair": pair["name"], "static_drop": static_raw - static_anon, "clips_drop": clips_raw - clips_anon,
                      **shortcut_diagnostics(raw_store, anon_store)})
    return drops


def table1_rows(pairs: list[dict]) -> list[dict]:
    """One row per (pair, column) present: raw, anonymized, relative change, chance."""
    rows = []
    for pair in pairs:
        for column in COLUMNS:
            result = pair["results"].get(column.protocol)
            if result is None:
                continue
            raw_value, anon_value = lookup(result["raw"], column.path), lookup(result["anon"], column.path)
            if raw_value is None and anon_value is None:
                continue
            chance = lookup(result["raw"], column.chance_path) if column.chance_path else None
            removed = floor = removed_above_floor = None
            if column.kind == "privacy" and None not in (raw_value, anon_value, chance):
                removed = _finite(leakage_removed(raw_value, anon_value, chance))
                # the same share measured down to what the attackers read on shuffled labels (vp --null-permutations)
                floor = lookup(result["anon"], ("null_floor", "cmap")) if column.protocol == "vp" else None
                if floor is not None:
                    removed_above_floor = _finite(leakage_removed(raw_value, anon_value, floor))
            rows.append({"pair": pair["name"], "metric": column.label, "kind": column.kind, "raw": raw_value,
                         "anonymized": anon_value, "relative_change": relative_change(raw_value, anon_value),
                         "chance": chance, "leakage_removed": removed, "null_floor": floor,
                         "removed_above_floor": removed_above_floor, "cell": table1_cell(raw_value, anon_value)})
    return rows


# ---------------------------------------------------------------------------------------------- figures
def write_figures(report: dict, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    for pair in report["pairs"]:
        for protocol in ("vp", "privacy"):
            result = pair["results"].get(protocol)
            if result is None:
                continue
            raw_ap = result["raw"]["worst_case"]["per_attribute"]
            anon_ap = result["anon"]["worst_case"]["per_attribute"]
            chance = result["raw"]["positive_rate"]
            names = list(raw_ap)
            x = np.arange(len(names))
            fig, axis = plt.subplots(figsize=(1.4 * len(names) + 2, 3.6))
            axis.bar(x - 0.2, [_nan(raw_ap[n]) for n in names], 0.4, label="raw")
            axis.bar(x + 0.2, [_nan(anon_ap[n]) for n in names], 0.4, label="anonymized")
            axis.scatter(x, [_nan(chance[n]) for n in names], marker="_", s=600, color="black", label="chance", zorder=3)
            axis.set_xticks(x, names, rotation=20, ha="right")
            axis.set_ylim(0, 1.02)
            axis.set_ylabel("average precision")
            what = "static clips" if protocol == "privacy" else "full clips"
            axis.set_title(f"{pair['name']}: attribute AP, {what}, worst case over attackers", fontsize=10, pad=24)
            # above the axes, in one row: never over a bar (the last attribute's bars sit under an inside legend)
            axis.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
            fig.tight_layout()
            path = out / f"attributes-{pair['name']}-{protocol}.png"
            fig.savefig(path, dpi=110, bbox_inches="tight")
            plt.close(fig)
            figures[f"attributes-{pair['name']}-{protocol}"] = path.name
    tradeoff_plot = (report.get("tradeoff") or {}).get("plot")
    if tradeoff_plot:
        figures["tradeoff"] = str(Path(tradeoff_plot).resolve().relative_to(out.resolve()))
    return figures


def write_report_plots(report: dict, config: ReportConfig, stores: list[tuple[Store, Store]], out: Path) -> dict[str, str]:
    """Training curves of the report's runs, utility before/after, each pair's embedding projections and the
    spread over seeds; each PNG with its data as ``<figure>.json``. Notes on what was left out go in the report."""
    figures, notes = {}, []
    # the runs' histories are read from local folders (a file:// URL is one); a run at another URL has no curve here
    named = ([config.run] if config.run else []) + config.sweep
    notes += [f"training curves: {run} skipped (read from local run folders only)" for run in named
              if local_output(run) is None]
    runs = list(dict.fromkeys(local_output(run) for run in named if local_output(run) is not None))
    if runs:
        curves, skipped = report_plots.training_curves_data(runs)
        notes += [f"training curves: {name} skipped ({why})" for name, why in skipped.items()]
        if curves:
            report_plots.plot_training_curves(curves, out / "training-curves.png")
            figures["training-curves"] = "training-curves.png"
    utility = report_plots.utility_data(report["table1"])
    if utility:
        report_plots.plot_utility(utility, out / "utility.png")
        figures["utility"] = "utility.png"
    for pair, (raw_store, anon_store) in zip(report["pairs"], stores):
        if not pair["protocols"]:
            continue
        data = report_plots.projection_data(raw_store, anon_store, report_plots.leakiest_attribute(pair), config.seed)
        if data is None:
            notes.append(f"projection: {pair['name']} has too few test clips")
            continue
        name = f"projection-{pair['name']}"
        report_plots.plot_projection(data, f"{pair['name']}: {len(data['rows'])} test clips, raw vs anonymized",
                                     out / f"{name}.png")
        figures[name] = f"{name}.png"
    trade = report.get("tradeoff")
    if trade:
        spread = report_plots.seed_spread_data(trade["points"])
        report["seed_spread"] = spread
        if spread:
            report_plots.plot_seed_spread(spread, trade["utility_metric"], trade["privacy_metric"], out / "seeds.png")
            figures["seeds"] = "seeds.png"
    report["figure_notes"] = notes
    return figures


FIGURE_CAPTIONS = {
    "training-curves": "Per-epoch training curves of every run given (loss terms; validation metrics).",
    "utility": "Utility before and after anonymization, every task the report measured (raw vs anonymized).",
    "projection": "PCA and t-SNE of test clip embeddings, raw (top) vs anonymized (bottom), coloured by action and "
                  "by the attribute the raw store leaks most.",
    "seeds": "Runs repeated over seeds: mean, min-max and each seed's point.",
}


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


# ---------------------------------------------------------------------------------------------- markdown
def render_markdown(report: dict, out: Path) -> str:
    lines = ["# Privacy and utility report", "", f"Created {report['created']}.", ""]
    lines += ["Store pairs (raw -> anonymized):", ""]
    for pair in report["pairs"]:
        lines.append(f"- **{pair['name']}**: `{pair['raw']}` -> `{pair['anon']}` "
                     f"(protocols: {', '.join(pair['protocols']) or 'none supported'})")
    lines += ["", "## Table 1 form", "",
              "Values in percent. *Anonymized* shows the anonymized value and its change relative to raw, as in the "
              "paper's Table 1. For attribute cMAP (leakage) lower is better; for every other column higher is better. "
              "*Worst case*: per attribute, the highest test AP of every attacker we run (docs/evaluate.md); the "
              "full-clip row is the headline (the embeddings users consume). *Leakage removed* = (raw - anonymized) "
              "/ (raw - chance) of a cMAP. *Null floor*: the worst case the same attackers read on the anonymized "
              "store with its attribute labels shuffled among the videos (the mean over the shuffles): a maximum "
              "over attackers sits above chance even on labels that say nothing, so leakage can only come down to "
              "about this; *removed above the floor* = (raw - anonymized) / (raw - floor).",
              "", "| pair | metric | raw | anonymized | chance | leakage removed | null floor | removed above the floor |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in report["table1"]:
        lines.append(f"| {row['pair']} | {row['metric']} | {percent(row['raw'])} | {row['cell']} | "
                     f"{percent(row['chance'])} | {share(row.get('leakage_removed'))} | "
                     f"{'' if row.get('null_floor') is None else percent(row['null_floor'])} | "
                     f"{share(row.get('removed_above_floor'))} |")
    lines.append("")
    for drop in report.get("static_vs_clips", []):
        separability = drop.get("static_vs_clip_separability")
        moves = "" if drop.get("move_static") is None or drop.get("move_clips") is None else (
            f" The anonymizer moved static clips {drop['move_static']:.3g} and full clips {drop['move_clips']:.3g} "
            "(mean squared move / spread of the raw data).")
        lines += [f"**{drop['pair']}**: worst-case attribute cMAP fell {percent(drop['static_drop'])} points on static "
                  f"clips and {percent(drop['clips_drop'])} points on full clips. Static clips are "
                  f"{'-' if separability is None else f'{separability * 100:.1f}%'} separable from full clips "
                  f"(logistic regression, raw test split).{moves} A drop on static clips that full clips do not share, "
                  "with static clips moved far more, is the static-clip shortcut (docs/anonymize.md, "
                  "\"Does it anonymize?\").", ""]
    for pair in report["pairs"]:
        for protocol in ("vp", "privacy"):
            result = pair["results"].get(protocol)
            if result is None:
                continue
            what = "full clips" if protocol == "vp" else "static clips"
            lines += [f"### {pair['name']}: per-attribute AP, {what} ({protocol})", "",
                      "| attribute | raw (worst case) | anonymized (worst case) | anonymized: strongest attacker | chance |",
                      "|---|---:|---:|---|---:|"]
            for name in result["raw"]["positive_rate"]:
                values = [result[role]["worst_case"]["per_attribute"].get(name) for role in ("raw", "anon")]
                source = result["anon"]["worst_case"].get("source", {}).get(name, "")
                lines.append(f"| {name} | " + " | ".join(percent(v) for v in values)
                             + f" | {source} | {percent(result['raw']['positive_rate'][name])} |")
            figure = report["figures"].get(f"attributes-{pair['name']}-{protocol}")
            if figure:
                lines += ["", f"![attribute AP]({figure})"]
            lines.append("")
    attack_metrics = report.get("attack")
    if attack_metrics and "skipped" not in attack_metrics:
        lines += ["## Inversion attacks (the paper's Table 8 form)", "",
                  "Every row is scored by the same action and attribute heads, trained on *raw* embeddings "
                  "(so the anonymized row is not the freshly trained attacker of the Table 1 form); the "
                  "attacker inverts with (raw, anonymized) pairs of the training split (black-box) or the "
                  "AAM's weights (white-box).", "",
                  "| embeddings | action top-1 | attribute cMAP |", "|---|---:|---:|"]
        for name, row in attack_metrics["table"].items():
            lines.append(f"| {attack.ROW_TITLES[name]} | {percent(_finite(row['action_top1']))} | "
                         f"{percent(_finite(row['attribute_cmap']))} |")
        lines.append("")
    elif attack_metrics:
        lines += ["## Inversion attacks", "", f"Skipped: {attack_metrics['skipped']}.", ""]
    trade = report.get("tradeoff")
    if trade:
        lines += ["## Privacy-utility trade-off", "",
                  f"Normalized hypervolume of the Pareto front: **{trade['hypervolume']:.4f}** "
                  f"(reference point: top-1 {trade['reference']['utility']:g}, cMAP {trade['reference']['privacy']:g}; "
                  f"definition in docs/evaluate.md).", "",
                  f"Privacy: {trade.get('privacy_metric', 'attribute cMAP')}.", "",
                  "| run | method | w_T | w_B | w_LC | action top-1 | attribute cMAP | on front |",
                  "|---|---|---:|---:|---:|---:|---:|:-:|"]
        for point in trade["points"]:
            weights = ("| | |" if point.get("kind") == "baseline" else
                       f"{point['w_utility']:g} | {point['w_budget']:g} | {point['w_lc']:g} |")
            lines.append(f"| {point['name']} | {point.get('label', '')} | {weights} {percent(point['utility'])} | "
                         f"{percent(point['privacy'])} | {'yes' if point['on_front'] else ''} |")
        if trade.get("raw"):
            lines.append(f"| raw (not anonymized) | | | | | {percent(trade['raw']['utility'])} | "
                         f"{percent(trade['raw']['privacy'])} | |")
        if trade.get("methods"):
            lines += ["", "Each method's own front (same reference point): the default objective against each "
                      "baseline on equal terms.", "", "| method | runs | normalized hypervolume |", "|---|---:|---:|"]
            for method, front in trade["methods"].items():
                supervised = " (supervised: reads attribute labels)" if front["supervised"] else ""
                lines.append(f"| {method}{supervised} | {len(front['runs'])} | {front['hypervolume']:.4f} |")
            if trade.get("raw"):
                lines.append(f"| raw (not anonymized) | | {trade['raw']['hypervolume']:.4f} |")
        if report["figures"].get("tradeoff"):
            lines += ["", f"![trade-off]({report['figures']['tradeoff']})"]
        lines.append("")
    figures = [(key, path) for key, path in report["figures"].items() if key.split("-")[0] in
               ("training", "utility", "projection", "seeds")]
    if figures or report.get("figure_notes"):
        lines += ["## Figures", ""]
        for key, path in figures:
            caption = FIGURE_CAPTIONS["training-curves" if key == "training-curves" else key.split("-")[0]]
            lines += [f"![{key}]({path})", "", f"*{caption}* Plotted values: `{Path(path).with_suffix('.json')}`.", ""]
        lines += [f"- {note}" for note in report.get("figure_notes", [])]
        lines.append("")
    lines += ["## Reproduce", "", f"`{report['command']}`", "",
              f"Every metric and config: `{RESULTS_FILE}`; each protocol's result: `<pair>/<protocol>-<raw|anon>.json`.", ""]
    return "\n".join(lines)


def share(value: float | None) -> str:
    """A share in percent with one decimal; empty when there is none."""
    return "" if value is None else f"{value * 100:.1f}%"


def print_table1(report: dict) -> None:
    rows = [[row["pair"], row["metric"], percent(row["raw"]), row["cell"], percent(row["chance"]),
             share(row.get("leakage_removed")), "" if row.get("null_floor") is None else percent(row["null_floor"]),
             share(row.get("removed_above_floor"))]
            for row in report["table1"]]
    print_columns("report: raw -> anonymized (Table 1 form, %)",
                  ["pair", "metric", "raw", "anonymized", "chance", "leakage removed", "null floor",
                   "removed above the floor"], rows)
