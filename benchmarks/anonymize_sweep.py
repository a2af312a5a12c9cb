"""Does the AAM anonymize? Raw vs anonymized stores under several training settings, measured with the
``evaluate`` protocols (action top-1 with the AR linear probe; attribute cMAP of a freshly trained
2-layer MLP attacker on static clips and on full clips, both attackers), plus diagnostics of what the
anonymizer did to the embeddings.

    python benchmarks/anonymize_sweep.py --store /tmp/demo/runs/raw.zarr --out runs/sweep
    python benchmarks/anonymize_sweep.py --store STORE --out DIR --only direct,adversarial

Each setting trains an AAM (``anonymize.train``), exports the anonymized store and evaluates it.
Results are cached per setting in ``DIR/<name>/result.json``; ``DIR/results.md`` is the table.

Diagnostics (on the test split, computed from the exported store):
- ``move_static`` / ``move_clips``: mean ||f(z) - z||^2 / mean ||z - mean z||^2: how far the AAM moved
  each kind of input, relative to the spread of the data.
- ``ntxent_raw`` / ``ntxent_anon``: NT-Xent (T=0.1) between two static clips of the same test video,
  before and after: what the direct budget optimizes (higher = the budget "won").
- ``recover_r2``: R^2 of a ridge regression from anonymized back to raw clip embeddings (fit on train,
  scored on test): 1.0 = an invertible map, nothing removed.
- ``static_vs_clip``: test accuracy of a logistic regression telling static clips from clips in the
  raw space: if ~1, the AAM can treat the two kinds of input differently.

A reference that is not an AAM: ``oracle-erasure`` removes, with the attribute labels, the linear
attribute directions (iterative nullspace projection on train static clips and clips), to show how
much a label-aware linear removal can reduce leakage and what it costs the action probe.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from anonymize.config import TrainConfig  # noqa: E402
from anonymize.export import export_store  # noqa: E402
from anonymize.losses import nt_xent  # noqa: E402
from anonymize.train import train  # noqa: E402
from evaluate.protocols import ar, privacy  # noqa: E402
from featstore.store import Store, write_transformed_store  # noqa: E402

BASE = {"epochs": 100, "batch_size": 512, "progress": False, "validate_every": 0}

# name -> TrainConfig overrides on top of BASE (defaults: direct budget, w_LC 100, T 0.1, paper identity init)
SETTINGS: dict[str, dict] = {
    "direct": {},
    "direct-lc10": {"w_lc": 10.0},
    "direct-lc1": {"w_lc": 1.0},
    "direct-lc0": {"w_lc": 0.0},
    "direct-T0.5": {"temperature": 0.5},
    "direct-batch32": {"batch_size": 32},
    "direct-batch32-lc1-lr1e-3": {"batch_size": 32, "w_lc": 1.0, "lr": 1e-3, "lr_reference_batch": 32},
    # which of batch 32 / lr 1e-3 / w_LC 1 matters, and is it stable over training seeds
    "direct-batch32-lr1e-3": {"batch_size": 32, "lr": 1e-3, "lr_reference_batch": 32},
    "direct-batch32-lc10-lr1e-3": {"batch_size": 32, "w_lc": 10.0, "lr": 1e-3, "lr_reference_batch": 32},
    "direct-lc1-lr1e-3": {"w_lc": 1.0, "lr": 1e-3},
    "direct-lc1-lr1e-3-epochs500": {"w_lc": 1.0, "lr": 1e-3, "epochs": 500},
    "direct-batch32-lc1-lr1e-3-seed1": {"batch_size": 32, "w_lc": 1.0, "lr": 1e-3, "lr_reference_batch": 32, "seed": 1},
    "direct-batch32-lc1-lr1e-3-seed2": {"batch_size": 32, "w_lc": 1.0, "lr": 1e-3, "lr_reference_batch": 32, "seed": 2},
    "direct-batch32-lc10-lr1e-3-seed1": {"batch_size": 32, "w_lc": 10.0, "lr": 1e-3, "lr_reference_batch": 32, "seed": 1},
    "direct-batch32-lc10-lr1e-3-seed2": {"batch_size": 32, "w_lc": 10.0, "lr": 1e-3, "lr_reference_batch": 32, "seed": 2},
    # the demo's settings with latent consistency on static clips too: is the static drop a collapse of static inputs?
    "direct-batch32-lc10-lr1e-3-lc-on-static": {"batch_size": 32, "w_lc": 10.0, "lr": 1e-3, "lr_reference_batch": 32,
                                                "lc_inputs": "clips+static"},
    "direct-augment": {"static_noise": 0.5, "static_feature_dropout": 0.2},
    "direct-lc-on-static": {"lc_inputs": "clips+static"},
    "direct-budget-on-clips": {"budget_inputs": "static+clips"},
    "direct-zero-init": {"identity": {"preset": "zero"}},
    "adversarial": {"budget_mode": "adversarial", "budget_restart_every": 10},
    "adversarial-lc1-lr1e-3": {"budget_mode": "adversarial", "budget_restart_every": 10, "w_lc": 1.0,
                               "batch_size": 32, "lr": 1e-3, "lr_reference_batch": 32},
    "supervised": {"budget_mode": "supervised"},
    "supervised-confusion": {"budget_mode": "supervised", "supervised_objective": "confusion"},
    "supervised-confusion-lc1-lr1e-3": {"budget_mode": "supervised", "supervised_objective": "confusion",
                                        "w_lc": 1.0, "batch_size": 32, "lr": 1e-3, "lr_reference_batch": 32,
                                        "budget_inputs": "static+clips"},
    "none": {"budget_mode": "none"},
    # beyond the paper: the bounded, centred NT-Xent objective (losses.nt_xent_to_uniform)
    "uniform-lc1-lr1e-3": {"ntxent_objective": "to-uniform", "w_lc": 1.0, "batch_size": 32, "lr": 1e-3,
                           "lr_reference_batch": 32},
    "uniform-lc1-lr1e-3-clips": {"ntxent_objective": "to-uniform", "w_lc": 1.0, "batch_size": 32, "lr": 1e-3,
                                 "lr_reference_batch": 32, "budget_inputs": "static+clips"},
    "uniform-lc10-lr1e-3-clips": {"ntxent_objective": "to-uniform", "w_lc": 10.0, "batch_size": 32, "lr": 1e-3,
                                  "lr_reference_batch": 32, "budget_inputs": "static+clips"},
    "uniform-wb10-lc1-lr1e-3-clips": {"ntxent_objective": "to-uniform", "w_lc": 1.0, "w_budget": 10.0,
                                      "batch_size": 32, "lr": 1e-3, "lr_reference_batch": 32,
                                      "budget_inputs": "static+clips"},
}
REFERENCES = ("raw", "oracle-erasure")


def evaluate_store(path: Path, device: str) -> dict:
    store = Store.open(path)
    action = ar.run(store, ar.ARConfig(device=device))
    static = privacy.run(store, privacy.PrivacyConfig(kind="static", device=device))
    clips = privacy.run(store, privacy.PrivacyConfig(kind="clips", device=device))
    return {
        "top1": action["top1"], "chance_top1": action["chance_top1"],
        "static_cmap": static["attackers"]["standard"]["cmap"],
        "static_cmap_authors": static["attackers"]["authors"]["cmap"],
        "clips_cmap": clips["attackers"]["standard"]["cmap"],
        "clips_cmap_authors": clips["attackers"]["authors"]["cmap"],
        "chance_cmap": static["chance_cmap"],
        "static_ap": static["per_attribute"], "clips_ap": clips["per_attribute"],
    }


def attacker_seed_spread(path: Path, device: str, seeds: tuple[int, ...] = (0, 1, 2)) -> dict:
    """cMAP (standard attacker) of the raw store under several attacker seeds: the noise band."""
    store = Store.open(path)
    spread = {}
    for kind in ("static", "clips"):
        values = [privacy.run(store, privacy.PrivacyConfig(kind=kind, device=device, seed=seed, attacker="standard"))["cmap"]
                  for seed in seeds]
        spread[kind] = (float(np.min(values)), float(np.max(values)))
    return spread


def _split_rows(store: Store, kind: str, split: str) -> np.ndarray:
    offsets = store.clip_offsets() if kind == "clips" else store.static_offsets()
    videos = store.split_indices(split)
    return np.concatenate([np.arange(offsets[v], offsets[v + 1]) for v in videos])


DIAGNOSTIC_KEYS = {"move_static", "move_clips", "ntxent_anon", "ntxent_anon_centred", "shift_static", "recover_r2",
                   "standardized_static_cmap", "standardized_clips_cmap"}


def standardized_attack(anon_path: Path, folder: Path, device: str) -> dict:
    """The standard attacker on z-scored inputs (mean/std of the train rows, per dimension): a scale or
    shift of the embeddings can slow the attacker's training without removing any information."""
    store = Store.open(anon_path)
    train = [store.load_embeddings(kind)[_split_rows(store, kind, "train")] for kind in ("static", "clips")]
    both = np.concatenate(train).astype(np.float64)
    mean, std = both.mean(0), both.std(0) + 1e-6
    out = folder / "standardized.zarr"
    if out.exists():
        shutil.rmtree(out)
    write_transformed_store(store, out, lambda block: ((block - mean) / std).astype(np.float32),
                            {"provenance": dict(store.provenance, standardized=True)})
    standardized = Store.open(out)
    result = {f"standardized_{kind}_cmap": privacy.run(standardized, privacy.PrivacyConfig(
        kind=kind, device=device, attacker="standard"))["cmap"] for kind in ("static", "clips")}
    shutil.rmtree(out)
    return result


