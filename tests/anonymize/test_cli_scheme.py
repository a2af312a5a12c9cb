"""Issue #15 for the ``anonymize`` tool: stores and run folders as fsspec URLs, one meaning of --lr, train --config,
and the naming scheme (--run for the run folder, --out kept as an alias; help panels with typer's defaults)."""

from __future__ import annotations

import json
import uuid

import fsspec
import pytest

from anonymize import checkpoint as ckpt
from anonymize import train as train_module
from anonymize.config import TrainConfig, read_config_file
from anonymize.resume import check_run_folder, resume_config
from anonymize.train import train
from evaluate.heads.tridet_config import TRAIN_PRESETS
from featstore.store import Store
from featstore.summary import verify_store
from tests.anonymize.conftest import DIM, small_config
from tests.anonymize.test_utility_tad import TAD_VIDEOS
from tests.conftest import run_cli, run_in_process, write_tad_array_store

FAST = ["--epochs", "1", "--batch-size", "8", "--aam-layers", "1", "--aam-heads", "2", "--identity-init", "zero",
        "--head-init-epochs", "1", "--validate-every", "1", "--device", "cpu", "--no-progress"]


@pytest.fixture
def memory_folder():
    """A fresh folder of the in-process memory filesystem: (fs, its URL); removed afterwards."""
    fs = fsspec.filesystem("memory")
    name = f"anonymize-{uuid.uuid4().hex}"
    yield fs, f"memory://{name}"
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


def copy_to(fs, local, url: str) -> str:
    """The local folder ``local`` copied to ``url`` on ``fs``."""
    fs.put(str(local), url.split("://", 1)[1], recursive=True)
    return url


