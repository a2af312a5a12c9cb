"""The demo recipe end to end on a tiny synthetic set (the full-size demo is `make demo`)."""

import json

from featstore.summary import verify_store
from tests.conftest import run_cli


def test_demo_recipe_builds_and_verifies_every_store(synth_root, tmp_path):
    done = run_cli("pipelines", "run", "demo", "--out", str(tmp_path / "runs"), "--data-root", str(synth_root),
                   "--no-progress")
    assert done.returncode == 0, done.stderr
    for name in ("raw", "tad", "ad", "images"):
        store = tmp_path / "runs" / f"{name}.zarr"
        assert verify_store(store) == [], name
    assert "synthetic-images" in done.stdout and "0 failed" in done.stdout
    config = json.loads((tmp_path / "runs" / "demo_config.json").read_text())
    assert config["data_root"] == str(synth_root)


def test_unknown_recipe_is_one_line(tmp_path):
    done = run_cli("pipelines", "run", "nope", "--out", str(tmp_path))
    assert done.returncode == 2 and "unknown recipe" in done.stderr
    assert "Traceback" not in done.stderr
