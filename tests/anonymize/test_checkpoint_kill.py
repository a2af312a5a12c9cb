"""Hostile tests of training checkpoints: a run killed at any point resumes to the uninterrupted result.

Two ways in: a crash injected at every file operation of a run (every state a kill between two
operations can leave on disk), for every budget mode; and real ``kill -9`` of a training process at
random moments, in a loop, until the run finishes.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from anonymize import checkpoint as ckpt
from featstore.hashing import file_sha256
from anonymize.budgets import budget_modes
from anonymize.model import AAMConfig
from anonymize.train import train
from data_manifests.errors import FeatstoreError
from tests.anonymize.conftest import small_config

# Settings that make each budget mode trainable on the small array store in about a second.
MODE_SETTINGS = {
    "direct": {},
    "adversarial": {"budget_restart_every": 1, "budget_steps": 2},
    "supervised": {"aam": AAMConfig(architecture="mlp", layers=2)},
    "none": {},
    "cross-view": {"budget_restart_every": 1, "budget_steps": 2, "critic_hidden": 16, "critic_proj": 8},
    "bottleneck": {"bottleneck_with_ntxent": True},
    "supervised-clips": {"budget_restart_every": 1, "budget_steps": 2, "adversary_ensemble": 2},
    "independence": {"batch_size": 16, "w_budget": 10.0, "w_lc": 0.1},
}
# every mode, and the one save a run makes after its last epoch: the fitted output projection's
RUNS = {**{mode: (mode, settings) for mode, settings in MODE_SETTINGS.items()},
        "independence-output-floor": ("independence", {**MODE_SETTINGS["independence"],
                                                       "aam": AAMConfig(layers=2, heads=2, output_floor=0.2)})}
EPOCHS = 1  # two saves (initial and epoch 1): every kind of save step, with and without a previous checkpoint


class InjectedCrash(BaseException):
    """Raised in place of a file operation: nothing catches it, like a kill between two operations."""


def _config(store: Path, out: Path, name: str):
    mode, settings = RUNS[name]
    return small_config(store, out, epochs=EPOCHS, budget_mode=mode, identity={"preset": "code", "epochs": 1},
                        head_init_epochs=1, **settings)


def _file_operations(monkeypatch, crash_at: int | None) -> dict:
    """Count os.replace / os.unlink calls (every step of a save) and crash at the ``crash_at``-th one."""
    count = {"n": 0}

    def counted(real):
        def operation(*args, **kwargs):
            count["n"] += 1
            if count["n"] == crash_at:
                raise InjectedCrash
            return real(*args, **kwargs)
        return operation

    monkeypatch.setattr(os, "replace", counted(os.replace))
    monkeypatch.setattr(os, "unlink", counted(os.unlink))
    return count


def _without_timings(run: Path) -> list[dict]:
    timings = ("seconds", "clips_per_s")
    return [{k: v for k, v in record.items() if k not in timings} for record in ckpt.read_checkpoint_info(run)["history"]]


def _assert_finished_like(run: Path, straight: Path) -> None:
    a, b = load_file(str(ckpt.checkpoint_tensors_path(run))), load_file(str(ckpt.checkpoint_tensors_path(straight)))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert file_sha256(run / ckpt.AAM_FILE) == file_sha256(straight / ckpt.AAM_FILE)
    assert _without_timings(run) == _without_timings(straight)
    leftovers = sorted(p.name for p in run.iterdir())
    assert leftovers == sorted(p.name for p in straight.iterdir()), "stale checkpoint or temporary files"


def test_every_budget_mode_is_covered():
    assert set(MODE_SETTINGS) == set(budget_modes())


@pytest.mark.parametrize("mode", sorted(RUNS))
def test_crash_at_every_file_operation_resumes_bit_exact(array_store, tmp_path, monkeypatch, mode):
    straight = tmp_path / "straight"
    with monkeypatch.context() as patch:
        operations = _file_operations(patch, crash_at=None)
        train(_config(array_store, straight, mode))
    total = operations["n"]
    assert total >= 3 * (EPOCHS + 1)  # a save has at least three steps, one save per epoch plus the initial one
    for crash_at in range(1, total + 1):
        run = tmp_path / f"crash-{crash_at}"
        with monkeypatch.context() as patch:
            _file_operations(patch, crash_at=crash_at)
            with pytest.raises(InjectedCrash):
                train(_config(array_store, run, mode))
        # killed before its config was written, a run has nothing to resume and starts again
        train(_config(array_store, run, mode), resume=(run / ckpt.CONFIG_FILE).is_file())
        _assert_finished_like(run, straight)


KILL_LOOP_EPOCHS = 6
KILLS = 6  # then the last resume runs to the end


def _kill_loop_config(store: Path, out: Path):
    return small_config(store, out, epochs=KILL_LOOP_EPOCHS, budget_mode="adversarial", **MODE_SETTINGS["adversarial"])


def _train_in_child(store: str, out: str, resume: bool) -> None:
    torch.set_num_threads(1)
    train(_kill_loop_config(Path(store), Path(out)), resume=resume)


def test_kill_9_at_random_moments_then_resume_is_bit_exact(array_store, tmp_path):
    """Real SIGKILLs of a forked training process, each within a third of a whole run's time, then a
    resume that runs to the end."""
    straight = tmp_path / "straight"
    torch.set_num_threads(1)
    started = time.perf_counter()
    train(_kill_loop_config(array_store, straight))
    duration = time.perf_counter() - started
    context = multiprocessing.get_context("fork")
    rng = np.random.default_rng(0)
    run = tmp_path / "killed"
    kills = 0
    while True:
        resume = (run / ckpt.CONFIG_FILE).is_file()
        child = context.Process(target=_train_in_child, args=(str(array_store), str(run), resume))
        child.start()
        child.join(timeout=rng.uniform(0.0, duration / 3) if kills < KILLS else None)
        if child.exitcode is not None:
            assert child.exitcode == 0
            break
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        kills += 1
    assert kills >= 2, f"only {kills} kills before the run finished"
    _assert_finished_like(run, straight)


def test_damaged_checkpoint_is_refused_with_one_line(array_store, tmp_path):
    run = tmp_path / "run"
    train(_config(array_store, run, "direct"))
    tensors = ckpt.checkpoint_tensors_path(run)
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(FeatstoreError, match="does not match the SHA-256"):
        train(_config(array_store, run, "direct"), resume=True)


def test_cut_off_aam_file_is_refused_by_export_and_rebuilt_by_resume(array_store, tmp_path):
    run = tmp_path / "run"
    train(_config(array_store, run, "direct"))
    good = (run / ckpt.AAM_FILE).read_bytes()
    (run / ckpt.AAM_FILE).write_bytes(good[:-8])
    with pytest.raises(FeatstoreError, match="anonymize train --resume"):
        ckpt.load_aam_weights(run)
    train(_config(array_store, run, "direct"), resume=True)
    assert (run / ckpt.AAM_FILE).read_bytes() == good


def test_a_run_folder_of_the_earlier_layout_resumes(array_store, tmp_path):
    """One checkpoint.safetensors and no recorded tensor hash, as runs were written before per-epoch names."""
    def config(out: Path, epochs: int):
        return dataclasses.replace(_config(array_store, out, "direct"), epochs=epochs, validate_every=1)

    straight = tmp_path / "straight"
    train(config(straight, 2))
    run = tmp_path / "old"
    train(config(run, 1))
    info = ckpt.read_checkpoint_info(run)
    (run / info.pop("tensors_file")).rename(run / ckpt.CHECKPOINT_TENSORS)
    info.pop("tensors_sha256")
    (run / ckpt.CHECKPOINT_JSON).write_text(json.dumps(info))
    train(config(run, 2), resume=True)
    _assert_finished_like(run, straight)
