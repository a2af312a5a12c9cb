"""Temporal private-attribute protocol (VP-HMDB51 / VP-UCF101-style): the attackers of ``privacy`` on
full clip embeddings, scored per video at its 5 evenly spaced clips.

Train: one random clip of each training video per epoch (``clip_sampling="all"``: every clip), labelled
with the video's attributes (the scikit-learn attackers fit the 5 evenly spaced clips of each training
video). Test: each attacker scores each test video's 5 evenly spaced clips (``positions``: bin
``centres``, the default, or the authors' ``linspace``, see ``featstore.sampling.POSITION_RULES``); AP
is computed separately at each clip position (position p = the p-th evenly spaced clip of every test
video), giving a (5, A) table. The aggregations, all reported per attacker (``AGGREGATE_RULES``):

- ``cmap_mean``: per attribute, the mean AP over the 5 positions; then the mean over attributes
  (what a single clip at a random position leaks).
- ``cmap_max``: the authors' rule: each position's cMAP (``per_position_cmap``), then the max over the
  positions (``cmap_max_position``, 0-based); ``per_attribute_max`` are that position's APs. Optimistic
  for the attacker: the position is chosen on the test set.
- ``cmap_max_per_attribute`` (not the authors'): per attribute the max AP over the positions, then the
  mean over attributes; >= ``cmap_max``, more so on small test sets (each attribute picks its own best
  position).
- ``cmap_video``: per video, the sigmoid probabilities of its 5 clips averaged; AP over the videos.

Each attacker's ``per_attribute`` is the max of its ``per_attribute_mean`` and ``per_attribute_video``
(``cmap`` their mean); the worst case per attribute is the max of that over the attackers: a
deliberately pessimistic bound, but neither max over positions is a candidate (the best position is
chosen on the test set). The headline ``cmap`` is the worst case when more than one attacker ran, else
the one attacker's ``cmap_mean``; ``cmap_mean`` / ``cmap_max`` / ``cmap_max_per_attribute`` /
``cmap_video`` at the top are the reference attacker's (``attacker``: ``standard`` for a group). The
validation-selected attackers select on validation ``cmap_mean`` (per attribute: ``per_attribute_mean``);
the authors' attacker on test ``cmap_max``. Attributes without a positive test video are excluded from
the means (reported null).

The null floor (``null_permutations`` N > 0): the whole attacker suite again on N copies of the labels,
each split's attribute rows shuffled among its videos (the positive rates, so the chance level, stay; the
link to the embeddings goes). The mean of their headline cMAPs is what chance alone reads with these
attackers at this test size: a maximum over attackers and aggregates sits above 0.5 even on labels that
say nothing, more so on small test sets, so leakage can only be removed down to this floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from evaluate.options import config_options, json_option, out_option, progress_option, run_command, store_option
from evaluate.protocols.privacy import attacker_label, selection_summary
from evaluate.settings import (
    CLIP_SAMPLING,
    AttackerSettings,
    check,
    check_choice,
    clip_sampling_setting,
    device_setting,
    labels_from_setting,
    setting,
)
from evaluate.tables import print_columns

if TYPE_CHECKING:
    from featstore.store import Store

AGGREGATE_RULES = {
    "cmap_mean": "per attribute the mean AP over the clip positions, then the mean over attributes",
    "cmap_max": "the authors': per position the cMAP, then the max over positions (chosen on the test set)",
    "cmap_max_per_attribute": "not the authors': per attribute the max AP over positions, then the mean over "
                              "attributes (>= cmap_max)",
    "cmap_video": "per video the sigmoid probabilities averaged over its clips, then AP over videos and the mean "
                  "over attributes",
    "worst_case": "per attribute the max over attackers of the mean and video APs (no max over positions), "
                  "then the mean over attributes",
}


@dataclass
class VPConfig(AttackerSettings):
    clip_sampling: str = clip_sampling_setting()
    eval_clips: int = setting(5, "Evenly spaced test clips per video.")
    positions: str = setting("centres", "Where the evaluation clips sit: centres (of equal bins) or linspace (the "
                                        "authors': np.linspace(0, n - 1, k) truncated).")
    train_split: str = "train"
    test_split: str = "test"
    device: str = device_setting()
    labels_from: Optional[str] = labels_from_setting()
    null_permutations: int = setting(0, "Attacker suites run again on attribute labels shuffled among each split's "
                                        "videos: the headline cMAP that chance alone reads at this test size (the "
                                        "null floor; 0 = none).")

    def __post_init__(self):
        from featstore.sampling import POSITION_RULES  # numpy: not for the command line's help

        super().__post_init__()
        check_choice("clip_sampling", self.clip_sampling, CLIP_SAMPLING)
        check(self.eval_clips >= 1, f"eval_clips must be >= 1, got {self.eval_clips}")
        check_choice("positions", self.positions, POSITION_RULES)
        check(self.train_split != self.test_split, "train_split and test_split must differ")
        check(self.null_permutations >= 0, f"null_permutations must be >= 0, got {self.null_permutations}")


def run(store: Store, config: VPConfig, *, show_progress: bool = False) -> dict:
    import numpy as np
    import torch

    from evaluate.data import StoreData
    from evaluate.metrics import mean_defined
    from evaluate.protocols import _attribute_attack as attack
    from evaluate.training import Stopwatch, device_of, predict, timing_block

    watch = Stopwatch(device_of(config.device))
    device = watch.device
    data = StoreData(store, device, kinds=("clips",), labels_from=config.labels_from, needs_private_labels=True)
    names = attack.attribute_names_of(data)
    train_videos = data.split_videos(config.train_split, "clips")
    test_videos = data.split_videos(config.test_split, "clips")
    attributes = data.videos.attributes.astype(np.int64)
    features = data.embeddings["clips"]

    def evaluation_rows(videos: np.ndarray) -> np.ndarray:
        # every video here has clips (split_videos(..., "clips")), so no row is -1
        return store.evenly_spaced_clip_rows(config.eval_clips, config.positions)[videos]

    def make_evaluator_of(targets: np.ndarray):
        def make_evaluator(videos: np.ndarray):
            rows = torch.from_numpy(evaluation_rows(videos)).to(device)
            video_targets = targets[videos]

            def evaluate(model: torch.nn.Module) -> dict:
                return attack.position_aggregates(predict(model, features, rows).float().cpu().numpy(), video_targets)

            return evaluate

        return make_evaluator

    rates = attack.check_test_positives(attributes[test_videos], names, store.path)

    def make_sampler(videos: np.ndarray):
        if config.clip_sampling == "random":
            return data.random_row_sampler(videos, "clips")
        return data.all_rows_sampler(videos, "clips")

    def fit_rows(videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = evaluation_rows(videos)
        return rows.reshape(-1), np.repeat(videos, rows.shape[1])

    train_groups = attack.validation_groups(data.videos.subject, train_videos, config.val_unit)

    def attack_suite(targets: np.ndarray, progress: bool) -> tuple[dict, list, dict]:
        """Every attacker on ``targets`` (V, A): their results, training records and the worst case."""
        setup = attack.AttackSetup(features=features, targets=data.tensor(targets), train_videos=train_videos,
                                   test_videos=test_videos, make_sampler=make_sampler,
                                   make_evaluator=make_evaluator_of(targets), fit_rows=fit_rows,
                                   selection_key="cmap_mean", authors_selection_key="cmap_max",
                                   attribute_selection_key="per_attribute_mean", train_groups=train_groups)
        suite, records = attack.run_attackers(setup, config, names, progress)
        for evaluation in suite.values():
            attack.attacker_worst(evaluation, names)
        return suite, records, attack.worst_case(
            [(f"{a}/{agg}", [r[f"per_attribute_{agg}"][n] for n in names])
             for a, r in suite.items() for agg in attack.WORST_CASE_AGGREGATES], names)

    results, outcomes, worst = attack_suite(attributes, show_progress)
    nulls = []
    for permutation in range(config.null_permutations):
        # each split's attribute rows shuffled among its videos: the positive rates (chance) stay, the link to
        # the embeddings goes
        shuffle = np.random.default_rng([config.seed, permutation])
        shuffled = attributes.copy()
        for videos in (train_videos, test_videos):
            shuffled[videos] = attributes[shuffle.permutation(videos)]
        null_results, _, null_worst = attack_suite(shuffled, show_progress)
        nulls.append(headline(null_results, null_worst, config.attacker, names))
    primary = attack.primary_attacker(config.attacker)
    return {
        "cmap": headline(results, worst, config.attacker, names)["cmap"],
        "headline": "worst_case" if len(results) > 1 else f"{primary}/mean",
        "cmap_mean": results[primary]["cmap_mean"],
        "cmap_max": results[primary]["cmap_max"],
        "cmap_max_per_attribute": results[primary]["cmap_max_per_attribute"],
        "cmap_video": results[primary]["cmap_video"],
        "attacker": primary,
        "worst_case": worst,
        "aggregate_rules": AGGREGATE_RULES,
        "chance_cmap": mean_defined(rates),
        "positive_rate": attack.named(rates, names),
        "n_train_videos": int(len(train_videos)),
        "n_test_videos": int(len(test_videos)),
        "eval_clips": config.eval_clips,
        "positions": config.positions,
        "attackers": results,
        "null_floor": null_floor(nulls, names),
        "timing": timing_block(watch.seconds(), outcomes),
    }


def headline(results: dict, worst: dict, attacker: str, names: list[str]) -> dict:
    """The headline cMAP and its per-attribute APs: the worst case when several attackers ran, else the one
    attacker's mean over the clip positions."""
    from evaluate.protocols._attribute_attack import primary_attacker

    if len(results) > 1:
        return {"cmap": worst["cmap"], "per_attribute": worst["per_attribute"]}
    primary = results[primary_attacker(attacker)]
    return {"cmap": primary["cmap_mean"], "per_attribute": {name: primary["per_attribute_mean"][name] for name in names}}


