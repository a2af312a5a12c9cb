import json

from data_manifests.schema import Manifest
from tests.conftest import run_cli

SMALL = {"train_per_class": 1, "test_per_class": 1, "tad_train_videos": 2, "tad_test_videos": 2,
         "ad_train_videos": 2, "ad_test_videos": 2, "image_train": 4, "image_test": 2}


def test_synth_command_with_a_size_config(tmp_path):
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    done = run_cli("featstore", "synth", "--out", str(tmp_path / "data"), "--config", str(config), "--seed", "4")
    assert done.returncode == 0, done.stderr
    manifest = Manifest.load(tmp_path / "data" / "manifests" / "synthetic.jsonl")
    manifest.check_files()
    assert len(manifest.records) == 20  # 10 classes x (1 train + 1 test)
    assert json.loads((tmp_path / "data" / "synth_config.json").read_text())["seed"] == 4


def test_synth_config_errors_are_one_line(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"bogus": 1}))
    done = run_cli("featstore", "synth", "--out", str(tmp_path / "data"), "--config", str(tmp_path / "bad.json"))
    assert done.returncode == 2 and "unknown synthetic config fields ['bogus']" in done.stderr
    (tmp_path / "neg.json").write_text(json.dumps({"train_per_class": -1}))
    done = run_cli("featstore", "synth", "--out", str(tmp_path / "data"), "--config", str(tmp_path / "neg.json"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "manifests").exists()
