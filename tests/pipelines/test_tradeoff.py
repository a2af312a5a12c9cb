"""The trade-off protocol end to end on tiny anonymizer runs: export and result caching, points, front,
hypervolume, plot, CLI forms and errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from anonymize import checkpoint as ckpt
from featstore.hashing import file_sha256
from anonymize.config import TrainConfig
from anonymize.train import train
from evaluate.results import save_result
from evaluate.metrics import normalized_hypervolume, pareto_front
from evaluate.protocols import ar, privacy, vp
from data_manifests.errors import FeatstoreError
from featstore.store import Store
from pipelines import tradeoff
from pipelines.tradeoff import ANON_STORE, TradeoffConfig, run
from tests.anonymize.conftest import small_config, structured_store
from tests.conftest import one_torch_thread, run_in_process

# The caching tests below use one attacker on static clips (the cheapest privacy coordinate); the default
# (worst case over every attacker on full clips) has its own test.
FAST = dict(ar_epochs=2, privacy_epochs=2, device="cpu", attacker="standard", privacy_kind="static")
BUDGETS = (0.0, 1.0, 5.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The array store and three seconds-long runs over w_B (never modified: tests work on copies)."""
    root = tmp_path_factory.mktemp("tradeoff")
    store = structured_store(root / "arrays.zarr")
    runs = []
    with one_torch_thread():
        for w_budget in BUDGETS:
            out = root / "trained" / f"sweep-b{w_budget:g}"
            train(small_config(store, out, w_budget=w_budget, w_lc=1.0, epochs=2))
            runs.append(out)
    return store, runs


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory):
    """A copy of the runs with the trade-off computed once (anon.zarr and eval/ caches filled)."""
    store, runs = trained
    root = tmp_path_factory.mktemp("evaluated")
    copies = [Path(shutil.copytree(r, root / r.name)) for r in runs]
    with one_torch_thread():
        metrics = run(copies, TradeoffConfig(raw_store=str(store), **FAST), out=root / "out")
    return copies, metrics, root / "out"


def copy_runs(runs: list[Path], folder: Path) -> list[Path]:
    return [Path(shutil.copytree(r, folder / r.name)) for r in runs]


class Calls:
    """Counts the exports and the inner protocol runs the trade-off makes (the real ones still run)."""

    def __init__(self, monkeypatch):
        self.counts = {"export": 0, "ar": 0, "privacy": 0}
        for name, module, attribute in (("export", tradeoff, "export_store"), ("ar", ar, "run"),
                                        ("privacy", privacy, "run")):
            monkeypatch.setattr(module, attribute, self._counting(name, getattr(module, attribute)))

    def _counting(self, name, function):
        def counted(*args, **kwargs):
            self.counts[name] += 1
            return function(*args, **kwargs)
        return counted


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] >= b[0] and a[1] >= b[1] and (a[0] > b[0] or a[1] > b[1])


def test_points_come_from_the_exported_stores_and_the_saved_protocol_results(trained, evaluated):
    store, _ = trained
    runs, metrics, out = evaluated
    assert [p["run"] for p in metrics["points"]] == [str(r) for r in runs]
    for point, run_folder, w_budget in zip(metrics["points"], runs, BUDGETS):
        anonymized = Store.open(run_folder / ANON_STORE)
        assert anonymized.provenance["anonymizer"]["aam_sha256"] == file_sha256(run_folder / ckpt.AAM_FILE)
        assert point["aam_sha256"] == anonymized.provenance["anonymizer"]["aam_sha256"]
        assert point["sources"] == {"store": "exported", "ar": "computed", "privacy": "computed"}
        assert (point["w_budget"], point["w_utility"], point["w_lc"]) == (w_budget, 1.0, 1.0)
        ar_document = json.loads((run_folder / "eval" / "ar.json").read_text())
        privacy_document = json.loads((run_folder / "eval" / "privacy.json").read_text())
        assert ar_document["config"]["epochs"] == 2 and privacy_document["config"]["attacker"] == "standard"
        assert point["utility"] == ar_document["metrics"]["top1"]
        assert point["privacy"] == privacy_document["metrics"]["attackers"]["standard"]["cmap"]
        # the saved results name the anonymizer that made the store they scored
        assert ar_document["store_provenance"]["anonymizer"]["aam_sha256"] == point["aam_sha256"]
        assert not (run_folder / (ANON_STORE + ".partial")).exists()
    # the raw point is the ar / privacy protocols on the raw store, run here independently
    independent = ar.run(Store.open(store), ar.ARConfig(epochs=2, device="cpu"))
    assert metrics["raw"]["utility"] == pytest.approx(independent["top1"], abs=1e-12)
    assert (out / "raw" / "privacy.json").is_file()
    assert metrics["chance"] == {"utility": pytest.approx(1 / 3), "privacy": metrics["raw"]["chance_privacy"]}


