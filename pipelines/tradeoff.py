"""Privacy-utility trade-off of a sweep of anonymizer runs (for example over w_B / w_T): one point per
run, the Pareto front, its normalized hypervolume and a plot.

For each run folder (``anonymize train --run RUN``; a local path or a ``file://`` URL, since the caches below are
written into it; a run at another fsspec URL is first copied, the files the trade-off reads, to
``OUT/remote-runs/<name>-<hash>``, which then holds its caches):

1. The anonymized store ``RUN/anon.zarr``: the run's anonymizer applied to its training store. An
   existing one is reused when its provenance names the SHA-256 of the run's current
   ``aam.safetensors`` and (when the training store is readable) that store's fingerprint; otherwise
   it is exported again (``export="always"``: every time; ``"never"``: reuse only, an error
   otherwise). ``anon.zarr`` is this protocol's export cache: it is replaced only when its provenance
   names this run folder, the same weights or a run with the same training settings (this run before
   a resume, a move or a copy); anything else at that path is an error, never overwritten. ``anonymize export`` stages its output, so an
   interruption never leaves a half store under the real name.
2. Utility = the ``ar`` protocol's top-1 and privacy = the worst-case FULL-CLIP attribute cMAP (the
   ``vp`` protocol: per attribute the highest test AP of every attacker, clips scored as a video's
   evenly spaced clips; ``privacy_kind="static"`` uses the ``privacy`` protocol's static clips instead,
   ``attacker`` one attacker instead of the worst case). They are cached as ordinary protocol results
   in ``RUN/eval/{ar,vp,privacy}.json`` and reused when their config and their store's provenance
   (anonymizer hash, finalization time, encoder, sizes; not the path) match the ones asked for; a
   result of a group of attackers (``all``, ``both``) serves each of its attackers. A stale or
   unreadable cached result is recomputed and replaced.

A run folder may be an ``anonymize train`` run or an ``anonymize baseline`` run; each point is labelled
with its method (``anonymize.baselines.describe_run``; methods that read attribute labels are marked
supervised), and besides the front of all points, each method's own front and normalized
hypervolume are reported, so the default objective can be compared with every baseline.

The points are (utility, q = 1 - privacy), both maximized; ``evaluate.metrics.pareto_front`` and
``normalized_hypervolume`` give the front and the share of the unit square above the reference point
(default: top-1 0, cMAP 1, the worst corner) that the front dominates (docs/evaluate.md, "Trade-off").
The raw store (``raw_store``), when given, is evaluated the same way (cached under ``OUT/raw/``) and
marked in the plot; it is not part of the front, and the hypervolume of the raw point alone is
reported beside the front's for comparison.

``summarize`` is that last part alone (front, hypervolumes, plot) on points however they were measured: the
``tradeoff`` recipe (pipelines/recipes) gives it the numbers of its table instead of exporting and evaluating again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from anonymize import checkpoint as ckpt
from featstore.hashing import file_sha256
from anonymize.config import TrainConfig
from anonymize.baselines import describe_run
from anonymize.export import export_store, store_fingerprint
from anonymize.resume import RESUMABLE_CHANGES
from evaluate.results import json_safe, load_result, save_result, store_summary
from evaluate.settings import ATTACKER_GROUPS
from evaluate.tables import console, err_console, print_columns
from evaluate.metrics import normalized_hypervolume, pareto_front
from evaluate.protocols import ar, privacy, vp
from pipelines.label_placement import place_labels
from data_manifests.errors import FeatstoreError
from featstore.exporters import local_output
from featstore.store import Location, Store
from pipelines.tradeoff_command import DEFAULT_OUT, PLOT_FILE, TradeoffConfig

ANON_STORE = "anon.zarr"
EVAL_DIR = "eval"
REMOTE_RUNS_DIR = "remote-runs"  # under the trade-off's folder: local copies of runs given as remote URLs
RAW_DIR = "raw"
UTILITY_METRIC = "ar top1"


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class SweepRun:
    """One run folder of the sweep: its training config and the hash of its anonymizer weights."""

    path: Path
    config: TrainConfig
    aam_sha256: str
    epoch: int


def local_run(run: str | Path, remote_copies: Path) -> Path:
    """A sweep run's folder on this machine, where the trade-off caches ``anon.zarr`` and ``eval/``: a path or a
    ``file://`` URL's path as it is; for another fsspec URL, a copy of the files the trade-off reads
    (``ckpt.READ_FILES``) in ``remote_copies/<name>-<hash of the URL>``, refreshed on every call."""
    path = local_output(run)
    if path is not None:
        return path
    location = Location(str(run))
    if not location.is_file(ckpt.CONFIG_FILE):
        raise FeatstoreError(f"no run folder at {run} (no {ckpt.CONFIG_FILE})")
    url = str(run).rstrip("/")
    copy = remote_copies / f"{url.rsplit('/', 1)[-1]}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"
    location.download(copy, ckpt.read_files(location))
    return copy


def read_run(run: str | Path, remote_copies: Path) -> SweepRun:
    path = local_run(run, remote_copies)
    if not path.is_dir():
        raise FeatstoreError(f"no run folder at {path}")
    if not (path / ckpt.AAM_FILE).is_file():
        raise FeatstoreError(f"{path} has no trained anonymizer ({ckpt.AAM_FILE}): train it first")
    config = TrainConfig.load(path / ckpt.CONFIG_FILE)
    info = ckpt.read_checkpoint_info(path)
    return SweepRun(path, config, file_sha256(path / ckpt.AAM_FILE), int(info.get("epoch", 0)))


def read_runs(runs: Sequence[str | Path], remote_copies: Path) -> list[SweepRun]:
    """Every run folder checked before any work starts; an error for none, a missing one or a repeat. Runs at
    remote URLs are copied under ``remote_copies`` (``local_run``)."""
    if not runs:
        raise FeatstoreError("no run folders: give --run DIR (repeat it, or a shell glob such as --run runs/sweep-*)")
    seen = set()
    for run in runs:
        local = local_output(run)
        resolved = str(run).rstrip("/") if local is None else local.resolve()
        if resolved in seen:
            raise FeatstoreError(f"run folder {run} is given twice")
        seen.add(resolved)
    return [read_run(run, remote_copies) for run in runs]


# ---------------------------------------------------------------------------------------------- stores
def _is_current(store: Store, run: SweepRun) -> bool:
    """Whether ``store`` is the run's current anonymizer applied to the run's training store."""
    anonymizer = store.anonymizer
    if anonymizer.get("aam_sha256") != run.aam_sha256:
        return False
    training = run.config.store  # a path or an fsspec URL
    if not Location(training).exists():  # moved or deleted: the weights' hash is all there is to check
        return True
    return anonymizer.get("source_fingerprint") == store_fingerprint(Store.open(training))


def _lineage_settings(config: TrainConfig) -> dict:
    """What a run keeps over its life: its training settings minus what a resume may change."""
    return {key: value for key, value in config.training_settings().items() if key not in RESUMABLE_CHANGES}


def _check_replaceable(store: Store, run: SweepRun) -> None:
    """Only this run's own (stale) export may be replaced: one exported from this folder, with the same
    weights, or by a run with the same training settings (this run before a resume, or before the folder
    was moved or copied). Anything else at the path is the user's: an error, left alone."""
    anonymizer = store.anonymizer
    if anonymizer.get("run") == str(run.path.resolve()) or anonymizer.get("aam_sha256") == run.aam_sha256:
        return
    try:
        recorded = TrainConfig.from_json(dict(anonymizer.get("training_config") or {}))
        same_lineage = _lineage_settings(recorded) == _lineage_settings(run.config)
    except (FeatstoreError, TypeError):  # no record, or one this version cannot read: not provably ours
        same_lineage = False
    if not same_lineage:
        made_by = anonymizer.get("run") or "no anonymizer"
        raise FeatstoreError(f"{store.path} was not exported from {run.path} (it names {made_by}); "
                             "move it away to let the trade-off export this run")