def diagnostics(raw_path: Path, anon_path: Path, folder: Path, device: str) -> dict:
    from sklearn.linear_model import Ridge

    raw, anon = Store.open(raw_path), Store.open(anon_path)
    result = standardized_attack(anon_path, folder, device)
    for kind in ("static", "clips"):
        test = _split_rows(raw, kind, "test")
        z, fz = raw.load_embeddings(kind)[test], anon.load_embeddings(kind)[test]
        spread = float(((z - z.mean(0)) ** 2).sum(1).mean())
        result[f"move_{kind}"] = float(((fz - z) ** 2).sum(1).mean()) / spread
    offsets = raw.static_offsets()
    videos = raw.split_indices("test")
    first, second = offsets[videos], offsets[videos] + np.diff(offsets)[videos] // 2
    for name, store in (("raw", raw), ("anon", anon)):
        rows = store.load_embeddings("static")
        result[f"ntxent_{name}"] = float(nt_xent(torch.from_numpy(rows[first]), torch.from_numpy(rows[second]), 0.1))
        # The same after removing the common mean: a constant shift raises every cosine similarity
        # (NT-Xent -> its uniform value) without removing any information.
        centred = rows - rows[_split_rows(raw, "static", "train")].mean(0)
        result[f"ntxent_{name}_centred"] = float(nt_xent(torch.from_numpy(centred[first]),
                                                          torch.from_numpy(centred[second]), 0.1))
    result["ntxent_uniform"] = math.log(2 * len(videos) - 1)
    static_test = _split_rows(raw, "static", "test")
    z, fz = raw.load_embeddings("static")[static_test], anon.load_embeddings("static")[static_test]
    result["shift_static"] = float(((fz.mean(0) - z.mean(0)) ** 2).sum() / ((z - z.mean(0)) ** 2).sum(1).mean())
    train_rows, test_rows = _split_rows(raw, "clips", "train"), _split_rows(raw, "clips", "test")
    z, fz = raw.load_embeddings("clips"), anon.load_embeddings("clips")
    ridge = Ridge(alpha=1e-3).fit(fz[train_rows], z[train_rows])
    residual = ((ridge.predict(fz[test_rows]) - z[test_rows]) ** 2).sum()
    result["recover_r2"] = float(1 - residual / ((z[test_rows] - z[test_rows].mean(0)) ** 2).sum())
    return result


