"""Training runs: determinism, bit-exact resume, run-folder errors, budget modes, utility batches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from anonymize import checkpoint as ckpt
from anonymize.array_store import write_array_store
from anonymize.data import window_rows
from anonymize.export import export_store
from anonymize.model import AAMConfig
from anonymize.train import Trainer, train
from anonymize.utility_tasks import build_task
from data_manifests.errors import FeatstoreError
from featstore.store import Store
from tests.anonymize.conftest import small_config, structured_store


def _tensors(run):
    return load_file(str(ckpt.checkpoint_tensors_path(run)))


def _assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("settings", [
    {"budget_mode": "direct"},
    {"budget_mode": "adversarial", "budget_restart_every": 2, "budget_steps": 2, "static_noise": 0.1,
     "static_feature_dropout": 0.1},
    {"budget_mode": "supervised", "aam": AAMConfig(architecture="mlp", layers=2)},
    {"budget_mode": "direct", "aam": AAMConfig(mode="temporal", layers=2, heads=2, window=1),
     "budget_inputs": "static+clips", "lc_inputs": "clips+static"},
    {"budget_mode": "cross-view", "budget_restart_every": 2, "budget_steps": 2, "static_noise": 0.1,
     "critic_hidden": 16, "critic_proj": 8},
    {"budget_mode": "cross-view", "critic_objective": "maximize", "critic_hidden": 16, "critic_proj": 8,
     "aam": AAMConfig(mode="temporal", layers=2, heads=2, window=1)},
    {"budget_mode": "bottleneck", "bottleneck_with_ntxent": True, "lc_inputs": "clips+static"},
    {"budget_mode": "supervised-clips", "budget_restart_every": 2, "budget_steps": 2, "adversary_ensemble": 2,
     "aam": AAMConfig(architecture="mlp", layers=2)},
    {"budget_mode": "independence", "w_within_video": 1.0, "batch_size": 18},
    {"budget_mode": "direct", "w_within_video": 1.0},
    {"budget_mode": "independence", "utility_target": "raw-head", "batch_size": 18},
    {"budget_mode": "independence", "budget_clips": "video-mean", "w_within_video": 1.0, "batch_size": 18},
    {"budget_mode": "bottleneck", "budget_clips": "video-mean", "aam": AAMConfig(mode="temporal", layers=2, heads=2,
                                                                                   window=1)},
    {"budget_mode": "independence", "batch_size": 18, "aam": AAMConfig(layers=2, heads=2, output_floor=0.05)},
    {"budget_mode": "direct", "aam": AAMConfig(mode="temporal", layers=2, heads=2, window=1, output_floor=0.05)},
    {"budget_mode": "independence", "independence_estimator": "unbiased", "batch_size": 18},
], ids=["direct", "adversarial-restarts-augment", "supervised-mlp-dropout", "temporal", "cross-view-restarts-augment",
        "cross-view-maximize-temporal", "bottleneck-ntxent", "supervised-clips-restarts-mlp-dropout",
        "independence-within-video", "direct-within-video", "independence-raw-head",
        "independence-video-mean-within-video", "bottleneck-video-mean-temporal", "independence-output-floor",
        "temporal-output-floor", "independence-unbiased"])
def test_resume_is_bit_exact(array_store, tmp_path, settings):
    straight = train(small_config(array_store, tmp_path / "straight", epochs=4, **settings))
    train(small_config(array_store, tmp_path / "resumed", epochs=2, **settings))
    resumed = train(small_config(array_store, tmp_path / "resumed", epochs=4, **settings), resume=True)
    _assert_same_tensors(_tensors(tmp_path / "straight"), _tensors(tmp_path / "resumed"))
    assert straight.aam_sha256 == resumed.aam_sha256
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2, 3, 4]
    for a, b in zip(straight.history[1:], resumed.history[1:]):
        assert a["loss"] == b["loss"] and a.get("val") == b.get("val")


def test_same_command_gives_the_same_checkpoint(array_store, tmp_path):
    first = train(small_config(array_store, tmp_path / "a", epochs=2))
    second = train(small_config(array_store, tmp_path / "b", epochs=2))
    assert first.aam_sha256 == second.aam_sha256
    other_seed = train(small_config(array_store, tmp_path / "c", epochs=2, seed=1))
    assert other_seed.aam_sha256 != first.aam_sha256


def test_streaming_rows_give_the_same_result_as_memory_rows_with_one_chunk(array_store, tmp_path):
    # The array store fits in one chunk, so the block-shuffled stream order equals the memory order.
    memory = train(small_config(array_store, tmp_path / "m", epochs=2))
    stream = train(small_config(array_store, tmp_path / "s", epochs=2, row_source="stream"))
    assert memory.aam_sha256 == stream.aam_sha256


def test_run_folder_errors(array_store, tmp_path):
    config = small_config(array_store, tmp_path / "run", epochs=1)
    train(config)
    with pytest.raises(FeatstoreError, match="already holds a run"):
        train(config)
    with pytest.raises(FeatstoreError, match="differ from the saved run: w_lc"):
        train(small_config(array_store, tmp_path / "run", epochs=2, w_lc=1.0), resume=True)
    with pytest.raises(FeatstoreError, match="nothing to resume"):
        train(small_config(array_store, tmp_path / "empty", epochs=1), resume=True)
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(FeatstoreError, match="is a file"):
        train(small_config(array_store, tmp_path / "taken", epochs=1))
    with pytest.raises(FeatstoreError, match="cannot create --run"):
        train(small_config(array_store, tmp_path / "taken" / "run", epochs=1))


def test_config_validation_errors(array_store, tmp_path):
    for bad, match in [({"budget_mode": "magic"}, "budget mode"), ({"temperature": 0.0}, "temperature"),
                       ({"batch_size": 1}, "batch size"), ({"identity": {"preset": "fast"}}, "identity init preset"),
                       ({"lc_distance": "cos"}, "latent consistency distance"),
                       ({"utility_target": "logits"}, "utility target"),
                       ({"utility_target": "raw-head", "head_init_epochs": 0}, "head init epochs must be > 0")]:
        with pytest.raises(FeatstoreError, match=match):
            small_config(array_store, tmp_path / "x", **bad)
    with pytest.raises(FeatstoreError, match="no utility task named 'segmentation'"):
        train(small_config(array_store, tmp_path / "t", tasks=[{"name": "segmentation", "store": str(array_store)}]))


def test_history_records_losses_throughput_and_validation(array_store, tmp_path):
    result = train(small_config(array_store, tmp_path / "run", epochs=2, budget_mode="adversarial"))
    init, *epochs = result.history
    assert set(init) >= {"identity_init", "head_init", "val"}
    for record in epochs:
        assert record["steps"] == 4  # 27 training videos in batches of 8
        assert record["clips_per_s"] > 0 and np.isfinite(record["adversary"])
        assert record["privacy"] < 0  # -NT-Xent
    assert "action.top1" in epochs[-1]["val"]


def test_action_batches_draw_one_clip_of_each_video(array_store):
    store = Store.open(array_store)
    task = build_task("action", store, 1.0)
    offsets = store.clip_offsets()
    generator = torch.Generator().manual_seed(0)
    seen = []
    for batch in task.epoch_batches(8, generator):
        rows, videos = batch.info["rows"], batch.info["videos"]
        assert np.all((rows >= offsets[videos]) & (rows < offsets[videos + 1]))  # a clip of its own video
        assert torch.equal(batch.targets, torch.from_numpy(store.videos().label[videos]))
        np.testing.assert_array_equal(batch.embeddings.numpy(), store.load_embeddings("clips")[rows])
        seen.extend(videos.tolist())
    assert sorted(seen) == sorted(task.videos.tolist())  # every training video once per epoch
    windows = next(task.epoch_batches(8, generator, context_window=2))
    assert windows.embeddings.shape == (8, 5, store.dim) and windows.centre == 2
    videos, window_rows = windows.info["videos"], windows.info["window_rows"]
    inside = (window_rows >= offsets[videos][:, None]) & (window_rows < offsets[videos + 1][:, None])
    assert inside.all() and windows.mask[:, 2].all()
    torch.testing.assert_close(windows.clips(windows.embeddings), torch.from_numpy(
        store.load_embeddings("clips")[windows.info["rows"]]))


def _windows_relative_error(trainer) -> float:
    """MSE / variance between each train clip and the AAM's output for it inside its video (full context)."""
    offsets = trainer.store.clip_offsets()
    videos = trainer.store.split_indices("train")
    rows = np.concatenate([np.arange(offsets[v], offsets[v + 1]) for v in videos])
    context = trainer.config.aam.context_window
    window, valid = window_rows(offsets, np.repeat(videos, np.diff(offsets)[videos]), rows, context)
    values = torch.from_numpy(trainer.store.load_embeddings("clips").astype(np.float32))[torch.from_numpy(window)]
    assert (valid.sum(axis=1) > 1).all()  # every window holds several real clips
    trainer.aam.eval()
    with torch.no_grad():
        out = trainer.aam(values, torch.from_numpy(valid))[:, context]
    centres = values[:, context]
    return float(((out - centres) ** 2).mean() / centres.var())


