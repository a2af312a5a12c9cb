"""Resuming a run: what --resume may change, and the checks against the saved config (no training)."""

from __future__ import annotations

import json

import pytest

from anonymize import checkpoint as ckpt
from anonymize.resume import RESUMABLE_CHANGES, check_run_folder, resume_config
from data_manifests.errors import FeatstoreError
from tests.anonymize.conftest import small_config


def _saved_run(array_store, run, **settings):
    """A run folder holding only its config: what the resume checks read."""
    config = small_config(array_store, run, **settings)
    run.mkdir()
    config.save(run / ckpt.CONFIG_FILE)
    return config


def test_resume_config_applies_resumable_changes_and_refuses_others(array_store, tmp_path):
    _saved_run(array_store, tmp_path / "run", epochs=1)
    with pytest.raises(FeatstoreError, match="w_lc"):
        resume_config(tmp_path / "run", {"w_lc": 3.0})
    resumed = resume_config(tmp_path / "run", {"epochs": 5, "aam": {"layers": 2}})
    assert resumed.epochs == 5 and resumed.w_lc == 100.0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["budget_mode"] == "direct" and saved["tasks"][0]["name"] == "action"
    with pytest.raises(FeatstoreError, match="nothing to resume"):
        resume_config(tmp_path / "empty", {"epochs": 5})


def test_resumable_changes_are_the_epochs_and_what_is_no_training_setting(array_store, tmp_path):
    config = small_config(array_store, tmp_path / "run")
    not_trained = set(config.to_json()) - set(config.training_settings())
    assert set(RESUMABLE_CHANGES) == {"epochs"} | not_trained
    assert {"out", "device", "progress"} <= not_trained


def test_run_folder_is_checked_before_anything_is_built(tmp_path):
    store = tmp_path / "no-store.zarr"  # never opened: the checks read only the run folder
    saved = _saved_run(store, tmp_path / "run")
    with pytest.raises(FeatstoreError, match="already holds a run"):
        check_run_folder(saved, resume=False)
    with pytest.raises(FeatstoreError, match="differ from the saved run: w_lc"):
        check_run_folder(small_config(store, tmp_path / "run", w_lc=1.0), resume=True)
    check_run_folder(small_config(store, tmp_path / "run", epochs=9, device="cuda"), resume=True)
    with pytest.raises(FeatstoreError, match="nothing to resume"):
        check_run_folder(small_config(store, tmp_path / "empty"), resume=True)
    assert not (tmp_path / "empty").exists()
    check_run_folder(small_config(store, tmp_path / "new"), resume=False)
    assert not (tmp_path / "new").exists()