def null_floor(nulls: list[dict], names: list[str]) -> dict | None:
    """The headline cMAPs read on shuffled labels: their mean (the floor), each one, and per attribute the mean."""
    import numpy as np

    from evaluate.metrics import mean_defined

    if not nulls:
        return None
    per_attribute = {name: mean_defined(np.array([null["per_attribute"][name] for null in nulls], dtype=np.float64))
                     for name in names}
    return {"permutations": len(nulls), "cmap": mean_defined(np.array([null["cmap"] for null in nulls])),
            "cmaps": [null["cmap"] for null in nulls], "per_attribute": per_attribute}


def print_vp_table(title: str, metrics: dict) -> None:
    """Attackers x attributes (AP mean / max / video over the clip positions) with each attacker's cMAPs and choice,
    then the worst case, its sources, the null floor and the chance level (one row per attacker, as privacy's)."""
    attackers = metrics["attackers"]
    names = list(metrics["positive_rate"])
    worst = metrics["worst_case"]

    def triple(values: list) -> str:
        return " / ".join("n/a" if v is None or v != v else f"{v:.4f}" for v in values)

    aggregates = ("mean", "max", "video")
    rows = [[attacker_label(a, result),
             *(triple([result[f"per_attribute_{agg}"][name] for agg in aggregates]) for name in names),
             triple([result[f"cmap_{agg}"] for agg in aggregates]), triple([result["cmap_max_per_attribute"]]),
             selection_summary(result, names)] for a, result in attackers.items()]
    rows.append(["[bold]worst case[/]", *(worst["per_attribute"][name] for name in names), worst["cmap"], "", ""])
    rows.append(["from", *(worst["source"][name] or "" for name in names), "", "", ""])
    floor = metrics.get("null_floor")
    if floor:
        rows.append([f"null floor ({floor['permutations']} shuffles)", *("" for _ in names), floor["cmap"], "", ""])
    rows.append(["chance", *(metrics["positive_rate"][name] for name in names), metrics["chance_cmap"], "", ""])
    columns = ["attacker", *(f"AP {name}" for name in names), "cmap", "max per attribute", "selected"]
    print_columns(title + f"  (AP mean / max / video over {metrics['eval_clips']} clips at {metrics['positions']}; "
                  "max = the authors': the position with the best cMAP; max per attribute = each attribute's best "
                  "position, not the authors'; worst case over mean and video)", columns, rows)


def register(app: typer.Typer) -> None:
    @app.command("vp")
    @config_options(VPConfig, "attacker", "epochs", "lr", "batch_size", "clip_sampling", "eval_clips", "positions",
                    "val_fraction", "val_folds", "val_unit", "seed", "device", "labels_from", "null_permutations")
    def vp_command(*, store: str = store_option(), config: VPConfig, out: Optional[Path] = out_option(),
                   progress: bool = progress_option(), as_json: bool = json_option()) -> None:
        """Temporal private-attribute attack on clip embeddings: worst-case cMAP over the attackers and the
        5-clip aggregates (lower = more private)."""
        run_command("vp", run, config, store, out, show_progress=progress, as_json=as_json,
                    printer=lambda opened, metrics: print_vp_table(f"vp: {opened.path}", metrics))
