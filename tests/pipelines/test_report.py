"""The report end to end on a tiny anonymizer run: suite selection, Table 1 cells, files, attack and trade-off."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anonymize.export import export_store
from anonymize.train import train
from evaluate.metrics import leakage_removed
from pipelines import report
from pipelines.report import ReportConfig, relative_change, suite_of, table1_cell
from data_manifests.errors import FeatstoreError
from featstore.store import Store
from tests.anonymize.conftest import small_config, structured_store
from tests.conftest import one_torch_thread, run_cli

EVALUATE = "pipelines.evaluate_cli"  # the module of the `evaluate` console script (run_cli runs `python -m`)

FAST = dict(ar_epochs=3, privacy_epochs=3, vp_epochs=3, attack_inverter_epochs=2, attack_whitebox_steps=5,
            vp_null_permutations=1, device="cpu")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    raw = structured_store(root / "raw.zarr")
    runs = []
    with one_torch_thread():
        for w_budget in (1.0, 4.0):
            out = root / f"run-b{w_budget:g}"
            train(small_config(raw, out, w_budget=w_budget, w_lc=1.0, epochs=2))
            runs.append(out)
        export_store(runs[0], raw, root / "anon.zarr", device="cpu")
    return root, raw, root / "anon.zarr", runs


def test_table1_cell_is_the_anonymized_value_with_its_relative_change():
    assert table1_cell(0.6366, 0.4107) == "41.07 (-35.5%)"
    assert table1_cell(0.5, 0.55) == "55.00 (+10.0%)"
    assert table1_cell(0.0, 0.2) == "20.00"  # no relative change against zero
    assert table1_cell(0.5, None) == "-"
    assert relative_change(0.8, 0.6) == pytest.approx(-0.25)


def test_suite_follows_what_the_store_holds(pair):
    _, raw, _, _ = pair
    assert suite_of(Store.open(raw)) == ["ar", "retrieval", "privacy", "vp"]


def test_report_writes_markdown_json_figures_and_every_protocol_result(pair, tmp_path):
    root, raw, anon, runs = pair
    config = ReportConfig(raw=[str(raw)], anon=[str(anon)], run=str(runs[0]), sweep=[str(r) for r in runs], **FAST)
    with one_torch_thread():
        result = report.run(config, tmp_path / "report")
    out = tmp_path / "report"
    saved = json.loads((out / "results.json").read_text())
    assert saved["table1"] == json.loads(json.dumps(result["table1"]))
    name = result["pairs"][0]["name"]
    for protocol in ("ar", "retrieval", "privacy", "vp"):
        for role in ("raw", "anon"):
            document = json.loads((out / name / f"{protocol}-{role}.json").read_text())
            assert document["protocol"] == f"{protocol}-{role}"
            assert document["metrics"] == saved["pairs"][0]["results"][protocol][role]
    # every Table 1 row is consistent with the protocol results it quotes
    rows = {row["metric"]: row for row in result["table1"]}
    ar_raw, ar_anon = (result["pairs"][0]["results"]["ar"][r]["top1"] for r in ("raw", "anon"))
    assert rows["action top-1"]["raw"] == ar_raw and rows["action top-1"]["anonymized"] == ar_anon
    assert rows["action top-1"]["cell"] == table1_cell(ar_raw, ar_anon)
    # the headline is the worst-case full-clip cMAP of the vp protocol, with the share of leakage removed
    assert result["table1"][0]["metric"] == "attribute cMAP, full clips, worst case"
    vp_results = result["pairs"][0]["results"]["vp"]
    clips = rows["attribute cMAP, full clips, worst case"]
    assert (clips["raw"], clips["anonymized"]) == (vp_results["raw"]["worst_case"]["cmap"],
                                                   vp_results["anon"]["worst_case"]["cmap"])
    assert clips["leakage_removed"] == pytest.approx(leakage_removed(clips["raw"], clips["anonymized"], clips["chance"]))
    # the anonymized store's null floor (one label shuffle here) and the share removed down to it; the raw store
    # is attacked once
    assert vp_results["anon"]["null_floor"]["permutations"] == 1 and vp_results["raw"]["null_floor"] is None
    assert clips["null_floor"] == vp_results["anon"]["null_floor"]["cmap"]
    assert clips["removed_above_floor"] == pytest.approx(
        leakage_removed(clips["raw"], clips["anonymized"], clips["null_floor"]), nan_ok=True)
    assert rows["attribute cMAP, static clips, worst case"]["null_floor"] is None
    static_worst = result["pairs"][0]["results"]["privacy"]["anon"]["worst_case"]["cmap"]
    assert rows["attribute cMAP, static clips, worst case"]["anonymized"] == static_worst
    assert rows["action top-1"]["leakage_removed"] is None
    assert {"attribute cMAP, static clips (authors' attacker, test-selected epoch)", "retrieval R@1"} <= set(rows)
    # static-clip and full-clip drops side by side, from the same rows, with the shortcut diagnostics
    (drop,) = result["static_vs_clips"]
    assert drop["static_drop"] == rows["attribute cMAP, static clips, worst case"]["raw"] - static_worst
    assert drop["clips_drop"] == clips["raw"] - clips["anonymized"]
    assert 0.0 <= drop["static_vs_clip_separability"] <= 1.0 and drop["move_static"] >= 0 and drop["move_clips"] >= 0
    # attack and trade-off sections
    assert set(result["attack"]["table"]) == {"raw", "anonymized", "blackbox", "whitebox", "chance"}
    assert len(result["tradeoff"]["points"]) == 2
    markdown = (out / "report.md").read_text()
    assert "## Table 1 form" in markdown and rows["action top-1"]["cell"] in markdown
    assert f"fell {drop['static_drop'] * 100:.2f} points on static clips" in markdown and "leakage removed" in markdown
    assert "Inversion attacks" in markdown and "Normalized hypervolume" in markdown
    for figure in result["figures"].values():
        path = out / figure
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(key.startswith("attributes-") for key in result["figures"]) and "tradeoff" in result["figures"]
    # the extra figures, each linked in report.md with its plotted values beside it; the two sweep runs differ
    # by w_B, not only by seed: no spread over seeds
    assert {"training-curves", "utility", f"projection-{name}"} <= set(result["figures"]) and result["seed_spread"] == []
    for key in ("training-curves", "utility", f"projection-{name}"):
        assert f"]({result['figures'][key]})" in markdown
    curves = json.loads((out / "training-curves.json").read_text())
    assert set(curves) == {r.name for r in runs}
    utility = json.loads((out / "utility.json").read_text())
    assert [(u["raw"], u["anonymized"]) for u in utility if u["metric"] == "action top-1"] == [(ar_raw, ar_anon)]


def test_mismatched_pair_is_refused_before_anything_is_written(pair, tmp_path):
    root, raw, anon, _ = pair
    other = structured_store(tmp_path / "other.zarr", n_videos=24, seed=3)
    with pytest.raises(FeatstoreError, match="does not hold the videos"):
        report.run(ReportConfig(raw=[str(other)], anon=[str(anon)], **FAST), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_errors_are_one_line(pair, tmp_path):
    _, raw, anon, _ = pair
    done = run_cli(EVALUATE, "report", "--raw", str(raw), "--raw", str(raw), "--anon", str(anon),
                   "--out", str(tmp_path / "r"))
    assert done.returncode == 2 and "pair up in order" in done.stderr and "Traceback" not in done.stderr
    done = run_cli(EVALUATE, "report", "--raw", str(raw), "--anon", str(tmp_path / "missing.zarr"),
                   "--out", str(tmp_path / "r"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


def test_cli_end_to_end_prints_the_table1_form(pair, tmp_path):
    _, raw, anon, _ = pair
    done = run_cli(EVALUATE, "report", "--raw", str(raw), "--anon", str(anon), "--out", str(tmp_path / "r"),
                   "--ar-epochs", "2", "--privacy-epochs", "2", "--vp-epochs", "2", "--vp-null-permutations", "1",
                   "--device", "cpu", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "Table 1 form" in done.stdout and "action top-1" in done.stdout and "null floor" in done.stdout
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert np.isfinite([row["raw"] for row in saved["table1"]]).all()


def test_out_that_is_a_file_or_unwritable_is_one_line(tmp_path):
    store = structured_store(tmp_path / "s.zarr", n_videos=12)
    taken = tmp_path / "taken"
    taken.write_text("mine")
    done = run_cli(EVALUATE, "report", "--raw", str(store), "--anon", str(store), "--out", str(taken))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {taken} is a file; --out names the report folder"]
    with pytest.raises(FeatstoreError, match="cannot create the report folder .*: Not a directory"):
        report.run(ReportConfig(raw=[str(store)], anon=[str(store)], **FAST), taken / "sub")
    assert taken.read_text() == "mine"


def test_protocol_settings_carry_the_ad_seeds_and_the_null_floor_of_anonymized_stores(pair):
    _, raw, anon, _ = pair
    config = ReportConfig(raw=[str(raw)], anon=[str(anon)], ad_seeds=2, vp_null_permutations=4)
    assert report.protocol_config("ad", config).seeds == 2
    assert report.protocol_config("vp", config, labels_from=str(raw), null_floor=True).null_permutations == 4
    assert report.protocol_config("vp", config).null_permutations == 0
    assert ReportConfig(raw=[str(raw)], anon=[str(anon)]).ad_seeds == 3  # the report's defaults
    with pytest.raises(FeatstoreError, match="ad_seeds must be >= 1"):
        ReportConfig(raw=[str(raw)], anon=[str(anon)], ad_seeds=0)
