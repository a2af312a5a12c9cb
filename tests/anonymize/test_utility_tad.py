"""The anonymizer's TAD task (`anonymize train --tad-store`): batches, loss gradients into the AAM, validation;
its head, pretrained with TriDet's recipe or taken from `evaluate tad --save-head`."""

from __future__ import annotations

import json

import pytest
import torch
import zarr

from anonymize import utility_tad  # registers "tad"
from anonymize import checkpoint as ckpt
from featstore.hashing import file_sha256
from anonymize.config import TrainConfig
from anonymize.model import AAMConfig, build_aam
from anonymize.resume import resume_config
from anonymize.utility_tasks import build_task, task_names
from evaluate.heads import load_head, save_head
from evaluate.heads.tridet import TriDet
from evaluate.heads.tridet_config import TRAIN_PRESETS, TriDetTrainConfig
from evaluate.protocols._action_detector import load_tad_videos, train_tridet
from evaluate.protocols.tad import TADConfig
from data_manifests.errors import FeatstoreError
from featstore.store import Store
from tests.anonymize.conftest import DIM
from tests.conftest import run_in_process, write_tad_array_store

# dim DIM like the anonymizer's array store, so that the TAD task can join its runs
TAD_VIDEOS = [("train", 40, [[5, 12, 0], [20, 28, 1]]), ("train", 36, [[3, 9, 1], [18, 26, 0]]),
              ("train", 30, [[10, 16, 0]]), ("test", 30, [[4, 10, 0], [16, 24, 1]])]