def test_front_and_hypervolume_agree_with_the_points(evaluated):
    _, metrics, _ = evaluated
    coordinates = [(p["utility"], 1.0 - p["privacy"]) for p in metrics["points"]]
    assert metrics["front"] == pareto_front(coordinates)
    assert metrics["hypervolume"] == pytest.approx(normalized_hypervolume(coordinates, (0.0, 0.0)), abs=1e-12)
    for index, point in enumerate(metrics["points"]):
        beaten = any(dominates(other, coordinates[index]) for other in coordinates)
        assert point["on_front"] == (not beaten) == (index in metrics["front"])
    raw = metrics["raw"]
    assert raw["hypervolume"] == pytest.approx(raw["utility"] * (1.0 - raw["privacy"]))  # one rectangle from (0, 0)
    assert metrics["reference"] == {"utility": 0.0, "privacy": 1.0}


def test_plot_is_a_png_next_to_the_result(evaluated):
    _, metrics, out = evaluated
    plot = Path(metrics["plot"])
    assert plot == out / "tradeoff.png"
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_second_call_reuses_stores_and_results(evaluated, tmp_path, monkeypatch):
    runs, first, _ = evaluated
    copies = copy_runs(runs, tmp_path)  # cached stores and results travel with the folders
    calls = Calls(monkeypatch)
    again = run(copies, TradeoffConfig(**FAST), out=tmp_path / "out")
    assert calls.counts == {"export": 0, "ar": 0, "privacy": 0}
    for point, before in zip(again["points"], first["points"]):
        assert point["sources"] == {"store": "reused", "ar": "cached", "privacy": "cached"}
        assert (point["utility"], point["privacy"]) == (before["utility"], before["privacy"])
    assert again["hypervolume"] == first["hypervolume"]
    # another attacker: the privacy results are recomputed (and replaced), the ar ones still reused
    authors = run(copies, TradeoffConfig(**{**FAST, "attacker": "authors"}), out=tmp_path / "out")
    assert calls.counts == {"export": 0, "ar": 0, "privacy": 3}
    assert all(p["sources"]["privacy"] == "computed" and p["sources"]["ar"] == "cached" for p in authors["points"])
    saved = json.loads((copies[0] / "eval" / "privacy.json").read_text())
    assert saved["config"]["attacker"] == "authors"
    assert authors["points"][0]["privacy"] == saved["metrics"]["attackers"]["authors"]["cmap"]


def test_a_privacy_result_of_both_attackers_serves_either(evaluated, tmp_path, monkeypatch):
    runs, _, _ = evaluated
    copies = copy_runs(runs[:1], tmp_path)
    anonymized = Store.open(copies[0] / ANON_STORE)
    raw_store = TrainConfig.load(copies[0] / ckpt.CONFIG_FILE).store  # the trade-off reads its private labels there
    both_config = privacy.PrivacyConfig(attacker="both", epochs=2, device="cpu", labels_from=str(raw_store))
    both = privacy.run(anonymized, both_config)
    save_result(copies[0] / "eval", "privacy", both_config, both, anonymized)
    calls = Calls(monkeypatch)
    metrics = run(copies, TradeoffConfig(**FAST))
    assert calls.counts["privacy"] == 0
    assert metrics["points"][0]["privacy"] == both["attackers"]["standard"]["cmap"]