def _export(run: SweepRun, path: Path, device: str) -> Store:
    source = run.config.store  # a path or an fsspec URL
    if not Location(source).exists():
        raise FeatstoreError(f"{run.path} was trained on {source}, which is not there (relative paths are read "
                             f"from the current folder): cannot export {path}")
    export_store(run.path, source, path, device=device, overwrite=True)  # staged: never a half-written store
    return Store.open(path)


def anonymized_store(run: SweepRun, export: str, device: str) -> tuple[Store, str]:
    """``RUN/anon.zarr``, reused or (re-)exported; returns the store and "reused" or "exported"."""
    path = run.path / ANON_STORE
    if path.exists():
        try:
            existing = Store.open(path)
        except FeatstoreError as exc:
            raise FeatstoreError(f"{path} is in the way of this run's export ({exc}); move it away") from exc
        if export != "always" and _is_current(existing, run):
            return existing, "reused"
        if export == "never":
            raise FeatstoreError(f"{path} is not the current anonymizer of {run.path} applied to its training store, "
                                 "and export is 'never'")
        _check_replaceable(existing, run)
    elif export == "never":
        raise FeatstoreError(f"{run.path} has no {ANON_STORE} and export is 'never'")
    return _export(run, path, device), "exported"


def _data_identity(store: Store) -> tuple:
    return store.identity.get("weights_sha256"), store.fingerprint


