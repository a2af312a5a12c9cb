"""Latent baselines (``anonymize baseline``): each method's definition on known data, run folders that
``anonymize export`` / ``info`` and ``evaluate attack`` / ``tradeoff`` / ``report`` accept, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from anonymize.array_store import write_array_store
from anonymize.baselines import METHODS, BaselineConfig, describe_run, fit_baseline, row_noise
from anonymize.export import export_store, load_trained_aam
from data_manifests.errors import FeatstoreError
from featstore.store import Store
from featstore.summary import verify_store
from tests.conftest import one_torch_thread, run_in_process

DIM = 16
OPTIONS = {"lda-action": [], "pca": ["--components", "6"], "gaussian-noise": ["--noise-fraction", "0.5"],
           "random-projection": ["--components", "5"], "static-cca": ["--components", "2"], "leace": [],
           "inlp": ["--iterations", "2"]}


def planted_store(out: Path, n_videos: int = 240, seed: int = 0, attributes: bool = True, classes: int = 3) -> Path:
    """Clips = action direction + planted linear attributes + noise; static clips = attributes + noise.

    Odd videos train, even videos test. Attribute ``q`` is unknown (-1) for every fifth video.
    """
    rng = np.random.default_rng(seed)
    class_dirs = 2.0 * rng.normal(size=(classes, DIM))
    attribute_dirs = 1.5 * rng.normal(size=(2, DIM))
    labels = np.arange(n_videos) % classes
    values = rng.integers(0, 2, size=(n_videos, 2))
    clips, static = [], []
    for v in range(n_videos):
        appearance = values[v] @ attribute_dirs
        clips.append(class_dirs[labels[v]] + appearance + 0.5 * rng.normal(size=(2 + v % 3, DIM)))
        static.append(appearance + 0.5 * rng.normal(size=(3, DIM)))
    recorded = values.copy()
    recorded[::5, 1] = -1
    splits = ["train" if v % 2 else "test" for v in range(n_videos)]
    names = ["p", "q"] if attributes else []
    table = recorded if attributes else np.zeros((n_videos, 0), dtype=np.int64)
    return write_array_store(out, clips, static, splits, labels.tolist(), table,
                             [f"c{i}" for i in range(classes)], names)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return planted_store(tmp_path_factory.mktemp("baselines") / "raw.zarr")


def fit(store: Path, out: Path, method: str, **options) -> Path:
    fit_baseline(BaselineConfig(method=method, store=str(store), out=str(out), **options))
    return out


def rows_of(store: Store, split: str, kind: str = "clips") -> tuple[np.ndarray, np.ndarray]:
    """(rows float32, owner video) of a split."""
    offsets = store.clip_offsets() if kind == "clips" else store.static_offsets()
    videos = store.split_indices(split)
    owner = np.concatenate([np.full(offsets[v + 1] - offsets[v], v) for v in videos])
    rows = np.concatenate([np.arange(offsets[v], offsets[v + 1]) for v in videos])
    return store.load_embeddings(kind)[rows], owner


def assert_export_erases_attributes_and_keeps_actions(run: Path, store: Path, tmp_path: Path, margin: float) -> None:
    """Through the export of ``run``: a logistic attacker's test AP of each planted attribute within ``margin`` of
    its positive rate (above 0.9 on the raw rows), and the action accuracy within 5 points of raw."""
    source = Store.open(store)
    attributes, labels = source.videos().attributes, source.videos().label
    train, owner = rows_of(source, "train")
    test, test_owner = rows_of(source, "test")
    anon = tmp_path / "anon.zarr"
    export_store(run, store, anon, device="cpu")
    exported = Store.open(anon)
    anon_train, _ = rows_of(exported, "train")
    anon_test, _ = rows_of(exported, "test")
    for a in range(attributes.shape[1]):
        z, test_z = attributes[owner, a], attributes[test_owner, a]
        rate = float((test_z[test_z >= 0] > 0).mean())
        assert _attribute_ap(train, z, test, test_z) > 0.9
        assert _attribute_ap(anon_train, z, anon_test, test_z) < rate + margin
    before = LogisticRegression(max_iter=2000).fit(train, labels[owner]).score(test, labels[test_owner])
    after = LogisticRegression(max_iter=2000).fit(anon_train, labels[owner]).score(anon_test, labels[test_owner])
    assert before > 0.9 and after >= before - 0.05


# ---------------------------------------------------------------------------------------------- every method
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_fits_exports_and_shows_through_the_cli(store, method, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, out, err = run_in_process(monkeypatch, capsys, "anonymize", "baseline", "--method", method,
                                    "--store", str(store), "--out", str(run), *OPTIONS[method])
    assert code == 0, err
    assert "sha256" in out
    record = json.loads((run / "baseline.json").read_text())
    supervised = method in ("leace", "inlp")
    assert record["method"] == method and record["supervised"] is supervised
    assert record["fitted"]["dim"] == DIM and 1 <= record["fitted"]["dims"] <= DIM

    code, out, err = run_in_process(monkeypatch, capsys, "anonymize", "info", "--run", str(run), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "baseline" and summary["method"] == method and summary["supervised"] is supervised
    assert summary["overview"]["aam sha256"] == record["sha256"]
    code, out, err = run_in_process(monkeypatch, capsys, "anonymize", "info", "--run", str(run))
    assert code == 0 and method in out and "supervised" in out

    anon = tmp_path / "anon.zarr"
    code, out, err = run_in_process(monkeypatch, capsys, "anonymize", "export", "--run", str(run),
                                    "--store", str(store), "--out", str(anon), "--device", "cpu", "--batch-rows", "7")
    assert code == 0, err
    assert verify_store(anon) == []
    source, exported = Store.open(store), Store.open(anon)
    for kind in ("clips", "static"):
        raw, got = source.group[f"{kind}/embeddings"][...], exported.group[f"{kind}/embeddings"][...]
        assert got.shape == raw.shape and got.dtype == raw.dtype
        raw_rows = {row.tobytes() for row in raw}
        assert not any(row.tobytes() in raw_rows for row in got)
    provenance = exported.provenance["anonymizer"]
    assert provenance["aam_sha256"] == record["sha256"] and provenance["supervised"] is supervised
    assert provenance["baseline"]["method"] == method and provenance["baseline"]["sha256"] == record["sha256"]
    assert provenance["baseline"]["supervised"] is supervised

    aam = load_trained_aam(run, "cpu")
    assert aam.kind == "baseline" and aam.supervised is supervised and aam.sha256 == record["sha256"]
    assert aam.label == (f"{method} (supervised)" if supervised else method)
    assert aam.config.store == str(store) and aam.config.aam.context_window == 0
    assert describe_run(run) == {"kind": "baseline", "method": method, "label": aam.label, "supervised": supervised}
    # The transform's output is what was exported (float16 storage).
    raw = torch.from_numpy(source.load_embeddings("clips"))
    np.testing.assert_allclose(exported.load_embeddings("clips"), aam.module(raw).numpy(), rtol=2e-3, atol=2e-3)


# ---------------------------------------------------------------------------------------------- definitions
def test_lda_action_output_lies_in_a_classes_minus_one_dim_affine_subspace(store, tmp_path):
    run = fit(store, tmp_path / "run", "lda-action")
    module = load_trained_aam(run, "cpu").module
    source = Store.open(store)
    train, _ = rows_of(source, "train")
    out = module(torch.from_numpy(train)).double().numpy()
    singular = np.linalg.svd(out - out.mean(0), compute_uv=False)
    assert (singular[:2] > 1.0).all() and (singular[2:] < 1e-4 * singular[0]).all()  # 3 classes -> 2 dims
    again = module(torch.from_numpy(out.astype(np.float32))).double().numpy()
    np.testing.assert_allclose(again, out, atol=1e-4)  # a projection
    assert json.loads((run / "baseline.json").read_text())["fitted"]["dims"] == 2
    # The discriminant subspace keeps the action: a linear probe on the output is as good as on the input.
    test, test_owner = rows_of(source, "test")
    _, owner = rows_of(source, "train")
    labels = source.videos().label
    before = LogisticRegression(max_iter=2000).fit(train, labels[owner]).score(test, labels[test_owner])
    after_rows = module(torch.from_numpy(test)).numpy()
    after = LogisticRegression(max_iter=2000).fit(out, labels[owner]).score(after_rows, labels[test_owner])
    assert after >= before - 0.03


def test_pca_with_every_component_is_the_identity_and_fewer_project(store, tmp_path):
    source = Store.open(store)
    rows = torch.from_numpy(source.load_embeddings("clips"))
    full = load_trained_aam(fit(store, tmp_path / "full", "pca", components=DIM), "cpu").module
    torch.testing.assert_close(full(rows), rows, rtol=0, atol=1e-5)
    k = 4
    part = load_trained_aam(fit(store, tmp_path / "part", "pca", components=k), "cpu").module
    out = part(rows).double().numpy()
    singular = np.linalg.svd(out - part.center.double().numpy(), compute_uv=False)
    assert (singular[k:] < 1e-4 * singular[0]).all()


def test_random_projection_is_a_seeded_orthogonal_projector_of_rank_k(store, tmp_path):
    first = load_trained_aam(fit(store, tmp_path / "a", "random-projection", components=5, seed=3), "cpu")
    same = load_trained_aam(fit(store, tmp_path / "b", "random-projection", components=5, seed=3), "cpu")
    other = load_trained_aam(fit(store, tmp_path / "c", "random-projection", components=5, seed=4), "cpu")
    assert first.sha256 == same.sha256 != other.sha256
    projector = (first.module.delta.double() + torch.eye(DIM, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(projector, projector.T, atol=1e-6)
    np.testing.assert_allclose(projector @ projector, projector, atol=1e-6)
    assert round(float(np.trace(projector))) == 5


def test_gaussian_noise_depends_on_the_row_alone_and_exports_reproducibly(store, tmp_path):
    run = fit(store, tmp_path / "run", "gaussian-noise", noise_fraction=0.5, seed=7)
    module = load_trained_aam(run, "cpu").module
    source = Store.open(store)
    rows = torch.from_numpy(source.load_embeddings("clips"))
    whole = module(rows)
    torch.testing.assert_close(module(rows[5:9]), whole[5:9], rtol=0, atol=0)  # batch-independent
    torch.testing.assert_close(module(rows.flip(0)), whole.flip(0), rtol=0, atol=0)  # order-independent
    train, _ = rows_of(source, "train")
    scale = 0.5 * train.astype(np.float64).std(0)
    noise = (whole - rows).double().numpy() / scale
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1) < 0.05
    assert np.corrcoef(noise[:, 0], noise[:, 1])[0, 1] < 0.1
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    export_store(run, store, a, device="cpu", batch_rows=5)
    export_store(run, store, b, device="cpu", batch_rows=4096)
    for kind in ("clips", "static"):
        np.testing.assert_array_equal(Store.open(a).group[f"{kind}/embeddings"][...],
                                      Store.open(b).group[f"{kind}/embeddings"][...])
    other = row_noise(rows.numpy(), seed=8)
    assert not np.allclose(other, row_noise(rows.numpy(), seed=7))


def _attribute_ap(train_x, train_z, test_x, test_z) -> float:
    known, test_known = train_z >= 0, test_z >= 0
    classifier = LogisticRegression(max_iter=2000).fit(train_x[known], train_z[known])
    return float(average_precision_score(test_z[test_known], classifier.decision_function(test_x[test_known])))


def test_leace_is_a_projection_that_removes_linear_attribute_information(store, tmp_path):
    run = fit(store, tmp_path / "run", "leace")
    module = load_trained_aam(run, "cpu").module
    source = Store.open(store)
    attributes = source.videos().attributes
    train, owner = rows_of(source, "train")
    out = module(torch.from_numpy(train))
    torch.testing.assert_close(module(out), out, rtol=0, atol=1e-4)  # idempotent
    out = out.double().numpy()
    for a in range(attributes.shape[1]):
        z = attributes[owner, a].astype(np.float64)
        known = z >= 0
        x, target = out[known], z[known]
        cross = (x - x.mean(0)).T @ (target - target.mean()) / len(target)
        assert np.abs(cross).max() < 1e-4  # the cross-covariance is zero
        # Least squares on the output: no better than a constant. The erased directions hold float32
        # rounding residue only (~1e-7 of the scale); the regression treats them as the zero variance they
        # are in exact arithmetic (rcond), instead of fitting the target to rounding noise.
        design = np.column_stack([x, np.ones(len(x))])
        fitted = design @ np.linalg.lstsq(design, target, rcond=1e-5)[0]
        constant = ((target - target.mean()) ** 2).mean()
        assert ((target - fitted) ** 2).mean() >= constant * (1 - 1e-6)
        before = train[known].astype(np.float64)
        design = np.column_stack([before, np.ones(len(before))])
        fitted = design @ np.linalg.lstsq(design, target, rcond=None)[0]
        assert ((target - fitted) ** 2).mean() < 0.5 * constant  # the raw rows do predict it

    # Through the export: a logistic attacker on the test split is near chance, the action stays.
    assert_export_erases_attributes_and_keeps_actions(run, store, tmp_path, margin=0.12)


def test_static_cca_erases_what_the_static_clip_predicts_without_attribute_labels(store, tmp_path):
    # the planted store's static clips show the two attributes (appearance) and no action: the two clip
    # directions most correlated with the static clips are the attribute directions
    run = fit(store, tmp_path / "run", "static-cca", components=2)
    record = json.loads((run / "baseline.json").read_text())
    assert record["supervised"] is False and record["fitted"]["erased_dims"] == 2
    correlations = record["fitted"]["canonical_correlations"]
    assert len(correlations) == 2 and min(correlations) > 0.5
    assert_export_erases_attributes_and_keeps_actions(run, store, tmp_path, margin=0.15)


def test_static_cca_needs_static_clips_and_its_components(tmp_path):
    rng = np.random.default_rng(0)
    no_static = write_array_store(tmp_path / "clips-only.zarr", [rng.normal(size=(2, DIM)) for _ in range(6)],
                                  [np.zeros((0, DIM)) for _ in range(6)], ["train", "test"] * 3, [0, 1, 0, 1, 0, 1],
                                  np.zeros((6, 0), dtype=np.int64), ["a", "b"], [])
    with pytest.raises(FeatstoreError, match="no static clips"):
        fit(no_static, tmp_path / "run", "static-cca", components=2)
    with pytest.raises(FeatstoreError, match="needs --components"):
        BaselineConfig(method="static-cca", store="s", out="o")


def test_leace_fitted_on_clips_and_static_clips_also_clears_the_static_rows(store, tmp_path):
    run = fit(store, tmp_path / "run", "leace", fit_rows="clips+static")
    module = load_trained_aam(run, "cpu").module
    source = Store.open(store)
    attributes = source.videos().attributes
    for kind in ("clips", "static"):
        rows, owner = rows_of(source, "train", kind)
        z = attributes[owner, 0].astype(np.float64)
        assert np.abs(np.cov(rows.T, z)[-1, :-1]).max() > 0.1
    rows = np.concatenate([rows_of(source, "train", kind)[0] for kind in ("clips", "static")])
    owner = np.concatenate([rows_of(source, "train", kind)[1] for kind in ("clips", "static")])
    out = module(torch.from_numpy(rows)).double().numpy()
    z = attributes[owner, 0].astype(np.float64)
    cross = (out - out.mean(0)).T @ (z - z.mean()) / len(z)
    assert np.abs(cross).max() < 1e-4
    assert json.loads((run / "baseline.json").read_text())["fitted"]["fit_rows"] == "clips+static"


def test_inlp_removes_the_attribute_directions_it_finds(store, tmp_path):
    run = fit(store, tmp_path / "run", "inlp", iterations=2)
    aam = load_trained_aam(run, "cpu")
    fitted = json.loads((run / "baseline.json").read_text())["fitted"]
    assert fitted["removed_dims"] == 4 and fitted["dims"] == DIM - 4  # 2 attributes x 2 iterations
    projector = (aam.module.delta.double() + torch.eye(DIM, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(projector @ projector, projector, atol=1e-6)
    assert min(fitted["train_accuracy"][0]) > 0.9  # the first classifiers find the planted attributes
    source = Store.open(store)
    attributes = source.videos().attributes
    train, owner = rows_of(source, "train")
    test, test_owner = rows_of(source, "test")
    project = lambda rows: aam.module(torch.from_numpy(rows)).numpy()  # noqa: E731
    for a in range(attributes.shape[1]):
        z, test_z = attributes[owner, a], attributes[test_owner, a]
        rate = float((test_z[test_z >= 0] > 0).mean())
        assert _attribute_ap(project(train), z, project(test), test_z) < rate + 0.15


# ---------------------------------------------------------------------------------------------- errors
def test_bad_inputs_are_one_line_errors_with_exit_code_2(store, tmp_path, monkeypatch, capsys):
    no_attributes = planted_store(tmp_path / "plain.zarr", n_videos=24, attributes=False)
    one_class = planted_store(tmp_path / "one.zarr", n_videos=24, classes=1)
    existing = fit(store, tmp_path / "existing", "pca", components=3)
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "config.json").write_text("{}")
    base = ["--store", str(store), "--out", str(tmp_path / "new")]
    cases = [
        ("baseline", "--method", "magic", *base),
        ("baseline", "--method", "pca", *base),  # no --components
        ("baseline", "--method", "pca", "--components", "0", *base),
        ("baseline", "--method", "pca", "--components", str(DIM + 1), *base),
        ("baseline", "--method", "random-projection", "--components", "99", *base),
        ("baseline", "--method", "gaussian-noise", "--noise-fraction", "-1", *base),
        ("baseline", "--method", "leace", "--components", "3", *base),  # an option of another method
        ("baseline", "--method", "inlp", "--fit-rows", "static", *base),
        ("baseline", "--method", "pca", "--components", "3", "--fit-rows", "clips+static", *base),
        ("baseline", "--method", "leace", "--store", str(no_attributes), "--out", str(tmp_path / "n1")),
        ("baseline", "--method", "inlp", "--store", str(no_attributes), "--out", str(tmp_path / "n2")),
        ("baseline", "--method", "lda-action", "--store", str(one_class), "--out", str(tmp_path / "n3")),
        ("baseline", "--method", "pca", "--components", "3", "--store", str(tmp_path / "missing.zarr"),
         "--out", str(tmp_path / "n4")),
        ("baseline", "--method", "pca", "--components", "3", "--store", str(store), "--out", str(existing)),
        ("baseline", "--method", "pca", "--components", "3", "--store", str(store), "--out", str(trained),
         "--overwrite"),
        ("train", "--out", str(existing), "--resume", "--device", "cpu", "--no-progress"),
    ]
    for args in cases:
        code, _, err = run_in_process(monkeypatch, capsys, "anonymize", *args)
        assert code == 2, (args, err)
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, (args, err)
        assert err.startswith("error:"), err
    assert not (tmp_path / "new").exists() and not (tmp_path / "n1").exists()

    before = json.loads((existing / "baseline.json").read_text())["sha256"]
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "baseline", "--method", "pca", "--components", "5",
                                  "--store", str(store), "--out", str(existing), "--overwrite")
    assert code == 0, err
    assert json.loads((existing / "baseline.json").read_text())["sha256"] != before

    # A transform that does not match its record is refused.
    (existing / "aam.safetensors").write_bytes((existing / "aam.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    code, _, err = run_in_process(monkeypatch, capsys, "anonymize", "export", "--run", str(existing),
                                  "--store", str(store), "--out", str(tmp_path / "x.zarr"))
    assert code == 2 and "does not match" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(FeatstoreError, match="already anonymized"):
        anon = tmp_path / "anon.zarr"
        export_store(fit(store, tmp_path / "ok", "pca", components=3), store, anon, device="cpu")
        fit(anon, tmp_path / "again", "pca", components=3)


# ---------------------------------------------------------------------------------------------- evaluate
def test_evaluate_attack_tradeoff_and_report_accept_baseline_runs(store, tmp_path):
    from pipelines import attack, report, tradeoff

    runs = [fit(store, tmp_path / "leace", "leace"), fit(store, tmp_path / "noise", "gaussian-noise")]
    anon = tmp_path / "anon.zarr"
    export_store(runs[0], store, anon, device="cpu")
    with one_torch_thread():
        metrics = attack.run(Store.open(store), Store.open(anon), runs[0],
                             attack.AttackConfig(inverter_epochs=3, whitebox_steps=20, action_epochs=5,
                                                 attribute_epochs=3, device="cpu"))
        assert metrics["anonymizer"]["architecture"] == "baseline leace (supervised)"
        assert metrics["anonymizer"]["aam_sha256"] == load_trained_aam(runs[0], "cpu").sha256
        assert 0 <= metrics["table"]["anonymized"]["action_top1"] <= 1
        # The noise baseline's white-box attacker sees identity + noise: its preimage stays finite.
        noise_anon = tmp_path / "noise.zarr"
        export_store(runs[1], store, noise_anon, device="cpu")
        noisy = attack.run(Store.open(store), Store.open(noise_anon), runs[1],
                           attack.AttackConfig(inverter_epochs=2, whitebox_steps=5, action_epochs=3,
                                               attribute_epochs=2, device="cpu"))
        assert np.isfinite(noisy["inversion_quality"]["whitebox"]["clips"]["mse"])

        points = tradeoff.run(runs, tradeoff.TradeoffConfig(ar_epochs=2, privacy_epochs=2, device="cpu"))["points"]
        assert [p["aam_sha256"] for p in points] == [load_trained_aam(r, "cpu").sha256 for r in runs]
        assert Store.open(runs[0] / "anon.zarr").provenance["anonymizer"]["baseline"]["method"] == "leace"

        config = report.ReportConfig(raw=[str(store)], anon=[str(anon)], run=str(runs[0]), sweep=[str(runs[0])],
                                     ar_epochs=2, privacy_epochs=2, vp_epochs=2, attack_inverter_epochs=2,
                                     attack_whitebox_steps=3, device="cpu")
        result = report.run(config, tmp_path / "report")
    assert result["attack"]["anonymizer"]["architecture"] == "baseline leace (supervised)"
    assert (tmp_path / "report" / "report.md").is_file()
