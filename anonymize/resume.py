"""Resuming a run: which settings ``--resume`` may change, and the checks against the saved config.

A run folder's ``config.json`` (``anonymize.checkpoint.CONFIG_FILE``) fixes what the run trains: a resumed
run must keep every training setting, except ``RESUMABLE_CHANGES`` (more epochs, another device, ...).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from anonymize import checkpoint as ckpt
from anonymize.config import LR_SETTINGS, LR_USED, RUN_SETTINGS, TrainConfig
from data_manifests.errors import FeatstoreError
from featstore.store.location import is_url

RESUMABLE_CHANGES = ("epochs", *RUN_SETTINGS)


def saved_config(run: Path) -> TrainConfig:
    """The config saved in the run folder ``run``, which a resume continues."""
    path = Path(run) / ckpt.CONFIG_FILE
    if not path.is_file():
        raise FeatstoreError(f"nothing to resume at {run} (no {ckpt.CONFIG_FILE}); drop --resume to start a run")
    return TrainConfig.load(path)


def resume_config(out: Path, overrides: dict) -> TrainConfig:
    """The saved config of the run in ``out`` with the user's explicit ``overrides`` applied.

    Only ``RESUMABLE_CHANGES`` (e.g. more epochs, another device) may differ from the saved run; an
    override of anything else must equal the saved value. ``aam``/``identity`` may be partial dicts.
    """
    saved = saved_config(out)
    data = saved.to_json()
    if "lr" in overrides and "lr_scaling" not in overrides:  # --lr means what the command line says it means
        overrides = {**overrides, "lr_scaling": TrainConfig.__dataclass_fields__["lr_scaling"].default}
    if _same_learning_rate(saved, overrides):
        # the rate the run trained at, written another way (e.g. a run saved when --lr was scaled linearly)
        overrides = {key: value for key, value in overrides.items() if key not in LR_SETTINGS}
    conflicts = []
    for key, value in overrides.items():
        if key in ("aam", "identity"):
            value = {**data[key], **value}
        if key in RESUMABLE_CHANGES:
            data[key] = value
        elif json.dumps(value, sort_keys=True) != json.dumps(data.get(key), sort_keys=True):
            conflicts.append(f"{key} (saved {data.get(key)!r}, given {value!r})")
    if conflicts:
        raise FeatstoreError(f"--resume with settings that differ from the saved run: {'; '.join(conflicts)}")
    data["out"] = str(out)
    return TrainConfig.from_json(data)


def _same_learning_rate(saved: TrainConfig, overrides: dict) -> bool:
    """Whether learning-rate options given with --resume train at the saved run's rate."""
    given = {key: overrides[key] for key in LR_SETTINGS if key in overrides}
    if not given:
        return False
    settings = {key: getattr(saved, key) for key in LR_SETTINGS}
    rate = replace(saved, **{**settings, **given}).scaled_lr
    return math.isclose(rate, saved.scaled_lr, rel_tol=1e-12)


def changed_settings(saved: TrainConfig, given: TrainConfig) -> list[str]:
    """Training settings of ``given`` that differ from ``saved`` and that a resumed run may not change."""
    before, after = saved.training_settings(), given.training_settings()
    changed = sorted(k for k in after if k not in RESUMABLE_CHANGES and after[k] != before.get(k))
    if math.isclose(before[LR_USED], after[LR_USED], rel_tol=1e-12):
        # the same learning rate written another way (e.g. a run saved when --lr was scaled linearly)
        changed = [key for key in changed if key not in LR_SETTINGS]
    return changed


def check_run_folder(config: TrainConfig, resume: bool) -> None:
    """Before anything is built: ``config.out`` is a folder (or not there yet); a new run finds no run in
    it; a resumed run finds the saved config, and ``config`` keeps its training settings."""
    if is_url(config.out):  # the command line turns a file:// URL into its path (checkpoint.writable_run)
        raise FeatstoreError(f"a training run's folder is local (a checkpoint is written every epoch): give a path, "
                             f"not {config.out}")
    run = Path(config.out)
    if run.exists() and not run.is_dir():
        raise FeatstoreError(f"--run {run} is a file; it names the run folder")
    if resume:
        changed = changed_settings(saved_config(run), config)
        if changed:
            raise FeatstoreError(f"--resume with settings that differ from the saved run: {', '.join(changed)}")
    elif (run / ckpt.CONFIG_FILE).exists() or (run / ckpt.CHECKPOINT_JSON).exists():
        raise FeatstoreError(f"{run} already holds a run: pass --resume to continue it, or choose another --run")