def _check_same_data(first: Store | None, store: Store) -> Store:
    """Points are comparable only on one dataset seen by one encoder; the first store sets both."""
    if first is not None and _data_identity(first) != _data_identity(store):
        raise FeatstoreError(f"{store.path} holds other data than {first.path} (encoder weights or dataset differ): "
                             "a trade-off compares anonymizers of one store")
    return first if first is not None else store


# ---------------------------------------------------------------------------------------------- inner protocols
def _without_path(summary: dict) -> dict:
    """A store summary minus its path: the same content read from another folder still matches."""
    return {key: value for key, value in summary.items() if key != "path"}


def _cached_metrics(path: Path, protocol: str, store: Store,
                    result_matches: Callable[[dict, dict], bool]) -> dict | None:
    """The metrics of a saved result of ``protocol`` on this store's content whose config and metrics match
    (``result_matches(config, metrics)``), or None."""
    if not path.is_file():
        return None
    try:
        document = load_result(path)
    except FeatstoreError:  # unreadable: recomputed and rewritten
        return None
    if document.get("protocol") != protocol or not isinstance(document.get("store_provenance"), dict):
        return None
    if _without_path(document["store_provenance"]) != _without_path(json_safe(store_summary(store))):
        return None
    metrics = document.get("metrics")
    return metrics if isinstance(metrics, dict) and result_matches(document.get("config") or {}, metrics) else None


def _privacy_result_matches(wanted: privacy.PrivacyConfig | vp.VPConfig) -> Callable[[dict, dict], bool]:
    """A saved privacy result serves when its config equals the wanted one, or differs only by training a group
    of attackers that holds the wanted one (each attacker is seeded on its own, so its numbers do not depend
    on the others being trained), and it holds every attacker its group has today (a result saved before the
    suite grew is computed again: its worst case is over fewer attackers)."""
    expected = json_safe(asdict(wanted))
    # a group's worst case is over its own members only: a group serves itself and each member, never another group
    serving = {wanted.attacker} if wanted.attacker in ATTACKER_GROUPS else \
        {wanted.attacker, *(group for group, members in ATTACKER_GROUPS.items() if wanted.attacker in members)}

    def matches(saved: dict, metrics: dict) -> bool:
        rest = {k: v for k, v in saved.items() if k != "attacker"}
        attacker = saved.get("attacker")
        return (rest == {k: v for k, v in expected.items() if k != "attacker"} and attacker in serving
                and set(metrics.get("attackers") or {}) == set(ATTACKER_GROUPS.get(attacker, (attacker,))))

    return matches


def _protocol_metrics(protocol: str, run_protocol: Callable, inner_config, result_matches: Callable[[dict, dict], bool],
                      store: Store, folder: Path | None, show_progress: bool) -> tuple[dict, str]:
    """(metrics, "cached" | "computed"): a matching saved result in ``folder``, else a fresh run saved there."""
    if folder is not None:
        cached = _cached_metrics(folder / f"{protocol}.json", protocol, store, result_matches)
        if cached is not None:
            return cached, "cached"
    metrics = run_protocol(store, inner_config, show_progress=show_progress)
    if folder is not None:
        save_result(folder, protocol, inner_config, metrics, store)
    return json_safe(metrics), "computed"