def test_temporal_identity_init_is_the_identity_on_real_windows(tmp_path):
    """Neighbouring clips unrelated to each other: attention across them must be trained toward the identity too
    (trained on one-clip sequences only, the error on real windows stayed ~2%, ten times the one-clip error)."""
    rng = np.random.default_rng(0)
    n_videos = 24
    store = write_array_store(tmp_path / "iid.zarr", [rng.normal(size=(6 + v % 3, 16)) for v in range(n_videos)],
                              [rng.normal(size=(3, 16)) for _ in range(n_videos)],
                              ["train" if v % 4 else "test" for v in range(n_videos)], [v % 3 for v in range(n_videos)],
                              rng.integers(0, 2, size=(n_videos, 2)), ["a", "b", "c"], ["p", "q"])
    config = small_config(store, tmp_path / "run", aam=AAMConfig(mode="temporal", layers=2, heads=2, window=1),
                          identity={"preset": "code", "epochs": 30, "lr": 1e-2})
    trainer = Trainer(config, show_progress=False)
    assert _windows_relative_error(trainer) > 0.1
    result = trainer.identity_init()
    assert result["relative_mse"] < 0.005  # recorded on windows: clips and static clips
    assert _windows_relative_error(trainer) < 0.005


def within_video_error(run, store_path) -> float:
    """Mean squared error between anonymized and raw differences of consecutive clips of each video."""
    from anonymize.export import load_trained_aam

    store = Store.open(store_path)
    aam = load_trained_aam(run, "cpu").module.eval()
    offsets, raw = store.clip_offsets(), torch.from_numpy(store.load_embeddings())
    with torch.no_grad():
        anonymized = aam(raw, None)
    errors = [((anonymized[a + 1:b] - anonymized[a:b - 1]) - (raw[a + 1:b] - raw[a:b - 1])).pow(2).mean()
              for a, b in zip(offsets[:-1], offsets[1:]) if b - a >= 2]
    return float(torch.stack(errors).mean())