def anonymize(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return run_in_process(monkeypatch, capsys, "anonymize", *args)


def one_line_error(code: int, err: str) -> str:
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    return err


# ---------------------------------------------------------------------------------------------- fsspec
def test_every_command_on_a_memory_store_and_memory_runs(array_store, tmp_path, memory_folder, monkeypatch, capsys):
    fs, root = memory_folder
    store = copy_to(fs, array_store, f"{root}/arrays.zarr")
    code, _, err = anonymize(monkeypatch, capsys, "train", "--store", store, "--run", str(tmp_path / "run"), *FAST)
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["store"] == store
    run = copy_to(fs, tmp_path / "run", f"{root}/run")  # a finished run, published at a URL

    code, out, err = anonymize(monkeypatch, capsys, "info", "--run", run, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["run"] == run and summary["config"]["store"] == store and len(summary["epochs"]) == 1

    code, _, err = anonymize(monkeypatch, capsys, "export", "--run", run, "--store", store, "--out", f"{root}/anon.zarr",
                             "--device", "cpu")
    assert code == 0, err
    anon = Store.open(f"{root}/anon.zarr")
    assert verify_store(f"{root}/anon.zarr") == []
    assert anon.anonymizer["run"] == run and anon.anonymizer["source_store"] == store
    assert anon.clip_embeddings.shape == Store.open(store).clip_embeddings.shape
    code, _, err = anonymize(monkeypatch, capsys, "export", "--run", run, "--store", store, "--out", f"{root}/anon.zarr",
                             "--device", "cpu")
    assert "already exists" in one_line_error(code, err)

    code, _, err = anonymize(monkeypatch, capsys, "baseline", "--method", "pca", "--components", "4", "--store", store,
                             "--run", f"{root}/pca")
    assert code == 0, err
    assert fs.isfile(f"/{root[len('memory://'):]}/pca/baseline.json")
    code, out, err = anonymize(monkeypatch, capsys, "info", "--run", f"{root}/pca", "--json")
    assert code == 0 and json.loads(out)["method"] == "pca", err
    code, _, err = anonymize(monkeypatch, capsys, "baseline", "--method", "pca", "--components", "4", "--store", store,
                             "--run", f"{root}/pca")
    assert "already holds a baseline run" in one_line_error(code, err)
    # a URL that holds something else is refused, and what it holds is kept (even with --overwrite)
    fs.pipe(f"/{root[len('memory://'):]}/precious/data.txt", b"keep me")
    code, _, err = anonymize(monkeypatch, capsys, "baseline", "--method", "pca", "--components", "4", "--store", store,
                             "--run", f"{root}/precious", "--overwrite")
    assert "exists and is not a baseline run" in one_line_error(code, err)
    assert fs.cat(f"/{root[len('memory://'):]}/precious/data.txt") == b"keep me"
    code, _, err = anonymize(monkeypatch, capsys, "export", "--run", f"{root}/pca", "--store", store, "--out",
                             str(tmp_path / "pca.zarr"), "--device", "cpu")
    assert code == 0, err
    assert Store.open(tmp_path / "pca.zarr").anonymizer["baseline"]["method"] == "pca"

    # a training run at a URL trains in a local folder and is copied there when it ends; it resumes from there
    trained = f"{root}/trained"
    code, out, err = anonymize(monkeypatch, capsys, "train", "--store", store, "--run", trained, *FAST)
    assert code == 0, err
    assert trained in out
    saved = json.loads(fs.cat(f"/{trained[len('memory://'):]}/config.json"))
    assert saved["out"] == trained and saved["epochs"] == 1  # the URL, not the local folder it was trained in
    code, out, err = anonymize(monkeypatch, capsys, "train", "--run", trained, "--resume", "--epochs", "2",
                               "--no-progress")
    assert code == 0 and "2 epochs" in out, err
    remote = [path.rsplit("/", 1)[-1] for path in fs.find(f"/{trained[len('memory://'):]}")]
    assert [name for name in remote if name.startswith("checkpoint-")] == ["checkpoint-000002.safetensors"]  # no stale
    code, out, err = anonymize(monkeypatch, capsys, "info", "--run", trained, "--json")
    assert code == 0 and json.loads(out)["overview"]["epochs"] == "2 of 2", out
    code, _, err = anonymize(monkeypatch, capsys, "export", "--run", trained, "--store", store, "--out",
                             str(tmp_path / "trained.zarr"), "--device", "cpu")
    assert code == 0, err
    # a new run into a URL that holds files, or a resume of nothing, is refused in one line
    code, _, err = anonymize(monkeypatch, capsys, "train", "--store", store, "--run", trained, *FAST)
    assert "already holds files" in one_line_error(code, err)
    code, _, err = anonymize(monkeypatch, capsys, "train", "--run", f"{root}/nothing", "--resume")
    assert "nothing to resume" in one_line_error(code, err)


def test_every_command_on_file_urls(array_store, tmp_path, monkeypatch, capsys):
    store, run, out = (f"file://{tmp_path / name}" for name in ("arrays.zarr", "run", "anon.zarr"))
    copy_to(fsspec.filesystem("file"), array_store, store)
    code, _, err = anonymize(monkeypatch, capsys, "train", "--store", store, "--run", run, *FAST)
    assert code == 0, err
    assert (tmp_path / "run" / "aam.safetensors").is_file()  # the URL's folder, not a folder named "file:"
    code, out_text, err = anonymize(monkeypatch, capsys, "info", "--run", run, "--json")
    assert code == 0 and json.loads(out_text)["run"] == run, err
    code, _, err = anonymize(monkeypatch, capsys, "export", "--run", run, "--store", store, "--out", out, "--device", "cpu")
    assert code == 0, err
    assert verify_store(tmp_path / "anon.zarr") == []
    code, _, err = anonymize(monkeypatch, capsys, "baseline", "--method", "gaussian-noise", "--store", store, "--run",
                             f"file://{tmp_path / 'noise'}")
    assert code == 0, err
    assert (tmp_path / "noise" / "baseline.json").is_file()


def test_task_stores_at_urls(array_store, tmp_path, memory_folder, monkeypatch, capsys):
    fs, root = memory_folder
    monkeypatch.setitem(TRAIN_PRESETS, "small", {**TRAIN_PRESETS["small"], "warmup_epochs": 1, "epochs": 1})
    tad = write_tad_array_store(tmp_path / "tad.zarr", TAD_VIDEOS, ["a", "b"], dim=DIM)
    tad_url = copy_to(fs, tad, f"{root}/tad.zarr")
    code, _, err = anonymize(monkeypatch, capsys, "train", "--store", f"file://{array_store}", "--tad-store", tad_url,
                             "--run", str(tmp_path / "run"), *FAST)
    assert code == 0, err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert [(task["name"], task["store"]) for task in saved["tasks"]] == [("action", f"file://{array_store}"),
                                                                        ("tad", tad_url)]
    assert "mAP" in ckpt.read_checkpoint_info(tmp_path / "run")["history"][0]["head_init"]["tad"]


# ---------------------------------------------------------------------------------------------- --lr
def saved_lr(run) -> tuple[dict, float]:
    """(the saved config, the learning rate of the AAM's optimizer group in the checkpoint)."""
    config = json.loads((run / ckpt.CONFIG_FILE).read_text())
    groups = ckpt.read_checkpoint_info(run)["optimizers"]["main"]["param_groups"]
    return config, groups[0]["lr"]


def test_lr_is_the_learning_rate_used_and_linear_scaling_is_an_option(array_store, tmp_path, monkeypatch, capsys):
    literal, scaled = tmp_path / "literal", tmp_path / "scaled"
    code, _, err = anonymize(monkeypatch, capsys, "train", "--store", str(array_store), "--run", str(literal), *FAST,
                             "--lr", "1e-3")
    assert code == 0, err
    config, used = saved_lr(literal)
    assert (config["lr"], config["lr_scaling"], config["lr_used"]) == (1e-3, "none", 1e-3) and used == 1e-3
    code, _, err = anonymize(monkeypatch, capsys, "train", "--store", str(array_store), "--run", str(scaled), *FAST,
                             "--lr", "1e-4", "--lr-scaling", "linear", "--lr-reference-batch", "32")
    assert code == 0, err
    config, used = saved_lr(scaled)
    assert config["lr_scaling"] == "linear" and config["lr_used"] == pytest.approx(2.5e-5) and used == pytest.approx(2.5e-5)
    code, out, _ = anonymize(monkeypatch, capsys, "info", "--run", str(scaled))
    assert "AdamW lr 2.5e-05 (= 0.0001 x 8/32, linear scaling)" in " ".join(out.split())
    # the paper's setting is the same learning rate either way
    paper = dict(store=str(array_store), out="x", lr=1e-4, batch_size=512)
    assert TrainConfig(**paper).scaled_lr == TrainConfig(**paper, lr_scaling="linear").scaled_lr == 1e-4


def test_lr_schedule_cosine_anneals_the_aam_and_head_rates_over_the_epochs(array_store, tmp_path, monkeypatch, capsys):
    run = tmp_path / "cosine"
    assert FAST[:2] == ["--epochs", "1"]
    code, _, err = anonymize(monkeypatch, capsys, "train", "--store", str(array_store), "--run", str(run), *FAST[2:],
                             "--epochs", "4", "--lr", "1e-3", "--lr-schedule", "cosine")
    assert code == 0, err
    history = ckpt.read_checkpoint_info(run)["history"]
    # epoch e of 4 trains at (1 + cos(pi e / 4)) / 2 of --lr
    assert [record["lr_factor"] for record in history[1:]] == pytest.approx([1.0, 0.853553, 0.5, 0.146447], abs=1e-6)
    groups = ckpt.read_checkpoint_info(run)["optimizers"]["main"]["param_groups"]
    assert len(groups) == 2 and [g["lr"] for g in groups] == pytest.approx([1e-3 * 0.146447] * 2, rel=1e-5)
    assert json.loads((run / ckpt.CONFIG_FILE).read_text())["lr_schedule"] == "cosine"
    code, out, _ = anonymize(monkeypatch, capsys, "info", "--run", str(run))
    assert "AdamW lr 0.001, cosine schedule, batch 8" in " ".join(out.split())
    err = one_line_error(*anonymize(monkeypatch, capsys, "train", "--store", str(array_store), "--run",
                                    str(tmp_path / "step"), *FAST, "--lr-schedule", "step")[::2])
    assert "lr schedule must be one of ['constant', 'cosine'], got 'step'" in err
    assert not (tmp_path / "step" / ckpt.CONFIG_FILE).exists()


def test_a_run_saved_before_lr_scaling_resumes_with_its_linear_scaling(array_store, tmp_path):
    run = tmp_path / "old"
    # trained at 1e-4 x 8/32, as the code before --lr became literal trained it
    train(small_config(array_store, run, epochs=1, lr=1e-4, lr_scaling="linear", lr_reference_batch=32))
    old = json.loads((run / ckpt.CONFIG_FILE).read_text())
    del old["lr_scaling"], old["lr_used"]  # config.json as the code before --lr became literal wrote it
    (run / ckpt.CONFIG_FILE).write_text(json.dumps(old))
    loaded = TrainConfig.load(run / ckpt.CONFIG_FILE)
    assert loaded.lr_scaling == "linear" and loaded.scaled_lr == pytest.approx(2.5e-5)
    resumed = resume_config(run, {"epochs": 2})
    assert resumed.lr_scaling == "linear" and resumed.scaled_lr == pytest.approx(2.5e-5)
    check_run_folder(resumed, resume=True)
    # the same learning rate written the new way is no change; another one is
    check_run_folder(small_config(array_store, run, epochs=2, lr=2.5e-5), resume=True)
    with pytest.raises(Exception, match="lr"):
        check_run_folder(small_config(array_store, run, epochs=2, lr=1e-4), resume=True)
    # on the command line too: --lr 2.5e-5 (literal) is the rate the run trained at; --lr 1e-4 is not
    assert resume_config(run, {"epochs": 2, "lr": 2.5e-5}).scaled_lr == pytest.approx(2.5e-5)
    with pytest.raises(Exception, match="lr"):
        resume_config(run, {"epochs": 2, "lr": 1e-4})
    # the old config.json given as a --config file keeps its linear scaling as well
    assert TrainConfig.from_settings(read_config_file(run / ckpt.CONFIG_FILE)).scaled_lr == pytest.approx(2.5e-5)
    assert train(resumed, resume=True).epochs_done == 2
    config, used = saved_lr(run)
    assert config["lr_scaling"] == "linear" and config["lr_used"] == pytest.approx(2.5e-5) == used


# ---------------------------------------------------------------------------------------------- --config
@pytest.fixture
def captured(monkeypatch):
    """``anonymize train`` builds its config and stops there: the configs it would train, in order."""
    configs = []

    def capture(config, resume=False):
        configs.append((config, resume))
        raise SystemExit(0)

    monkeypatch.setattr(train_module, "train", capture)
    return configs


def test_config_file_yaml_and_json_with_the_command_line_on_top(array_store, tmp_path, captured, monkeypatch, capsys):
    yaml_file = tmp_path / "train.yaml"
    yaml_file.write_text(f"store: {array_store}\nlr: 1e-3\nepochs: 7\nbatch_size: 16\naam:\n  layers: 1\n"
                         "identity:\n  preset: zero\nbudget_mode: adversarial\n")
    code, _, err = anonymize(monkeypatch, capsys, "train", "--config", str(yaml_file), "--run", str(tmp_path / "r"),
                             "--epochs", "3", "--aam-heads", "2")
    assert code == 0, err
    config, resume = captured[-1]
    assert not resume and config.lr == 1e-3 and config.epochs == 3 and config.batch_size == 16
    assert (config.aam.layers, config.aam.heads, config.identity.preset) == (1, 2, "zero")
    assert config.budget_mode == "adversarial" and config.tasks[0].store == str(array_store)
    assert config.out == str(tmp_path / "r") and config.device == "auto"  # not given anywhere: the default

    # a run's own config.json is a config file; --store given here moves the action task too
    saved = TrainConfig.from_settings({"store": "elsewhere.zarr", "out": str(tmp_path / "old"), "w_lc": 5.0})
    json_file = tmp_path / "config.json"
    json_file.write_text(json.dumps(saved.to_json()))
    code, _, err = anonymize(monkeypatch, capsys, "train", "--config", str(json_file), "--store", str(array_store),
                             "--lr", "2e-4")
    assert code == 0, err
    config, _ = captured[-1]
    assert config.out == str(tmp_path / "old") and config.w_lc == 5.0 and config.lr == 2e-4
    assert config.store == str(array_store) and [t.store for t in config.tasks] == [str(array_store)]


def test_config_file_errors_are_one_line(array_store, tmp_path, captured, monkeypatch, capsys):
    cases = {
        "unknown.yaml": (f"store: {array_store}\nlearning_rate: 1e-3\n", "unknown training config key 'learning_rate'"),
        "nested.json": (json.dumps({"store": str(array_store), "aam": {"hidden": 3}}),
                        "unknown training config key 'aam.hidden'"),
        "typed.yaml": (f"store: {array_store}\nepochs: many\n", "training config epochs: expected int, got 'many'"),
        "task.yaml": (f"store: {array_store}\ntasks:\n  - name: tad\n", "training config tasks[0]: needs 'store'"),
        "list.yaml": ("- 1\n- 2\n", "must hold a mapping of settings"),
        "broken.json": ("{", "is not valid JSON"),
        "config.toml": ("lr = 1", "a config file is .json, .yaml or .yml"),
        "number_key.yaml": (f"store: {array_store}\n5: 1\n", "unknown training config key '5'"),
        "nested_number.yaml": (f"store: {array_store}\naam:\n  7: 1\n", "unknown training config key 'aam.7'"),
        "twice.yaml": (f"store: {array_store}\ntasks:\n  - {{name: tad, store: a}}\n  - {{name: tad, store: b}}\n",
                       "training config tasks[1]: task 'tad' appears twice"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        code, _, err = anonymize(monkeypatch, capsys, "train", "--config", str(tmp_path / name), "--run",
                                 str(tmp_path / "r"))
        assert message in one_line_error(code, err), (name, err)
    assert not captured


# ---------------------------------------------------------------------------------------------- naming scheme
def test_run_folder_is_run_with_out_as_its_old_name(array_store, tmp_path, captured, monkeypatch, capsys):
    for flag in ("--run", "--out"):
        code, _, err = anonymize(monkeypatch, capsys, "train", "--store", str(array_store), flag, str(tmp_path / flag))
        assert code == 0, err
        assert captured[-1][0].out == str(tmp_path / flag)
    code, _, err = anonymize(monkeypatch, capsys, "train", "--store", str(array_store))
    assert "--run is required" in one_line_error(code, err)


def test_train_help_has_panels_and_shows_the_dataclass_defaults():
    done = run_cli("anonymize", "train", "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for panel in ("Data", "Model", "Objective", "Optimization", "Output"):
        assert f"─ {panel} ─" in done.stdout, panel
    assert "--run,--out" in text.replace(" ", "")
    assert "[default: 0.0001]" in text and "[default: none]" in text and "[default: 512]" in text
    assert "[1e-4]" not in text and "[512]" not in text  # no default retyped by hand
    done = run_cli("anonymize", "baseline", "--help")
    # a method's option left out takes the method's default, shown typer's way for a default given in words
    assert done.returncode == 0 and "[default: (50000)]" in " ".join(done.stdout.split()), done.stderr


def test_a_remote_run_that_stops_early_is_still_uploaded(memory_folder):
    fs, root = memory_folder
    run = f"{root}/stopped"
    with pytest.raises(KeyboardInterrupt):
        with ckpt.writable_run(run, resume=False) as folder:
            (folder / ckpt.CONFIG_FILE).write_text(json.dumps({"out": str(folder), "epochs": 5}))
            (folder / "checkpoint-000001.safetensors").write_bytes(b"whole")
            raise KeyboardInterrupt
    key = run[len("memory://"):]
    assert json.loads(fs.cat(f"/{key}/config.json"))["out"] == run  # resumable from the URL
    assert fs.cat(f"/{key}/checkpoint-000001.safetensors") == b"whole"