def evaluate_store(store: Store, config: TradeoffConfig, folder: Path | None, show_progress: bool,
                   labels_from: str | None = None) -> dict:
    """Utility and privacy of one store (with their chance levels and where the numbers came from); an
    anonymized store's private labels are read from ``labels_from``, the raw store it was exported from."""
    ar_config, privacy_config = config.ar_config(), replace(config.privacy_config(), labels_from=labels_from)
    ar_expected = json_safe(asdict(ar_config))
    ar_metrics, ar_source = _protocol_metrics("ar", ar.run, ar_config, lambda saved, _: saved == ar_expected,
                                              store, folder, show_progress)
    protocol = config.privacy_protocol
    privacy_metrics, privacy_source = _protocol_metrics(protocol, (vp if protocol == "vp" else privacy).run,
                                                        privacy_config, _privacy_result_matches(privacy_config),
                                                        store, folder, show_progress)
    chance = chance_levels(ar_metrics, privacy_metrics)
    return {
        "utility": ar_metrics["top1"],
        "privacy": config.privacy_of(privacy_metrics),
        "chance_utility": chance["utility"],
        "chance_privacy": chance["privacy"],
        "store": str(store.path),
        "sources": {"ar": ar_source, "privacy": privacy_source},
    }


def chance_levels(ar_metrics: dict, privacy_metrics: dict) -> dict:
    """The chance level of each axis: from the ar result's and the privacy (or vp) result's metrics."""
    return {"utility": ar_metrics["chance_top1"], "privacy": privacy_metrics["chance_cmap"]}


def objectives(point: dict) -> tuple[float, float]:
    """A point's (or the reference's) ``utility`` and ``privacy`` as the hypervolume's coordinates: (utility,
    q = 1 - privacy), both maximized."""
    return point["utility"], 1.0 - point["privacy"]


def method_fronts(points: list[dict], reference: tuple[float, float]) -> dict[str, dict]:
    """Per method (the points' labels without their weights): its own Pareto front and normalized hypervolume."""
    methods: dict[str, list[int]] = {}
    for index, point in enumerate(points):
        methods.setdefault(point["method"], []).append(index)
    fronts = {}
    for method, members in methods.items():
        coordinates = [objectives(points[i]) for i in members]
        fronts[method] = {"runs": [points[i]["name"] for i in members],
                          "front_runs": [points[members[i]]["name"] for i in pareto_front(coordinates)],
                          "supervised": any(points[i]["supervised"] for i in members),
                          "hypervolume": normalized_hypervolume(coordinates, reference)}
    return fronts


# ---------------------------------------------------------------------------------------------- protocol
def summarize(points: list[dict], reference: dict, *, raw: dict | None, utility_metric: str, privacy_metric: str,
              chance: dict, plot: Path | None) -> dict:
    """The trade-off of points however they were measured: the Pareto front (each point's ``on_front``), the
    normalized hypervolume of all points and of each method's, the raw point's hypervolume alone, and the plot
    (``plot``: a PNG path, or None for none).

    A point holds ``name``, ``method``, ``supervised``, ``kind`` (aam | baseline), ``utility`` and ``privacy``
    (a cMAP, lower is more private) and, for the plot, ``tag``: the text beside it (None: unlabelled). ``raw`` holds
    ``utility`` and ``privacy``; ``reference`` and ``chance`` are {utility, privacy} (chance values may be None).
    """
    reference_point = objectives(reference)
    if raw is not None:
        raw["hypervolume"] = normalized_hypervolume([objectives(raw)], reference_point)
    coordinates = [objectives(point) for point in points]
    front = pareto_front(coordinates)
    for index, point in enumerate(points):
        point["on_front"] = index in front
    metrics = {
        "hypervolume": normalized_hypervolume(coordinates, reference_point),
        "reference": dict(reference),
        "utility_metric": utility_metric,
        "privacy_metric": privacy_metric,
        "methods": method_fronts(points, reference_point),
        "front": front,
        "front_runs": [points[i]["name"] for i in front],
        "n_runs": len(points),
        "chance": dict(chance),
        "points": points,
        "raw": raw,
        "plot": None,
    }
    if plot is not None:
        plot_tradeoff(metrics, plot)
        metrics["plot"] = str(plot)
    return metrics