def test_a_privacy_result_saved_before_its_group_gained_an_attacker_is_computed_again(evaluated, tmp_path,
                                                                                       monkeypatch):
    """A group's saved worst case over fewer attackers than the group has today (e.g. before the whitened
    attackers) is not served: it is recomputed."""
    runs, _, _ = evaluated
    copies = copy_runs(runs[:1], tmp_path)
    anonymized = Store.open(copies[0] / ANON_STORE)
    raw_store = TrainConfig.load(copies[0] / ckpt.CONFIG_FILE).store
    both_config = privacy.PrivacyConfig(attacker="both", epochs=2, device="cpu", labels_from=str(raw_store))
    both = privacy.run(anonymized, both_config)
    del both["attackers"]["authors"]  # as if "both" had been the standard attacker alone when it was saved
    save_result(copies[0] / "eval", "privacy", both_config, both, anonymized)
    calls = Calls(monkeypatch)
    metrics = run(copies, TradeoffConfig(**FAST))
    assert calls.counts["privacy"] == 1 and metrics["points"][0]["sources"]["privacy"] == "computed"


def test_a_retrained_run_is_exported_and_evaluated_again(trained, evaluated, tmp_path, monkeypatch):
    store, _ = trained
    runs, first, _ = evaluated
    copies = copy_runs(runs, tmp_path)
    # one more epoch on the second run: new weights, so its anon.zarr and results are stale
    with one_torch_thread():
        train(small_config(store, copies[1], w_budget=BUDGETS[1], w_lc=1.0, epochs=3), resume=True)
    calls = Calls(monkeypatch)
    metrics = run(copies, TradeoffConfig(**FAST))
    assert calls.counts == {"export": 1, "ar": 1, "privacy": 1}
    assert [p["sources"]["store"] for p in metrics["points"]] == ["reused", "exported", "reused"]
    new_sha = file_sha256(copies[1] / ckpt.AAM_FILE)
    assert new_sha != first["points"][1]["aam_sha256"] == Store.open(runs[1] / ANON_STORE).provenance["anonymizer"]["aam_sha256"]
    assert Store.open(copies[1] / ANON_STORE).provenance["anonymizer"]["aam_sha256"] == new_sha
    assert metrics["points"][1]["epoch"] == 3


def test_export_modes_and_what_is_never_overwritten(trained, evaluated, tmp_path, monkeypatch):
    store, _ = trained
    runs, _, _ = evaluated
    copies = copy_runs(runs[:1], tmp_path)
    calls = Calls(monkeypatch)
    run(copies, TradeoffConfig(export="always", **FAST))
    assert calls.counts["export"] == 1  # current, but re-exported as asked
    fresh = copy_runs([trained[1][0]], tmp_path / "fresh")  # never evaluated: no anon.zarr
    with pytest.raises(FeatstoreError, match="has no anon.zarr and export is 'never'"):
        run(fresh, TradeoffConfig(export="never", **FAST))
    # a store that this run did not export (here: the raw store itself) is the user's: an error, left alone
    shutil.copytree(store, fresh[0] / ANON_STORE)
    with pytest.raises(FeatstoreError, match="was not exported from"):
        run(fresh, TradeoffConfig(**FAST))
    assert "anonymizer" not in Store.open(fresh[0] / ANON_STORE).provenance
    shutil.rmtree(fresh[0] / ANON_STORE)
    (fresh[0] / ANON_STORE).write_text("not a store")
    with pytest.raises(FeatstoreError, match="in the way"):
        run(fresh, TradeoffConfig(**FAST))
    (fresh[0] / ANON_STORE).unlink()
    # what an interrupted export left (the staging of a process that is gone) is cleared
    finished = subprocess.Popen(["true"])
    finished.wait()
    leftover = fresh[0] / f"{ANON_STORE}.partial-{finished.pid}"
    leftover.mkdir()
    run(fresh, TradeoffConfig(**FAST))
    assert Store.open(fresh[0] / ANON_STORE).provenance["anonymizer"]["run"] == str(fresh[0].resolve())
    assert not leftover.exists()


def test_runs_on_other_data_than_the_raw_store_are_refused(evaluated, tmp_path):
    runs, _, _ = evaluated
    other = structured_store(tmp_path / "other.zarr", seed=1)
    with pytest.raises(FeatstoreError, match="holds other data"):
        run(copy_runs(runs[:1], tmp_path), TradeoffConfig(raw_store=str(other), **FAST))


