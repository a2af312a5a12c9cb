"""The demo recipe end to end on a tiny synthetic set (the full-size demo is `make demo`)."""

import dataclasses
import json

import pytest

from data_manifests.errors import FeatstoreError
from data_manifests.synth import generate_synthetic
from featstore.summary import verify_store
from pipelines.demo import DemoConfig
from tests.conftest import TINY_SYNTH, run_cli, run_in_process


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The tests' dataset with half its training videos, of 2-3 clips each: what is checked here is the demo's
    wiring, not its numbers, and every step's time grows with the clips."""
    root = tmp_path_factory.mktemp("demo-data")
    generate_synthetic(root, dataclasses.replace(TINY_SYNTH, train_per_class=4, trimmed_min_frames=32,
                                                 trimmed_max_frames=48), show_progress=False)
    return root


@pytest.mark.slow  # minutes: four stores extracted, three anonymizers trained, two baselines, the whole report
def test_demo_recipe_runs_extract_train_export_and_report(demo_data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    # two of the four default baselines keep the test short; the others fit and export the same way
    # (tests/anonymize/test_baselines.py) and the demo's defaults list all four (checked below)
    done = run_cli("pipelines", "run", "demo", "--out", str(out), "--data-root", str(demo_data),
                   "--train-epochs", "2", "--eval-epochs", "2", "--sweep", "4", "--baseline", "lda-action",
                   "--baseline", "pca", "--device", "cpu", "--no-progress", timeout=900)
    assert done.returncode == 0, done.stderr
    for name in ("raw", "tad", "ad", "images"):
        assert verify_store(out / f"{name}.zarr") == [], name
        assert verify_store(out / "anon" / f"{name}.zarr") == [], f"anon {name}"
    assert "synthetic-images" in done.stdout and "0 failed" in done.stdout
    config = json.loads((out / "demo_config.json").read_text())
    assert config["data_root"] == str(demo_data) and config["model"] == "demo-c3d"
    assert (out / "aam" / "aam.safetensors").is_file() and (out / "sweep-wb4" / "aam.safetensors").is_file()
    # the default objective (self-supervised, on full clips) with the settings chosen on the demo store
    trained = json.loads((out / "sweep-wb4" / "config.json").read_text())
    assert (trained["budget_mode"], trained["batch_size"], trained["lr"], trained["lr_used"],
            trained["w_lc"], trained["w_budget"]) == ("independence", 140, 1e-3, 1e-3, 0.1, 4.0)
    # ... ending in the output floor, fitted after training; the paper's objective is trained as the paper's, without
    assert trained["aam"]["output_floor"] == 0.05 and trained["aam"]["output_centre"] is False  # centring: an option
    assert json.loads((out / "sweep-wb4" / "checkpoint.json").read_text())["output_projection"]["floor"] == 0.05
    # the paper's objective as a trade-off point (docs/anonymize.md: the paper's schedule barely moves a 140-video store)
    paper = json.loads((out / "paper-objective" / "config.json").read_text())
    assert (paper["budget_mode"], paper["batch_size"], paper["lr_used"], paper["w_lc"], paper["w_budget"],
            paper["aam"]["output_floor"]) == ("direct", 32, 1e-3, 10.0, 1.0, 0.0)
    results = json.loads((out / "report" / "results.json").read_text())
    protocols = {pair["name"]: pair["protocols"] for pair in results["pairs"]}
    assert protocols["synthetic"] == ["ar", "retrieval", "privacy", "vp"]
    # the untrimmed parts' actors have attributes and static clips too: their leakage is measured as well
    assert protocols["synthetic-tad"] == ["privacy", "tad"] and protocols["synthetic-ad"] == ["privacy", "ad"]
    assert protocols["synthetic-images"] == ["privacy"]
    # the first row is the headline: worst-case full-clip leakage, with the share of it removed
    first = results["table1"][0]
    assert (first["pair"], first["metric"]) == ("synthetic", "attribute cMAP, full clips, worst case")
    assert first["leakage_removed"] == pytest.approx((first["raw"] - first["anonymized"]) / (first["raw"] - first["chance"]))
    drops = {drop["pair"]: drop for drop in results["static_vs_clips"]}
    assert {"move_static", "move_clips", "static_vs_clip_separability"} <= set(drops["synthetic"])
    # trade-off: the default objective (2 weights), the paper's objective and the baselines asked for
    points = results["tradeoff"]["points"]
    assert [p["name"] for p in points] == ["aam", "sweep-wb4", "paper-objective", "baseline-lda-action",
                                           "baseline-pca"]
    assert set(results["tradeoff"]["methods"]) == {"aam independence", "aam direct", "lda-action", "pca"}
    assert DemoConfig().baselines == ["lda-action", "pca", "random-projection", "gaussian-noise"]
    assert not any(p["supervised"] for p in points) and "table" in results["attack"]
    assert "Table 1 form" in done.stdout and (out / "report" / "report.md").is_file()

    # a second demo into the same folder with other anonymizer settings is refused before any work (in this process;
    # a fresh process's one-line error: test_unknown_recipe_is_one_line)
    before = (out / "demo_config.json").read_text()
    code, _, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "demo", "--out", str(out), "--data-root",
                                  str(demo_data), "--w-lc", "5", "--train-epochs", "2", "--sweep", "4", "--device",
                                  "cpu", "--no-progress")
    assert code == 2 and "trained with other settings (w_lc)" in err, err
    # ... and so is one made from other data (another dataset style), before anything is generated
    code, _, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "demo", "--out", str(out), "--data-root",
                                  str(demo_data), "--style", "variant", "--train-epochs", "2", "--sweep", "4",
                                  "--device", "cpu", "--no-progress")
    assert code == 2 and "other data settings (style)" in err, err
    assert "Traceback" not in err and (out / "demo_config.json").read_text() == before