def test_raw_head_target_is_the_logit_distance_and_leaves_the_head_alone(array_store):
    """After keep_raw_head the action term is the MSE between the head's logits on the anonymized and on the raw
    clip (zero for an unmoved clip), its gradient reaches the AAM's output and never the head."""
    task = build_task("action", Store.open(array_store), 1.0)
    batch = next(task.epoch_batches(8, torch.Generator().manual_seed(0)))
    assert torch.equal(task.loss(batch.embeddings, batch),
                       torch.nn.functional.cross_entropy(task.head(batch.embeddings), batch.targets))
    task.keep_raw_head()
    assert float(task.loss(batch.embeddings, batch)) == 0.0
    moved = (batch.embeddings + 0.5 * torch.randn(batch.embeddings.shape, generator=torch.Generator().manual_seed(1)))
    moved.requires_grad_(True)
    loss = task.loss(moved, batch)
    with torch.no_grad():
        expected = (task.head(moved) - task.head(batch.embeddings)).pow(2).mean()
    assert float(loss.detach()) > 0 and torch.allclose(loss.detach(), expected)
    loss.backward()
    assert moved.grad is not None and moved.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in task.head.parameters())


def test_a_raw_head_run_ends_with_the_head_its_raw_init_gave_it(array_store, tmp_path):
    """--utility-target raw-head: the head is frozen after its init on raw features (the labels target trains it
    on with the AAM), so the run's head equals a 0-epoch run's while the AAM still trains."""
    settings = dict(budget_mode="independence", batch_size=18, w_budget=10.0)
    train(small_config(array_store, tmp_path / "start", epochs=0, utility_target="raw-head", **settings))
    start = _tensors(tmp_path / "start")
    heads = [key for key in start if "action" in key]
    assert heads
    for target, head_moves in (("raw-head", False), ("labels", True)):
        train(small_config(array_store, tmp_path / target, epochs=3, utility_target=target, **settings))
        end = _tensors(tmp_path / target)
        assert any(not torch.equal(start[key], end[key]) for key in end if key not in heads)
        assert any(not torch.equal(start[key], end[key]) for key in heads) is head_moves, target