def test_front_hypervolume_and_reference_from_planted_points(evaluated, tmp_path, monkeypatch):
    """The assembly alone: utility/privacy planted per run, so the front and NHV are known by hand."""
    runs, _, _ = evaluated
    copies = copy_runs(runs, tmp_path)
    planted = {copies[0].name: (0.8, 0.7), copies[1].name: (0.2, 0.1), copies[2].name: (0.5, 0.45)}

    def fake_evaluate(store, config, folder, show_progress, labels_from=None):
        utility, privacy_value = planted[folder.parent.name]
        return {"utility": utility, "privacy": privacy_value, "chance_utility": 1 / 3, "chance_privacy": 0.5,
                "store": str(store.path), "sources": {"ar": "planted", "privacy": "planted"}}

    monkeypatch.setattr(tradeoff, "evaluate_store", fake_evaluate)
    metrics = run(copies, TradeoffConfig(**FAST), out=tmp_path / "out")
    # q = 1 - cMAP: (0.8, 0.3), (0.2, 0.9), (0.5, 0.55); 0.8*0.3 + 0.5*(0.55-0.3) + 0.2*(0.9-0.55)
    assert metrics["hypervolume"] == pytest.approx(0.24 + 0.125 + 0.07)
    assert metrics["front"] == [1, 2, 0] and metrics["front_runs"] == [copies[1].name, copies[2].name, copies[0].name]
    # reference top-1 0.1, cMAP 0.8 (q 0.2): (0.7*0.1 + 0.4*0.25 + 0.1*0.35) / (0.9*0.8)
    shifted = run(copies, TradeoffConfig(reference_utility=0.1, reference_privacy=0.8, **FAST))
    assert shifted["hypervolume"] == pytest.approx((0.07 + 0.1 + 0.035) / 0.72)
    assert shifted["reference"] == {"utility": 0.1, "privacy": 0.8} and shifted["plot"] is None
    planted[copies[2].name] = (0.15, 0.2)  # now dominated by (0.2, 0.1)
    dominated = run(copies, TradeoffConfig(**FAST))
    assert dominated["front"] == [1, 0] and not dominated["points"][2]["on_front"]
    assert dominated["hypervolume"] == pytest.approx(0.8 * 0.3 + 0.2 * 0.6)
    xs, ys = tradeoff.front_outline(dominated["points"], dominated["front"], dominated["reference"])
    assert list(zip(xs, ys)) == [(0.0, 0.1), (0.2, 0.1), (0.2, 0.7), (0.8, 0.7), (0.8, 1.0)]


def test_cli_takes_a_shell_glob_or_a_repeated_option(trained, evaluated, tmp_path, monkeypatch, capsys):
    store, _ = trained
    runs, first, _ = evaluated
    copies = copy_runs(runs, tmp_path)
    options = ["--raw", str(store), "--ar-epochs", "2", "--privacy-epochs", "2", "--device", "cpu", "--no-progress"]
    # what the shell makes of `--runs sweep-*`: the first folder after --runs, the others as arguments
    glob_out = tmp_path / "glob"
    code, out, err = run_in_process(monkeypatch, capsys, "evaluate", "tradeoff", "--runs", *map(str, copies), *options,
                                    "--out", str(glob_out))
    assert code in (0, None), err
    document = json.loads((glob_out / "tradeoff.json").read_text())
    assert document["protocol"] == "tradeoff" and document["config"]["ar_epochs"] == 2
    assert set(document["store"]) == {*(str(c) for c in copies), "raw"}
    assert [p["run"] for p in document["metrics"]["points"]] == [str(c) for c in copies]
    assert [p["utility"] for p in document["metrics"]["points"]] == [p["utility"] for p in first["points"]]
    assert document["metrics"]["hypervolume"] == pytest.approx(first["hypervolume"])
    assert (glob_out / "tradeoff.png").is_file()
    assert all(name in out for name in ("sweep-b0", "sweep-b5", "raw", "normalized hypervolume", "tradeoff.json"))
    repeated_out = tmp_path / "repeated"
    code, _, err = run_in_process(monkeypatch, capsys, "evaluate", "tradeoff", "--runs", str(copies[2]),
                                  "--runs", str(copies[0]), *options, "--out", str(repeated_out))
    assert code in (0, None), err
    document = json.loads((repeated_out / "tradeoff.json").read_text())
    assert [p["name"] for p in document["metrics"]["points"]] == ["sweep-b5", "sweep-b0"]