def test_unknown_recipe_is_one_line(tmp_path):
    done = run_cli("pipelines", "run", "nope", "--out", str(tmp_path))
    assert done.returncode == 2 and "unknown recipe" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_training_settings_are_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys):
    # in this process (the one-line error of a fresh process: test_unknown_recipe_is_one_line)
    for option, value, message in (("--batch-size", "0", "train_batch_size"), ("--lr", "-1", "train_lr"),
                                   ("--w-lc", "-2", "train_w_lc"), ("--budget-mode", "magic", "budget_mode must be one of"),
                                   ("--output-floor", "-1", "train_output_floor"), ("--device", "tpu", "device"),
                                   ("--lr-schedule", "step", "train_lr_schedule must be one of")):
        out = tmp_path / option.strip("-")
        code, _, err = run_in_process(monkeypatch, capsys, "pipelines", "run", "demo", "--out", str(out),
                                      option, value)
        assert code == 2 and message in err, (option, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_demo_config_refuses_bad_settings_with_one_line(tmp_path):
    cases = [({"sweep_budgets": [-1.0]}, "sweep budget"), ({"sweep_budgets": [3.0, 3.0]}, "must differ"),
             ({"budget_mode": "supervised-clips"}, "reads attribute labels"),
             ({"baselines": ["leace"]}, "baselines must be among"), ({"baselines": ["pca", "pca"]}, "once"),
             ({"style": "sepia"}, "style must be one of"), ({"train_batch_size": 1}, "train_batch_size")]
    for settings, message in cases:
        with pytest.raises(FeatstoreError, match=message) as error:
            DemoConfig(out=str(tmp_path / "out"), **settings)
        assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_the_output_centre_option_reaches_every_run_of_the_default_objective(tmp_path):
    config = DemoConfig(out=str(tmp_path / "out"), train_output_centre=True)
    for w_budget in (config.train_w_budget, *config.sweep_budgets):
        aam = config.anonymizer_config(w_budget).aam
        assert aam.output_centre and aam.output_floor == config.train_output_floor
    assert not DemoConfig(out=str(tmp_path / "out")).anonymizer_config(3.0).aam.output_centre


def test_the_lr_schedule_reaches_every_run_of_the_default_objective_and_not_the_papers(tmp_path):
    default = DemoConfig(out=str(tmp_path / "out"))
    assert [default.anonymizer_config(w).lr_schedule for w in default.budgets] == ["cosine"] * len(default.budgets)
    assert default.paper_config().lr_schedule == "constant"  # the reproduction path keeps the paper's constant rate
    constant = DemoConfig(out=str(tmp_path / "out"), train_lr_schedule="constant")
    assert [constant.anonymizer_config(w).lr_schedule for w in constant.budgets] == ["constant"] * len(constant.budgets)


def test_out_that_is_a_file_or_cannot_be_made_is_refused_before_any_work(tmp_path):
    from pipelines.demo import run_demo

    taken = tmp_path / "taken"
    taken.write_text("a file")
    with pytest.raises(FeatstoreError, match="is a file"):
        run_demo(DemoConfig(out=str(taken), data_root=str(tmp_path / "data")))
    with pytest.raises(FeatstoreError, match="cannot create --out"):
        run_demo(DemoConfig(out=str(taken / "demo"), data_root=str(tmp_path / "data")))
    assert taken.read_text() == "a file" and not (tmp_path / "data").exists()


def test_another_seed_gets_its_own_data_folder_so_the_presets_root_keeps_the_preset():
    # data/synth must hold the preset (the registry refuses it otherwise); seed N generates other data
    assert DemoConfig().data_root == "data/synth"
    assert DemoConfig(seed=2).data_root == "data/synth-seed2"
    assert DemoConfig(seed=1, style="variant").data_root == "data/synth-variant-seed1"
    assert DemoConfig(seed=3, data_root="/elsewhere").data_root == "/elsewhere"


def test_a_presets_folder_is_refused_for_other_data_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data/synth relative to here: nothing is generated either way
    for settings in ({"seed": 3, "data_root": "data/synth"}, {"style": "variant", "data_root": "data/synth"}):
        with pytest.raises(FeatstoreError, match="is the folder of the 'default' preset"):
            DemoConfig(**settings)
    assert not (tmp_path / "data").exists()
    assert DemoConfig(style="variant", data_root="data/synth-variant").data_root == "data/synth-variant"