def test_within_video_consistency_keeps_what_changes_inside_a_video(array_store, tmp_path):
    """The independence budget (without it) lets the AAM distort clip-to-clip changes; the within-video
    term keeps them, and records its value in the history."""
    settings = dict(budget_mode="independence", batch_size=18, epochs=15, w_budget=10.0, w_lc=0.0, lr=3e-3,
                    lr_reference_batch=18)
    without = train(small_config(array_store, tmp_path / "without", **settings))
    kept = train(small_config(array_store, tmp_path / "with", w_within_video=10.0, **settings))
    assert "within_video" not in without.history[-1] and kept.history[-1]["within_video"] >= 0
    assert within_video_error(tmp_path / "with", array_store) < 0.5 * within_video_error(tmp_path / "without", array_store)


def _train_clip_outputs(run, store):
    """``run``'s export of ``store``: the outputs of its train-split clips, and of every clip."""
    out = run.parent / f"{run.name}-export.zarr"
    export_store(run, store, out, device="cpu")
    exported, source = Store.open(out), Store.open(store)
    clips, offsets = np.asarray(exported.clip_embeddings[:], np.float64), source.clip_offsets()
    train_rows = np.concatenate([np.arange(offsets[v], offsets[v + 1]) for v in source.split_indices("train")])
    return clips[train_rows], clips


@pytest.mark.parametrize("aam", [AAMConfig(layers=2, heads=2), AAMConfig(mode="temporal", layers=2, heads=2, window=1)],
                         ids=["clip", "temporal"])
def test_the_output_projection_is_fitted_after_training_and_drops_the_directions_under_the_floor(tmp_path, aam):
    array_store = structured_store(tmp_path / "float32.zarr", dtype="float32")  # exports compared to 1e-4: no float16
    floor = 0.2
    settings = {"budget_mode": "independence", "batch_size": 18, "epochs": 3}
    plain = train(small_config(array_store, tmp_path / "plain", aam=aam, **settings))
    projected = train(small_config(array_store, tmp_path / "projected", aam=replace(aam, output_floor=floor),
                                   **settings))
    # the projection is the identity while training: the network's weights and every loss are those of the plain run
    weights = load_file(str(tmp_path / "projected" / ckpt.AAM_FILE))
    plain_weights = load_file(str(tmp_path / "plain" / ckpt.AAM_FILE))
    for key, value in plain_weights.items():
        assert torch.equal(weights[key], value), key
    assert [h["loss"] for h in plain.history[1:]] == [h["loss"] for h in projected.history[1:]]
    # fitted to the plain outputs' train-split covariance (computed here with numpy): the export is their projection
    plain_train, plain_clips = _train_clip_outputs(tmp_path / "plain", array_store)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(plain_train.T, bias=True))
    kept = eigenvectors[:, eigenvalues >= floor * eigenvalues.mean()]
    assert 0 < kept.shape[1] < len(eigenvalues)  # the floor drops some directions of this store and keeps others
    info = ckpt.read_checkpoint_info(tmp_path / "projected")["output_projection"]
    assert info == {"floor": floor, "rank": 0, "kept": kept.shape[1], "dim": len(eigenvalues),
                    "rows": len(plain_train), "centred": False}
    mean = plain_train.mean(0)
    expected = mean + (plain_clips - mean) @ kept @ kept.T
    projected_train, projected_clips = _train_clip_outputs(tmp_path / "projected", array_store)
    np.testing.assert_allclose(projected_clips, expected, atol=1e-4)
    projected_eigenvalues = np.linalg.eigvalsh(np.cov(projected_train.T))
    assert (projected_eigenvalues > 1e-8 * projected_eigenvalues.max()).sum() == kept.shape[1]
    assert projected.aam_sha256 != plain.aam_sha256  # the exports record the projection's hash with the weights


