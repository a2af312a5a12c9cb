"""Static private-attribute protocol (VISPR-style): how well an attacker MLP reads the private
attributes from embeddings. Lower cMAP = better privacy; chance = the mean positive rate.

Samples: ``kind="static"`` (default) uses every static clip (one frame tiled to a clip) of the
training and test videos, each labelled with its video's attributes; an image store has one static
clip per image. ``kind="clips"`` uses every full clip instead. Each sample is scored on its own
(image-level AP, as VISPR); see ``vp`` for the 5-clip video-level variant.

The attackers (``standard``, ``authors``, ``mlp``, ``logreg``, ``knn``, ``mlp-whitened``, ``knn-whitened``,
``svm-whitened``, ``mlp-wide``, ``quadratic``, ``ensemble``; the opt-in ``boosting``) are defined in
``_attribute_attack``, their settings in ``evaluate.settings.AttackerSettings``; ``attacker="all"`` (default) trains
every one but ``boosting``, ``"thorough"`` every one, ``"both"`` the standard and the authors' MLPs (the authors'
attacker with its code's optimizer settings and test selection every 5th epoch, see ``_attribute_attack``). Each is
reported by name under ``attackers``; the headline ``cmap`` / ``per_attribute`` are the worst case (``worst_case``:
per attribute the highest test AP over the attackers) when more than one attacker ran, else the one attacker's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from evaluate.options import config_options, json_option, out_option, progress_option, run_command, store_option
from evaluate.settings import AttackerSettings, check, check_choice, device_setting, labels_from_setting, setting
from evaluate.tables import print_columns

if TYPE_CHECKING:
    from featstore.store import Store

KINDS = ("static", "clips")


@dataclass
class PrivacyConfig(AttackerSettings):
    kind: str = setting("static", "static (static clips, VISPR-style) or clips (full clips).")
    train_split: str = "train"
    test_split: str = "test"
    device: str = device_setting()
    labels_from: Optional[str] = labels_from_setting()

    def __post_init__(self):
        super().__post_init__()
        check_choice("kind", self.kind, KINDS)
        check(self.train_split != self.test_split, "train_split and test_split must differ")


def run(store: Store, config: PrivacyConfig, *, show_progress: bool = False) -> dict:
    """Train the attacker(s) and return cMAP, per-attribute AP and the chance level (see module docs)."""
    import numpy as np
    import torch

    from evaluate.data import StoreData
    from evaluate.metrics import mean_defined, per_attribute_ap
    from evaluate.protocols import _attribute_attack as attack
    from evaluate.training import Stopwatch, device_of, predict, timing_block

    watch = Stopwatch(device_of(config.device))
    device = watch.device
    data = StoreData(store, device, kinds=(config.kind,), labels_from=config.labels_from, needs_private_labels=True)
    names = attack.attribute_names_of(data)
    train_videos = data.split_videos(config.train_split, config.kind)
    test_videos = data.split_videos(config.test_split, config.kind)
    attributes = data.videos.attributes.astype(np.int64)
    features = data.embeddings[config.kind]

    def make_evaluator(videos: np.ndarray):
        rows, owner = data.rows_of(videos, config.kind)
        rows = torch.from_numpy(rows).to(device)
        sample_targets = attributes[videos[owner]]

        def evaluate(model: torch.nn.Module) -> dict:
            scores = predict(model, features, rows).float().cpu().numpy()
            ap = per_attribute_ap(scores, sample_targets)
            return {"cmap": mean_defined(ap), "per_attribute": ap}

        return evaluate

    test_rows, test_owner = data.rows_of(test_videos, config.kind)
    rates = attack.check_test_positives(attributes[test_videos[test_owner]], names, store.path)

    def fit_rows(videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, owner = data.rows_of(videos, config.kind)
        return rows, videos[owner]

    setup = attack.AttackSetup(
        features=features, targets=data.tensor(attributes), train_videos=train_videos, test_videos=test_videos,
        make_sampler=lambda videos: data.all_rows_sampler(videos, config.kind), make_evaluator=make_evaluator,
        fit_rows=fit_rows, train_groups=attack.validation_groups(data.videos.subject, train_videos, config.val_unit),
    )
    results, outcomes = attack.run_attackers(setup, config, names, show_progress)
    worst = attack.worst_case([(a, [r["per_attribute"][n] for n in names]) for a, r in results.items()], names)
    primary = attack.primary_attacker(config.attacker)
    headline = worst if len(results) > 1 else results[primary]
    return {
        "cmap": headline["cmap"],
        "per_attribute": headline["per_attribute"],
        "headline": "worst_case" if len(results) > 1 else primary,
        "attacker": primary,
        "worst_case": worst,
        "chance_cmap": mean_defined(rates),
        "positive_rate": attack.named(rates, names),
        "kind": config.kind,
        "n_train_videos": int(len(train_videos)),
        "n_test_videos": int(len(test_videos)),
        "n_test_samples": int(len(test_rows)),
        "attackers": results,
        "timing": timing_block(watch.seconds(), outcomes),
    }


def attacker_label(name: str, result: dict) -> str:
    return f"{name} (test-selected)" if result.get("test_selected") else name


def selection_summary(result: dict, names: list[str]) -> str:
    """How an attacker's reported model was chosen, in a few characters (for the tables)."""
    if "members" in result:  # the ensemble
        return "none"
    if "selected_leaves" in result:
        return "rate/leaves " + ", ".join(f"{result['selected_learning_rate'][n]:g}/{result['selected_leaves'][n]}"
                                          for n in names)
    if "selected_gamma" in result:
        return "C/gamma " + ", ".join(f"{result['selected_c'][n]:g}/{result['selected_gamma'][n]:g}" for n in names)
    if "selected_components" in result:
        return "pc/C " + ", ".join(f"{result['used_components'][n]}/{result['selected_c'][n]:g}" for n in names)
    if "selected_c" in result:
        return "C " + ", ".join(f"{result['selected_c'][n]:g}" for n in names)
    if "selected_k" in result:
        return "k " + ", ".join(f"{result['selected_k'][n]}/{result['selected_metric'][n][:3]}" for n in names)
    if "selected_seed" in result:
        return f"seed {result['selected_seed']} epoch {result['selected_epoch']}"
    return f"epoch {result.get('selected_epoch', '')}"