def run(runs: Sequence[str | Path], config: TradeoffConfig, *, out: Path | None = None,
        show_progress: bool = False) -> dict:
    """One (utility, privacy) point per run, the Pareto front and its normalized hypervolume.

    ``out``, when given, is the folder of the plot (``tradeoff.png``) and of the raw point's cached
    results (``raw/``); without it nothing is drawn and the raw point is not cached.
    """
    started = time.perf_counter()
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise FeatstoreError(f"--out {out} exists and is not a folder")
    sweep = read_runs(runs, Path(out if out is not None else DEFAULT_OUT) / REMOTE_RUNS_DIR)
    raw = Store.open(config.raw_store) if config.raw_store else None
    first_store = raw
    points = []
    for index, sweep_run in enumerate(sweep, 1):
        if show_progress:
            err_console.print(f"[bold]trade-off[/] run {index}/{len(sweep)}: {sweep_run.path}")
        store, store_source = anonymized_store(sweep_run, config.export, config.device)
        first_store = _check_same_data(first_store, store)
        evaluation = evaluate_store(store, config, sweep_run.path / EVAL_DIR, show_progress,
                                    labels_from=str(sweep_run.config.store))  # what anonymized_store exported
        evaluation["sources"]["store"] = store_source
        train = sweep_run.config
        described = describe_run(sweep_run.path)
        points.append({"run": str(sweep_run.path), "name": sweep_run.path.name, "w_utility": train.w_utility,
                       "w_budget": train.w_budget, "w_lc": train.w_lc, "budget_mode": train.budget_mode,
                       "kind": described["kind"], "method": described["method"], "label": described["label"],
                       "supervised": described["supervised"], "epoch": sweep_run.epoch,
                       "tag": None if described["kind"] == "baseline" else f"w_B {train.w_budget:g}",
                       "aam_sha256": sweep_run.aam_sha256, **evaluation})
    raw_point = None
    if raw is not None:
        if show_progress:
            err_console.print(f"[bold]trade-off[/] raw store: {raw.path}")
        raw_point = evaluate_store(raw, config, Path(out) / RAW_DIR if out is not None else None, show_progress)
    chance_source = raw_point or points[0]
    metrics = summarize(points, {"utility": config.reference_utility, "privacy": config.reference_privacy},
                        raw=raw_point, utility_metric=UTILITY_METRIC,
                        privacy_metric=privacy_metric_name(config.attacker, config.privacy_kind),
                        chance={"utility": chance_source["chance_utility"], "privacy": chance_source["chance_privacy"]},
                        plot=Path(out) / PLOT_FILE if out is not None else None)
    metrics["timing"] = {"total_s": time.perf_counter() - started}
    return metrics


def privacy_metric_name(attacker: str, privacy_kind: str) -> str:
    """The privacy axis's name: "worst-case" for the default group ``all``, the group named for another group (their
    worst cases differ), the attacker's name for one attacker; then the rows it reads."""
    if attacker in ATTACKER_GROUPS:
        attacker = "worst-case" if attacker == "all" else f"worst-case ({attacker})"
    return attacker + (" full-clip cMAP" if privacy_kind == "clips" else " static-clip cMAP")


# ---------------------------------------------------------------------------------------------- plot and table
def front_outline(points: list[dict], front: list[int], reference: dict) -> tuple[list[float], list[float]]:
    """The staircase bounding the dominated region in (top-1, cMAP) axes, from the reference's top-1 to its
    cMAP; empty when no front point lies beyond the reference (nothing is dominated)."""
    inside = [(min(points[i]["utility"], 1.0), max(points[i]["privacy"], 0.0)) for i in front]
    inside = [(u, p) for u, p in inside if u > reference["utility"] and p < reference["privacy"]]
    if not inside:
        return [], []
    xs, ys = [reference["utility"]], [inside[0][1]]
    for k, (u, p) in enumerate(inside):
        next_privacy = inside[k + 1][1] if k + 1 < len(inside) else reference["privacy"]
        xs += [u, u]
        ys += [p, next_privacy]
    return xs, ys