def attribute_variance_share(path: Path) -> dict:
    """Share of the embedding variance explained by the attribute labels (least squares on one-hot
    attributes, train rows): what latent consistency charges for removing the attributes entirely."""
    store = Store.open(path)
    attributes = store.videos().attributes.astype(np.float64)
    shares = {}
    for kind in ("static", "clips"):
        offsets = store.clip_offsets() if kind == "clips" else store.static_offsets()
        rows = _split_rows(store, kind, "train")
        owner = np.searchsorted(offsets, rows, side="right") - 1
        z = store.load_embeddings(kind)[rows].astype(np.float64)
        design = np.concatenate([attributes[owner], np.ones((len(rows), 1))], 1)
        fitted = design @ np.linalg.lstsq(design, z, rcond=None)[0]
        shares[kind] = float(((fitted - z.mean(0)) ** 2).sum() / ((z - z.mean(0)) ** 2).sum())
        shares[f"{kind}_mse_to_remove"] = float(((fitted - z.mean(0)) ** 2).mean())
    return shares


def static_vs_clip_separability(path: Path) -> float:
    from sklearn.linear_model import LogisticRegression

    store = Store.open(path)
    parts = []
    for split in ("train", "test"):
        clips = store.load_embeddings("clips")[_split_rows(store, "clips", split)]
        static = store.load_embeddings("static")[_split_rows(store, "static", split)]
        parts.append((np.concatenate([clips, static]), np.r_[np.zeros(len(clips)), np.ones(len(static))]))
    model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(*parts[0])
    return float(model.score(*parts[1]))