def test_the_centred_output_is_the_plain_output_less_its_train_clips_mean(tmp_path):
    array_store = structured_store(tmp_path / "float32.zarr", dtype="float32")
    settings = {"budget_mode": "independence", "batch_size": 18, "epochs": 3}
    aam = AAMConfig(layers=2, heads=2)
    plain = train(small_config(array_store, tmp_path / "plain", aam=aam, **settings))
    centred = train(small_config(array_store, tmp_path / "centred", aam=replace(aam, output_centre=True), **settings))
    assert [h["loss"] for h in plain.history[1:]] == [h["loss"] for h in centred.history[1:]]  # it trains the same
    plain_train, plain_clips = _train_clip_outputs(tmp_path / "plain", array_store)
    centred_train, centred_clips = _train_clip_outputs(tmp_path / "centred", array_store)
    assert np.linalg.norm(plain_train.mean(0)) > 0.1  # the plain outputs have an offset to remove
    np.testing.assert_allclose(centred_clips, plain_clips - plain_train.mean(0), atol=1e-4)
    np.testing.assert_allclose(centred_train.mean(0), 0.0, atol=1e-4)
    info = ckpt.read_checkpoint_info(tmp_path / "centred")["output_projection"]
    assert info == {"floor": 0.0, "rank": 0, "kept": plain_clips.shape[1], "dim": plain_clips.shape[1],
                    "rows": len(plain_train), "centred": True}


def test_a_centred_run_resumed_for_more_epochs_ends_as_one_trained_straight(array_store, tmp_path):
    settings = {"budget_mode": "independence", "batch_size": 18, "aam": AAMConfig(layers=2, heads=2, output_centre=True)}
    straight = train(small_config(array_store, tmp_path / "straight", epochs=4, **settings))
    train(small_config(array_store, tmp_path / "resumed", epochs=2, **settings))
    resumed = train(small_config(array_store, tmp_path / "resumed", epochs=4, **settings), resume=True)
    assert resumed.aam_sha256 == straight.aam_sha256
    assert ckpt.read_checkpoint_info(tmp_path / "resumed")["output_projection"]["centred"] is True


def test_a_finished_run_resumed_for_more_epochs_trains_without_its_projection_and_fits_it_again(array_store, tmp_path):
    settings = {"budget_mode": "independence", "batch_size": 18, "aam": AAMConfig(layers=2, heads=2, output_floor=0.2)}
    straight = train(small_config(array_store, tmp_path / "straight", epochs=4, **settings))
    train(small_config(array_store, tmp_path / "resumed", epochs=2, **settings))
    first = ckpt.read_checkpoint_info(tmp_path / "resumed")
    assert first["tensors_file"] == "checkpoint-000002-projected.safetensors"
    resumed = train(small_config(array_store, tmp_path / "resumed", epochs=4, **settings), resume=True)
    assert resumed.aam_sha256 == straight.aam_sha256
    assert [name.name for name in (tmp_path / "resumed").glob("checkpoint-*")] == [
        "checkpoint-000004-projected.safetensors"]