def plot_tradeoff(metrics: dict, path: Path) -> None:
    """A PNG: cMAP against top-1 for every run, the front as a staircase with the dominated area shaded,
    the raw point, the chance levels and the reference point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # the Agg canvas: no display, no global backend
    from matplotlib.figure import Figure

    points, front, reference = metrics["points"], metrics["front"], metrics["reference"]
    figure = Figure(figsize=(7, 6.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    xs, ys = front_outline(points, front, reference)
    if xs:
        axes.fill(xs + [reference["utility"]], ys + [reference["privacy"]], color="tab:blue", alpha=0.12,
                  label=f"dominated: normalized hypervolume {metrics['hypervolume']:.4f}")
        axes.plot(xs, ys, color="tab:blue", linewidth=1.5, label="Pareto front")
    # one colour per method (legend: the method's own hypervolume); filled = on the front of all runs
    methods = metrics.get("methods") or {}
    colours = {method: f"C{index % 10}" for index, method in enumerate(dict.fromkeys(p["method"] for p in points))}
    for method, colour in colours.items():
        members = [p for p in points if p["method"] == method]
        hypervolume = methods.get(method, {}).get("hypervolume")
        label = method + (" (supervised)" if any(p["supervised"] for p in members) else "") + \
            ("" if hypervolume is None else f": hypervolume {hypervolume:.4f}")
        axes.scatter([p["utility"] for p in members], [p["privacy"] for p in members], zorder=3, s=36,
                     facecolors=[colour if p["on_front"] else "none" for p in members], edgecolors=colour,
                     label=label)
    # a point's tag (an AAM's budget weight or row: a method has several) is placed once the limits are set
    labels = [((p["utility"], p["privacy"]), p["tag"], colours[p["method"]]) for p in points if p.get("tag")]
    unlabelled = [(p["utility"], p["privacy"]) for p in points if not p.get("tag")]
    raw = metrics["raw"]
    if raw is not None:
        axes.scatter([raw["utility"]], [raw["privacy"]], marker="*", s=160, color="tab:red", alpha=0.7, zorder=2,
                     label=f"raw (hypervolume alone {raw['hypervolume']:.4f})")
        labels.append(((raw["utility"], raw["privacy"]), "raw", "tab:red"))
    chance = metrics["chance"]
    if chance["utility"] is not None:
        axes.axvline(chance["utility"], color="tab:gray", linestyle=":", label=f"chance top-1 {chance['utility']:.3f}")
    if chance["privacy"] is not None:
        axes.axhline(chance["privacy"], color="tab:gray", linestyle="--", label=f"chance cMAP {chance['privacy']:.3f}")
    axes.scatter([reference["utility"]], [reference["privacy"]], marker="x", color="black", clip_on=False,
                 label=f"reference (top-1 {reference['utility']:g}, cMAP {reference['privacy']:g})")
    axes.set_xlim(-0.02, 1.02)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel(f"utility: {metrics['utility_metric']} (higher is better)")
    axes.set_ylabel(f"privacy: {metrics['privacy_metric']} (lower is more private)")
    axes.set_title(f"privacy-utility trade-off of {metrics['n_runs']} runs: "
                   f"normalized hypervolume {metrics['hypervolume']:.4f}\n(filled: on the front of all runs; "
                   "hollow: dominated)", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)  # outside: the good corner stays clear
    place_labels(axes, [anchor for anchor, _, _ in labels], [text for _, text, _ in labels],
                 [colour for _, _, colour in labels], obstacles=[*unlabelled, (reference["utility"], reference["privacy"])])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    figure.savefig(tmp, bbox_inches="tight")
    tmp.replace(path)


def print_tradeoff_table(metrics: dict) -> None:
    rows = [[point["name"], point.get("label", ""), f"{point['w_utility']:g}", f"{point['w_budget']:g}",
             f"{point['w_lc']:g}", point["utility"], point["privacy"], "yes" if point["on_front"] else ""]
            for point in metrics["points"]]
    if metrics["raw"] is not None:
        rows.append(["[bold]raw[/]", "", "", "", "", metrics["raw"]["utility"], metrics["raw"]["privacy"], ""])
    rows.append(["chance", "", "", "", "", metrics["chance"]["utility"], metrics["chance"]["privacy"], ""])
    print_columns(f"trade-off of {metrics['n_runs']} runs", ["run", "method", "w_T", "w_B", "w_LC", "utility: top-1",
                                                             "privacy: cMAP", "front"], rows)
    method_rows = [[method, "yes" if front["supervised"] else "", len(front["runs"]), front["hypervolume"]]
                   for method, front in metrics.get("methods", {}).items()]
    if method_rows:
        print_columns("per method: normalized hypervolume of its own front",
                      ["method", "supervised", "runs", "hypervolume"], method_rows)
    console.print(f"utility: {metrics['utility_metric']}; privacy: {metrics['privacy_metric']}")
    reference = metrics["reference"]
    summary = (f"[bold]normalized hypervolume {metrics['hypervolume']:.4f}[/] (reference: top-1 "
               f"{reference['utility']:g}, cMAP {reference['privacy']:g})")
    if metrics["raw"] is not None:
        summary += f"; the raw point alone: {metrics['raw']['hypervolume']:.4f}"
    console.print(summary)
    console.print("front: " + ", ".join(metrics["front_runs"]))
    if metrics["plot"]:
        console.print(f"wrote {metrics['plot']}")