FAST = ["--epochs", "1", "--batch-size", "8", "--aam-layers", "1", "--aam-heads", "2", "--identity-init", "zero",
        "--head-init-epochs", "1", "--validate-every", "1", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def tad_arrays(tmp_path_factory):
    return write_tad_array_store(tmp_path_factory.mktemp("tad") / "tad.zarr", TAD_VIDEOS, ["a", "b"], dim=DIM)


@pytest.fixture(scope="module")
def saved_head(tad_arrays, tmp_path_factory):
    """A head as `evaluate tad` saves it (its defaults, 2 epochs) on the TAD store."""
    store = Store.open(tad_arrays)
    config = TADConfig(epochs=2, warmup_epochs=0)
    videos = load_tad_videos(store, "train")
    model_config = config.model_config("small", store.dim, 2, [len(v.rows) for v in videos])
    _, ema, _ = train_tridet(videos, model_config, config.train_config("small"), torch.device("cpu"))
    return save_head(tmp_path_factory.mktemp("head") / "tad-head.safetensors", ema.module,
                     {"store": str(tad_arrays), "class_names": ["a", "b"]})


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return a.state_dict().keys() == b.state_dict().keys() and all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_tad_task_batches_loss_and_validation(tad_store):
    assert "tad" in task_names()
    store = Store.open(tad_store)
    task = build_task("tad", store, 1.0, "memory", 8)
    assert task.input_kind == "sequence" and task.prefers_temporal and task.grad_clip == 1.0
    batches = list(task.epoch_batches(task.batch_size, torch.Generator().manual_seed(0)))
    again = list(task.epoch_batches(task.batch_size, torch.Generator().manual_seed(0)))
    assert len(batches) == 1  # 2 training videos, TriDet's batch of 2
    batch = batches[0]
    assert batch.embeddings.shape[0] == 2 and batch.mask.shape == batch.embeddings.shape[:2]
    assert torch.equal(batch.embeddings, again[0].embeddings)  # every random choice from the generator
    streamed = next(build_task("tad", store, 1.0, "stream", 2).epoch_batches(2, torch.Generator().manual_seed(0)))
    assert torch.equal(streamed.embeddings, batch.embeddings)

    torch.manual_seed(0)
    aam = build_aam(store.dim, AAMConfig(mode="temporal", layers=1, heads=2))
    loss = task.loss(aam(batch.embeddings, batch.mask), batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in aam.parameters() if p.requires_grad)
    assert sum(float(p.grad.abs().sum()) for p in aam.parameters() if p.grad is not None) > 0
    assert task.head.loss_normalizer.dtype == torch.float64  # the EMA of positives is a buffer (checkpointed)
    assert "loss_normalizer" in task.head.state_dict()

    batch_sizes = []

    def anonymize(x, mask):
        batch_sizes.append(x.shape[0])
        return aam(x, mask)

    metrics = task.validate(anonymize, torch.device("cpu"))
    assert set(metrics) == {"mAP"} and 0 <= metrics["mAP"] <= 1
    assert batch_sizes == [1, 1]  # each of the 2 test videos alone, so its detections ignore the other one


def test_the_head_is_pretrained_with_tridets_recipe(tad_arrays, monkeypatch):
    """The task's head init is `evaluate tad`'s training (its preset schedule: warmup + cosine, grad clip, EMA,
    no decay on norms and biases) on the same split with the same seed: the head is that recipe's EMA."""
    store = Store.open(tad_arrays)
    task = build_task("tad", store, 1.0)
    assert task.recipe == TriDetTrainConfig(lr=1e-3, weight_decay=0.025, batch_size=2, warmup_epochs=5, epochs=40,
                                            grad_clip=1.0, ema_decay=0.99)  # the small preset, as evaluate tad
    monkeypatch.setitem(TRAIN_PRESETS, "small", {**TRAIN_PRESETS["small"], "warmup_epochs": 1, "epochs": 2})
    task = build_task("tad", store, 1.0)  # a 3-epoch schedule keeps the test short
    record = task.pretrain_head(torch.device("cpu"), seed=11)
    assert record["recipe"] == "TriDet small" and record["epochs"] == 3 and record["lr"] == 1e-3
    defaults = TADConfig(seed=11)
    videos = load_tad_videos(store, "train")
    model_config = defaults.model_config("small", store.dim, 2, [len(v.rows) for v in videos])
    assert model_config == task.config
    _, ema, losses = train_tridet(videos, model_config, defaults.train_config("small"), torch.device("cpu"))
    assert same_weights(task.head, ema.module)
    assert record["final_train_loss"] == losses[-1]


def test_a_head_pretrained_on_the_same_sequences_is_reused(tad_arrays, tmp_path, monkeypatch):
    """The rows of a sweep pretrain the same head: the second pretraining is the first one's head and record;
    another seed or other features train again."""
    monkeypatch.setitem(TRAIN_PRESETS, "small", {**TRAIN_PRESETS["small"], "warmup_epochs": 1, "epochs": 1})
    monkeypatch.setattr(utility_tad, "PRETRAINED_HEADS", {})
    trainings = []
    real = utility_tad.detector.train_tridet
    monkeypatch.setattr(utility_tad.detector, "train_tridet",
                        lambda *args, **kw: trainings.append(1) or real(*args, **kw))
    first, second, other_seed = (build_task("tad", Store.open(tad_arrays), 1.0) for _ in range(3))
    records = [task.pretrain_head(torch.device("cpu"), seed=seed) for task, seed in ((first, 3), (second, 3),
                                                                                       (other_seed, 4))]
    assert len(trainings) == 2 and records[0] == records[1] != records[2]
    assert same_weights(first.head, second.head) and not same_weights(first.head, other_seed.head)
    # the same store with one feature changed is other sequences
    changed = write_tad_array_store(tmp_path / "changed.zarr", TAD_VIDEOS, ["a", "b"], dim=DIM)
    group = zarr.open_group(str(changed), mode="r+")
    clips = group["clips/embeddings"]
    clips[0, 0] = clips[0, 0] + 1
    build_task("tad", Store.open(changed), 1.0).pretrain_head(torch.device("cpu"), seed=3)
    assert len(trainings) == 3


def test_a_saved_head_is_the_starting_point(tad_arrays, saved_head):
    task = build_task("tad", Store.open(tad_arrays), 1.0, head=str(saved_head))
    saved, _ = load_head(saved_head)
    assert task.config == saved.config and same_weights(task.head, saved)
    record = task.pretrain_head(torch.device("cpu"), seed=0)
    assert record["from"] == str(saved_head) and record["sha256"] == file_sha256(saved_head)
    assert same_weights(task.head, saved)  # used as it is, not trained again


def test_a_head_that_does_not_fit_the_store_is_refused(tad_arrays, saved_head, tmp_path):
    store = Store.open(tad_arrays)
    saved, meta = load_head(saved_head)
    three_classes = write_tad_array_store(tmp_path / "three.zarr", TAD_VIDEOS, ["a", "b", "c"], dim=DIM)
    with pytest.raises(FeatstoreError, match=r"expects 16-d features and 2 classes; .* 16-d features and 3 classes"):
        build_task("tad", Store.open(three_classes), 1.0, head=str(saved_head))
    wider = write_tad_array_store(tmp_path / "wider.zarr", TAD_VIDEOS, ["a", "b"], dim=32)
    with pytest.raises(FeatstoreError, match="expects 16-d features"):
        build_task("tad", Store.open(wider), 1.0, head=str(saved_head))
    renamed = save_head(tmp_path / "renamed.safetensors", saved, {**meta, "class_names": ["a", "walk"]})
    with pytest.raises(FeatstoreError, match="class 1 is 'walk'"):
        build_task("tad", store, 1.0, head=str(renamed))
    with pytest.raises(FeatstoreError, match="no saved head"):
        build_task("tad", store, 1.0, head=str(tmp_path / "none.safetensors"))


def test_cli_starts_from_the_head_records_it_and_resumes(array_store, tad_arrays, saved_head, tmp_path, monkeypatch,
                                                         capsys):
    run = tmp_path / "run"
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--store", str(array_store), "--tad-store",
                                  str(tad_arrays), "--tad-head", str(saved_head), "--out", str(run), *FAST)
    assert code == 0, err
    saved = json.loads((run / "config.json").read_text())
    assert [task.get("head") for task in saved["tasks"]] == [None, str(saved_head)]
    head_init = ckpt.read_checkpoint_info(run)["history"][0]["head_init"]["tad"]
    assert head_init["from"] == str(saved_head) and "mAP" in head_init
    # the same options on resume match the saved run; another head does not
    same = ["--store", str(array_store), "--tad-store", str(tad_arrays), "--tad-head", str(saved_head)]
    code, out, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--out", str(run), "--resume",
                                    "--epochs", "2", *same)
    assert code == 0, err
    assert "2 epochs" in out
    other = tmp_path / "other.safetensors"
    save_head(other, load_head(saved_head)[0], {})
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--out", str(run), "--resume", *same[:4],
                                  "--tad-head", str(other))
    assert code == 2 and "differ from the saved run: tasks" in err and len(err.strip().splitlines()) == 1


