"""The demo recipe end to end on a tiny synthetic set (the full-size demo is `make demo`)."""

import json

from featstore.summary import verify_store
from tests.conftest import run_cli


def test_demo_recipe_runs_extract_train_export_and_report(synth_root, tmp_path):
    out = tmp_path / "runs"
    done = run_cli("pipelines", "run", "demo", "--out", str(out), "--data-root", str(synth_root),
                   "--train-epochs", "2", "--eval-epochs", "2", "--sweep", "4", "--device", "cpu", "--no-progress")
    assert done.returncode == 0, done.stderr
    for name in ("raw", "tad", "ad", "images"):
        assert verify_store(out / f"{name}.zarr") == [], name
        assert verify_store(out / "anon" / f"{name}.zarr") == [], f"anon {name}"
    assert "synthetic-images" in done.stdout and "0 failed" in done.stdout
    config = json.loads((out / "demo_config.json").read_text())
    assert config["data_root"] == str(synth_root) and config["model"] == "demo-c3d"
    assert (out / "aam" / "aam.safetensors").is_file() and (out / "sweep-wb4" / "aam.safetensors").is_file()
    # the demo's training settings (docs/anonymize.md: the paper's schedule barely moves a 140-video store)
    trained = json.loads((out / "sweep-wb4" / "config.json").read_text())
    assert (trained["batch_size"], trained["lr"], trained["lr_reference_batch"], trained["w_lc"], trained["w_budget"]) \
        == (32, 1e-3, 32, 10.0, 4.0)
    results = json.loads((out / "report" / "results.json").read_text())
    protocols = {pair["name"]: pair["protocols"] for pair in results["pairs"]}
    assert protocols["synthetic"] == ["ar", "retrieval", "privacy", "vp"]
    # the untrimmed parts' actors have attributes and static clips too: their leakage is measured as well
    assert protocols["synthetic-tad"] == ["privacy", "tad"] and protocols["synthetic-ad"] == ["privacy", "ad"]
    assert protocols["synthetic-images"] == ["privacy"]
    assert len(results["tradeoff"]["points"]) == 2 and "table" in results["attack"]
    assert "Table 1 form" in done.stdout and (out / "report" / "report.md").is_file()

    # a second demo into the same folder with other anonymizer settings is refused before any work
    before = (out / "demo_config.json").read_text()
    again = run_cli("pipelines", "run", "demo", "--out", str(out), "--data-root", str(synth_root), "--w-lc", "5",
                    "--train-epochs", "2", "--sweep", "4", "--device", "cpu", "--no-progress")
    assert again.returncode == 2 and "trained with other settings (w_lc)" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr and (out / "demo_config.json").read_text() == before


def test_unknown_recipe_is_one_line(tmp_path):
    done = run_cli("pipelines", "run", "nope", "--out", str(tmp_path))
    assert done.returncode == 2 and "unknown recipe" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_training_settings_are_one_line_before_anything_is_written(tmp_path):
    for option, value, message in (("--batch-size", "0", "train_batch_size"), ("--lr", "-1", "train_lr"),
                                   ("--w-lc", "-2", "train_w_lc"), ("--sweep", "-1", "sweep budget")):
        out = tmp_path / option.strip("-")
        done = run_cli("pipelines", "run", "demo", "--out", str(out), option, value)
        assert done.returncode == 2 and message in done.stderr, (option, done.stderr)
        assert "Traceback" not in done.stderr and not out.exists()
