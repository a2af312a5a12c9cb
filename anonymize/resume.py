"""Resuming a run: which settings ``--resume`` may change, and the checks against the saved config.

A run folder's ``config.json`` (``anonymize.checkpoint.CONFIG_FILE``) fixes what the run trains: a resumed
run must keep every training setting, except ``RESUMABLE_CHANGES`` (more epochs, another device, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

from anonymize import checkpoint as ckpt
from anonymize.config import RUN_SETTINGS, TrainConfig
from data_manifests.errors import FeatstoreError

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
    data = saved_config(out).to_json()
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


def changed_settings(saved: TrainConfig, given: TrainConfig) -> list[str]:
    """Training settings of ``given`` that differ from ``saved`` and that a resumed run may not change."""
    before, after = saved.training_settings(), given.training_settings()
    return sorted(k for k in after if k not in RESUMABLE_CHANGES and after[k] != before.get(k))


def check_run_folder(config: TrainConfig, resume: bool) -> None:
    """Before anything is built: ``config.out`` is a folder (or not there yet); a new run finds no run in
    it; a resumed run finds the saved config, and ``config`` keeps its training settings."""
    run = Path(config.out)
    if run.exists() and not run.is_dir():
        raise FeatstoreError(f"--out {run} is a file; it names the run folder")
    if resume:
        changed = changed_settings(saved_config(run), config)
        if changed:
            raise FeatstoreError(f"--resume with settings that differ from the saved run: {', '.join(changed)}")
    elif (run / ckpt.CONFIG_FILE).exists() or (run / ckpt.CHECKPOINT_JSON).exists():
        raise FeatstoreError(f"{run} already holds a run: pass --resume to continue it, or choose another --out")