def oracle_erasure(raw_path: Path, out: Path, rounds: int = 10) -> None:
    """Iterative nullspace projection of the attribute directions (label-aware, linear; a reference)."""
    from sklearn.linear_model import LogisticRegression

    store = Store.open(raw_path)
    attributes = store.videos().attributes
    rows, targets = [], []
    for kind in ("static", "clips"):
        offsets = store.clip_offsets() if kind == "clips" else store.static_offsets()
        data = store.load_embeddings(kind)
        for v in store.split_indices("train"):
            rows.append(data[offsets[v] : offsets[v + 1]])
            targets.append(np.repeat(attributes[v][None], offsets[v + 1] - offsets[v], 0))
    x, y = np.concatenate(rows).astype(np.float64), np.concatenate(targets)
    mean = x.mean(0)
    projection = np.eye(x.shape[1])
    for _ in range(rounds):
        directions = []
        for a in range(y.shape[1]):
            known = y[:, a] >= 0
            if len(np.unique(y[known, a])) < 2:
                continue
            model = LogisticRegression(max_iter=2000).fit((x[known] - mean) @ projection, y[known, a])
            directions.append(model.coef_[0])
        basis, _ = np.linalg.qr(np.array(directions).T)
        projection = projection @ (np.eye(x.shape[1]) - basis @ basis.T)

    def transform(block: np.ndarray) -> np.ndarray:
        return ((block.astype(np.float64) - mean) @ projection + mean).astype(np.float32)

    write_transformed_store(store, out, transform, {"provenance": dict(store.provenance, oracle_erasure=rounds)})


def make_latent_factor_store(out: Path, seed: int = 0, n_train: int = 400, n_test: int = 200, dim: int = 192) -> Path:
    """A controlled store with known structure (NOT the demo data): a random 2-layer tanh network
    ("encoder") maps latent factors to 192-d embeddings. Full clips = motion code of the action class
    (+ per-clip variation) + appearance code of 4 independent binary attributes + nuisance; static
    clips = the same appearance code + frame nuisance, no motion. Action and attributes are independent.
    """
    from anonymize.array_store import write_array_store

    rng = np.random.default_rng(seed)
    n_classes, n_attributes, motion_dim, appearance_dim, nuisance_dim = 10, 4, 16, 16, 8
    motion_codes = rng.normal(size=(n_classes, motion_dim))
    attribute_codes = rng.normal(size=(n_attributes, appearance_dim))
    hidden = 512
    w1 = rng.normal(size=(motion_dim + appearance_dim + nuisance_dim, hidden)) / np.sqrt(motion_dim + appearance_dim)
    b1 = rng.normal(size=hidden) * 0.5
    w2 = rng.normal(size=(hidden, dim)) / np.sqrt(hidden)

    def encode(motion, appearance, nuisance):
        return np.tanh(np.concatenate([motion, appearance, nuisance], 1) @ w1 + b1) @ w2

    n = n_train + n_test
    labels = rng.integers(0, n_classes, n)
    attributes = rng.integers(0, 2, (n, n_attributes))
    clips, static = [], []
    for v in range(n):
        appearance = (2 * attributes[v] - 1) @ attribute_codes / 2 + 1.0 * rng.normal(size=appearance_dim)
        k = int(rng.integers(3, 9))
        motion = motion_codes[labels[v]] + 1.3 * rng.normal(size=(k, motion_dim))
        clips.append(encode(motion, np.repeat(appearance[None], k, 0), rng.normal(size=(k, nuisance_dim))))
        static.append(encode(np.zeros((10, motion_dim)), np.repeat(appearance[None], 10, 0),
                             rng.normal(size=(10, nuisance_dim))))
    splits = ["train"] * n_train + ["test"] * n_test
    return write_array_store(out, clips, static, splits, labels.tolist(), attributes,
                             [f"action{i}" for i in range(n_classes)], [f"attr{i}" for i in range(n_attributes)],
                             description=f"latent-factor store (random tanh network, seed {seed})")