def test_a_run_pretrains_the_tad_head_with_tridets_recipe(array_store, tad_arrays, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(TRAIN_PRESETS, "small", {**TRAIN_PRESETS["small"], "warmup_epochs": 1, "epochs": 1})
    run = tmp_path / "run"
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--store", str(array_store), "--tad-store",
                                  str(tad_arrays), "--out", str(run), *FAST)
    assert code == 0, err
    head_init = ckpt.read_checkpoint_info(run)["history"][0]["head_init"]
    assert head_init["tad"]["recipe"] == "TriDet small" and head_init["tad"]["epochs"] == 2
    assert "mAP" in head_init["tad"] and "top1" in head_init["action"]


def test_cli_refuses_a_wrong_head_in_one_line(array_store, tad_arrays, tmp_path, monkeypatch, capsys):
    wrong = save_head(tmp_path / "wrong.safetensors", TriDet(TADConfig().model_config("small", DIM, 5, [40])), {})
    cases = [
        (["--tad-store", str(tad_arrays), "--tad-head", str(wrong)], "expects 16-d features and 5 classes"),
        (["--tad-head", str(wrong)], "--tad-head needs --tad-store"),
    ]
    for extra, message in cases:
        code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--store", str(array_store), *extra,
                                      "--out", str(tmp_path / "run"), *FAST)
        assert code == 2 and message in err, err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_refuses_the_raw_head_target_with_a_task_that_cannot_keep_it(array_store, tad_arrays, tmp_path,
                                                                        monkeypatch, capsys):
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "train", "--store", str(array_store), "--tad-store",
                                  str(tad_arrays), "--utility-target", "raw-head", "--out", str(tmp_path / "run"), *FAST)
    assert code == 2 and "task 'tad' cannot keep a raw head's outputs" in err, err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_runs_saved_before_task_heads_existed_still_resume(array_store, tmp_path):
    """A config.json without the tasks' "head" key (every run before --tad-head) loads and resumes."""
    run = tmp_path / "old"
    run.mkdir()
    config = TrainConfig(store=str(array_store), out=str(run), epochs=1)
    old = config.to_json()
    for task in old["tasks"]:
        del task["head"]
    (run / ckpt.CONFIG_FILE).write_text(json.dumps(old))
    assert TrainConfig.load(run / ckpt.CONFIG_FILE).tasks[0].head is None
    # what `anonymize train --resume --store X` passes
    cli_tasks = [{"name": "action", "store": str(array_store), "weight": 1.0, "head": None}]
    resumed = resume_config(run, {"store": str(array_store), "tasks": cli_tasks, "epochs": 2})
    assert resumed.epochs == 2 and resumed.tasks == config.tasks
    with pytest.raises(FeatstoreError, match="cannot start from a saved head"):
        build_task("action", Store.open(array_store), 1.0, head="any.safetensors")