def print_attribute_table(title: str, metrics: dict) -> None:
    """Attackers x attributes AP table with each attacker's cMAP and choice, then the worst case over the attackers,
    where each attribute's worst case came from, and the chance level (one row per attacker: the attacker names
    stay whole however many attackers ran)."""
    attackers = metrics["attackers"]
    names = list(metrics["positive_rate"])
    worst = metrics["worst_case"]
    rows = [[attacker_label(a, result), *(result["per_attribute"][name] for name in names), result["cmap"],
             selection_summary(result, names)] for a, result in attackers.items()]
    rows.append(["[bold]worst case[/]", *(worst["per_attribute"][name] for name in names), worst["cmap"], ""])
    rows.append(["from", *(worst["source"][name] or "" for name in names), "", ""])
    rows.append(["chance (positive rate)", *(metrics["positive_rate"][name] for name in names), metrics["chance_cmap"],
                 ""])
    print_columns(title, ["attacker", *(f"AP {name}" for name in names), "cmap", "selected"], rows)


def register(app: typer.Typer) -> None:
    @app.command("privacy")
    @config_options(PrivacyConfig, "attacker", "kind", "epochs", "lr", "batch_size", "val_fraction", "val_folds",
                    "val_unit", "seed", "device", "labels_from")
    def privacy_command(*, store: str = store_option(), config: PrivacyConfig, out: Optional[Path] = out_option(),
                        progress: bool = progress_option(), as_json: bool = json_option()) -> None:
        """Static private-attribute attack on static-clip embeddings: worst-case cMAP over the attackers
        (lower = more private)."""
        run_command("privacy", run, config, store, out, show_progress=progress, as_json=as_json,
                    printer=lambda opened, metrics: print_attribute_table(f"privacy ({config.kind}): {opened.path}",
                                                                          metrics))