def run_setting(name: str, store: Path, out: Path, device: str) -> dict:
    folder = out / name
    cached = folder / "result.json"
    if cached.is_file():
        result = json.loads(cached.read_text())
        if not DIAGNOSTIC_KEYS <= set(result.get("diagnostics", {})):  # written by an older version
            anon = store if name == "raw" else folder / "anon.zarr"
            result["diagnostics"] = diagnostics(store, anon, folder, device)
            cached.write_text(json.dumps(result, indent=1, default=float) + "\n")
        return result
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    result: dict = {"name": name}
    if name == "raw":
        anon = store
    elif name == "oracle-erasure":
        anon = folder / "anon.zarr"
        oracle_erasure(store, anon)
    else:
        settings = dict(BASE, **SETTINGS[name])
        config = TrainConfig(store=str(store), out=str(folder / "run"), device=device, **settings)
        trained = train(config)
        last = trained.history[-1]
        result["train"] = {key: last.get(key) for key in ("loss", "utility", "privacy", "lc", "adversary")}
        result["train"]["identity_init"] = trained.history[0]["identity_init"]
        result["train"]["steps"] = sum(h.get("steps", 0) for h in trained.history)
        result["train"]["seconds"] = sum(h.get("seconds", 0.0) for h in trained.history)
        result["settings"] = SETTINGS[name]
        anon = folder / "anon.zarr"
        export_store(folder / "run", store, anon, device=device)
    result["metrics"] = evaluate_store(anon, device)
    result["diagnostics"] = diagnostics(store, anon, folder, device)
    result["seconds"] = time.perf_counter() - started
    cached.write_text(json.dumps(result, indent=1, default=float) + "\n")
    return result


def table(results: list[dict], raw_top1: float) -> str:
    head = ("| setting | top-1 (vs raw) | static cMAP std / authors | clip cMAP std / authors | move static / clips "
            "| shift | NT-Xent anon (centred) | recover R^2 | z-scored attacker static / clips | steps |")
    lines = [head, "|" + "---|" * 10]
    for r in results:
        m, d = r["metrics"], r["diagnostics"]
        steps = r.get("train", {}).get("steps", "-")
        lines.append(
            f"| {r['name']} | {m['top1']:.3f} ({m['top1'] - raw_top1:+.3f}) | {m['static_cmap']:.3f} / "
            f"{m['static_cmap_authors']:.3f} | {m['clips_cmap']:.3f} / {m['clips_cmap_authors']:.3f} | "
            f"{d['move_static']:.3g} / {d['move_clips']:.3g} | {d['shift_static']:.3g} | {d['ntxent_anon']:.2f} "
            f"({d['ntxent_anon_centred']:.2f}) | {d['recover_r2']:.3f} | {d['standardized_static_cmap']:.3f} / "
            f"{d['standardized_clips_cmap']:.3f} | {steps} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", default="", help="Comma-separated setting names (default: all).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--make-latent-store", action="store_true",
                        help="First write the controlled latent-factor store at --store (see make_latent_factor_store).")
    args = parser.parse_args()
    if args.make_latent_store and not args.store.exists():
        make_latent_factor_store(args.store)
    torch.set_num_threads(1)
    names = [*REFERENCES, *SETTINGS]
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown settings {unknown}; known: {names}")
        names = ["raw", *[n for n in wanted if n != "raw"]]
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        result = run_setting(name, args.store, args.out, args.device)
        results.append(result)
        m = result["metrics"]
        print(f"{name:36s} top1 {m['top1']:.3f}  static cMAP {m['static_cmap']:.3f}/{m['static_cmap_authors']:.3f}  "
              f"clip cMAP {m['clips_cmap']:.3f}/{m['clips_cmap_authors']:.3f}  ({result['seconds']:.0f}s)", flush=True)
    raw = results[0]["metrics"]
    separable = static_vs_clip_separability(args.store)
    shares = attribute_variance_share(args.store)
    diag = results[0]["diagnostics"]
    noise = attacker_seed_spread(args.store, args.device)
    text = (f"store: {args.store}\n\nchance: top-1 {raw['chance_top1']:.3f}, cMAP {raw['chance_cmap']:.3f}; "
            f"static vs clip separable (raw, logistic regression, test accuracy): {separable:.3f}; "
            f"NT-Xent of raw static pairs {diag['ntxent_raw']:.2f} (uniform value log(2N-1) = "
            f"{diag['ntxent_uniform']:.2f}); share of variance explained by the attributes: static "
            f"{shares['static']:.3f}, clips {shares['clips']:.3f} (removing it costs MSE {shares['static_mse_to_remove']:.4f}"
            f" x w_LC); raw cMAP over attacker seeds 0-2: static {noise['static'][0]:.3f}-{noise['static'][1]:.3f}, "
            f"clips {noise['clips'][0]:.3f}-{noise['clips'][1]:.3f}\n\n"
            + table(results, raw["top1"]) + "\n\nper-attribute AP (standard attacker, static | clips):\n\n"
            + "\n".join(f"- {r['name']}: " + ", ".join(
                f"{k} {v:.2f}|{r['metrics']['clips_ap'][k]:.2f}" for k, v in r["metrics"]["static_ap"].items())
                for r in results) + "\n")
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