def test_cli_bad_inputs_get_one_line_and_exit_code_2(trained, evaluated, tmp_path, monkeypatch, capsys):
    runs, _, _ = evaluated
    not_a_run = tmp_path / "empty-run"
    not_a_run.mkdir()
    out = ["--out", str(tmp_path / "out"), "--ar-epochs", "1", "--privacy-epochs", "1"]
    cases = [
        ([], "no run folders"),
        (["--runs", str(tmp_path / "missing")], "no run folder at"),
        (["--runs", str(not_a_run)], "has no trained anonymizer"),
        (["--runs", str(runs[0]), str(runs[0])], "given twice"),
        (["--runs", str(runs[0]), "--export", "sometimes"], "export must be one of"),
        (["--runs", str(runs[0]), "--attacker", "strongest"], "attacker must be one of"),
        (["--runs", str(runs[0]), "--privacy-kind", "frames"], "privacy_kind must be one of"),
        (["--runs", str(runs[0]), "--reference-privacy", "0"], "reference_privacy"),
        (["--runs", str(runs[0]), "--raw", str(tmp_path / "none.zarr")], "no store at"),
    ]
    for args, message in cases:
        code, _, err = run_in_process(monkeypatch, capsys, "evaluate", "tradeoff", *args, *out)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "out").exists()  # nothing written


def test_config_defaults_are_the_official_presets():
    config = TradeoffConfig()
    # the privacy coordinate is the worst case over every attacker on full clips (the vp protocol)
    assert (config.ar_epochs, config.privacy_epochs, config.attacker, config.privacy_kind) == (250, 100, "all", "clips")
    assert config.privacy_protocol == "vp" and config.privacy_config() == vp.VPConfig(epochs=100, device="auto")
    assert TradeoffConfig(privacy_kind="static").privacy_protocol == "privacy"
    assert config.ar_config() == ar.ARConfig(epochs=250, device="auto")
    # the reference: the worst corner, (0, 0) in the hypervolume's (top-1, q = 1 - cMAP) coordinates
    assert (config.reference_utility, config.reference_privacy) == (0.0, 1.0)
    assert tradeoff.objectives({"utility": config.reference_utility, "privacy": config.reference_privacy}) == (0.0, 0.0)
    assert np.isclose(tradeoff.objectives({"utility": 0.1, "privacy": 0.75})[1], 0.25)


def test_the_privacy_axis_names_the_group_whose_worst_case_it_is():
    assert tradeoff.privacy_metric_name("all", "clips") == "worst-case full-clip cMAP"
    assert tradeoff.privacy_metric_name("thorough", "clips") == "worst-case (thorough) full-clip cMAP"
    assert tradeoff.privacy_metric_name("both", "static") == "worst-case (both) static-clip cMAP"
    assert tradeoff.privacy_metric_name("svm-whitened", "clips") == "svm-whitened full-clip cMAP"


def test_the_default_privacy_coordinate_is_the_worst_case_full_clip_cmap_and_each_method_has_its_front(
        trained, tmp_path):
    from anonymize.baselines import BaselineConfig, fit_baseline

    store, runs = trained
    baseline = tmp_path / "baseline-pca"
    fit_baseline(BaselineConfig(method="pca", store=str(store), out=str(baseline), components=4))
    copies = copy_runs(runs[:2], tmp_path)
    with one_torch_thread():
        metrics = run([*copies, baseline], TradeoffConfig(ar_epochs=2, privacy_epochs=2, device="cpu"))
    assert metrics["privacy_metric"] == "worst-case full-clip cMAP"
    for point in metrics["points"]:
        saved = json.loads((Path(point["run"]) / "eval" / "vp.json").read_text())
        assert saved["config"]["attacker"] == "all"
        assert point["privacy"] == saved["metrics"]["worst_case"]["cmap"]
        assert point["privacy"] == max(saved["metrics"]["worst_case"]["per_attribute"].values()) or \
            point["privacy"] == pytest.approx(np.mean(list(saved["metrics"]["worst_case"]["per_attribute"].values())))
    labels = [(p["kind"], p["method"], p["supervised"]) for p in metrics["points"]]
    assert labels == [("aam", "aam direct", False)] * 2 + [("baseline", "pca", False)]
    methods = metrics["methods"]
    assert set(methods) == {"aam direct", "pca"} and methods["pca"]["runs"] == ["baseline-pca"]
    for method, front in methods.items():
        members = [p for p in metrics["points"] if p["method"] == method]
        coordinates = [(p["utility"], 1.0 - p["privacy"]) for p in members]
        assert front["hypervolume"] == pytest.approx(normalized_hypervolume(coordinates, (0.0, 0.0)))
