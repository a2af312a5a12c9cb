import json

import pytest

from data_manifests.schema import Manifest
from tests.conftest import run_cli, run_in_process

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


def test_synth_command_with_the_variant_style(tmp_path):
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    done = run_cli("featstore", "synth", "--out", str(tmp_path / "v"), "--config", str(config), "--style", "variant")
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "v" / "synth_config.json").read_text())
    assert saved["seed"] == 7 and saved["style"]["name"] == "variant"  # the preset's own seed
    manifest = Manifest.load(tmp_path / "v" / "manifests" / "synthetic-tad.jsonl")
    assert manifest.header.name == "synthetic-variant-tad" and "style variant" in manifest.header.description
    # an explicit seed wins; a style given in the config file works like --style
    config.write_text(json.dumps({**SMALL, "style": "variant"}))
    done = run_cli("featstore", "synth", "--out", str(tmp_path / "w"), "--config", str(config), "--seed", "3")
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "w" / "synth_config.json").read_text())
    assert saved["seed"] == 3 and saved["style"]["name"] == "variant"


def test_synth_style_errors_are_one_line(tmp_path):
    done = run_cli("featstore", "synth", "--out", str(tmp_path / "data"), "--style", "nope")
    assert done.returncode == 2 and "unknown synthetic style 'nope' (known: default, variant, dev)" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "bad.json").write_text(json.dumps({"style": {"name": "mine", "actor_frac": 2}}))
    done = run_cli("featstore", "synth", "--out", str(tmp_path / "data"), "--config", str(tmp_path / "bad.json"))
    assert done.returncode == 2 and "SynthStyle.actor_frac must lie in" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "manifests").exists()


@pytest.mark.parametrize("args, preset, differing", [
    (["--out", "data/synth", "--seed", "3"], "default", "seed"),
    (["--out", "data/synth", "--style", "variant"], "default", "seed, style"),
    (["--out", "./data/synth-variant/", "--style", "variant", "--config", "small.json"], "variant", "ad_test_videos"),
    (["--out", "data/synth-dev"], "dev", "seed"),  # the default style's data in dev's folder
])
def test_synth_refuses_other_data_in_a_presets_default_folder(monkeypatch, capsys, tmp_path, args, preset, differing):
    # the registry reads only its preset there: these data would be refused on the next --dataset synthetic*
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.json").write_text(json.dumps(SMALL))
    code, _, err = run_in_process(monkeypatch, capsys, "featstore", "synth", *args)
    message = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert f"is the folder of the {preset!r} preset" in message and f"differ from it ({differing}" in message
    assert "pass another --out" in message
    assert not (tmp_path / "data").exists()  # refused before anything is written


def test_synth_writes_other_data_anywhere_else(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.json").write_text(json.dumps(SMALL))
    code, _, err = run_in_process(monkeypatch, capsys, "featstore", "synth", "--out", "data/synth-custom", "--config",
                                  "small.json", "--seed", "3")
    assert code == 0, err
    assert json.loads((tmp_path / "data" / "synth-custom" / "synth_config.json").read_text())["seed"] == 3
