"""Where does AD ROC AUC go after anonymization? Three readouts of the same AD stores, side by side.

    python benchmarks/ad_readout.py runs/demo/ad.zarr runs/sweep-demo/independence/ad.zarr [--heads 10]

- ``heads``: the ``evaluate ad`` protocol (MGFN, trained from video-level labels) with ``--heads`` heads of
  seeds 0, 1, ...: their mean ROC AUC and its range, since one head's AUC on a few test videos swings.
- ``probe``: whether the anomaly is still in the clips at all. A logistic regression on standardized clip
  embeddings, trained on the train split's clip-level labels (a clip is anomalous when its centre lies in an
  annotated interval; every clip of a normal video is normal) and scored by clip-level ROC AUC on the test
  split; once on the clips as they are and once centred per video (what changes inside a video, which MGFN
  reads). It is an oracle, trained on labels the AD protocol never sees; a store that keeps it and loses
  ``heads`` lost what the weakly supervised head finds, not the information.
- ``norm``: the clip's L2 norm as the anomaly score (clip-level ROC AUC on the test split), as it is and
  about the training clips' mean: MGFN's loss works on feature magnitudes.

``--heads 0`` reads the probes and norms only (seconds instead of minutes). ``--centre train-mean`` trains and scores
the heads on clips centred on the train split's mean clip (``evaluate ad --centre``); the probes and norms stay as
above.

``--kinds-from DATA_ROOT`` (stores extracted from the built-in synthetic dataset at DATA_ROOT) adds a second table:
the same heads' frame-level ROC AUC on parts of the test frames. ``erratic`` / ``intruder``: that kind's anomalous
frames against every normal frame (the other kind's frames left out; ``data_manifests.synth.anomaly_kinds``);
``across videos``: every anomalous frame against the normal videos' frames; ``within videos``: against the normal
frames of the anomalous videos. A head that only tells anomalous videos from normal ones reads high across and 0.5
within.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from data_manifests.errors import FeatstoreError  # noqa: E402
from data_manifests.synth import ANOMALY_KINDS, anomaly_kinds, saved_config  # noqa: E402
from evaluate.ad_metrics import expand_snippet_scores, frame_ground_truth, frame_level_auc  # noqa: E402
from evaluate.heads import load_head  # noqa: E402
from evaluate.protocols import _anomaly_detector as detector  # noqa: E402
from evaluate.protocols import ad  # noqa: E402
from evaluate.protocols._anomaly_detector import load_ad_videos  # noqa: E402
from featstore.store import Store  # noqa: E402

PROBE_C = 0.1
FRAME_PARTS = (*ANOMALY_KINDS, "across videos", "within videos")


def clip_labels(store: Store, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each video's clip embeddings and clip-level anomaly labels (clip centre inside an annotated interval)."""
    embeddings, labels = [], []
    for video in load_ad_videos(store, split):
        centres = video.clip_times.mean(axis=1)
        inside = np.zeros(len(centres), dtype=bool)
        if video.label == 1:
            for start, end in video.intervals:
                inside |= (centres >= start) & (centres <= end)
        embeddings.append(np.asarray(video.features, dtype=np.float64))
        labels.append(inside)
    return embeddings, labels


def probe_auc(train: list[np.ndarray], train_labels: list[np.ndarray], test: list[np.ndarray],
              test_labels: list[np.ndarray], centred: bool) -> float:
    def stack(videos):
        return np.concatenate([v - v.mean(axis=0) for v in videos] if centred else videos)

    scaler = StandardScaler().fit(stack(train))
    model = LogisticRegression(C=PROBE_C, max_iter=2000).fit(scaler.transform(stack(train)),
                                                              np.concatenate(train_labels))
    return float(roc_auc_score(np.concatenate(test_labels), model.decision_function(scaler.transform(stack(test)))))


def norm_auc(train: list[np.ndarray], test: list[np.ndarray], test_labels: list[np.ndarray], centred: bool) -> float:
    centre = np.concatenate(train).mean(axis=0) if centred else 0.0
    return float(roc_auc_score(np.concatenate(test_labels), np.linalg.norm(np.concatenate(test) - centre, axis=1)))


def part_labels(store: Store, kinds: dict[str, list[tuple[float, float, str]]]) -> dict[str, np.ndarray]:
    """Per part of FRAME_PARTS, the test frames' labels in the protocol's order: 1 anomalous, 0 normal, NaN left out."""
    frames = detector.snippet_frames(store)
    labels: dict[str, list[np.ndarray]] = {part: [] for part in FRAME_PARTS}
    for video in load_ad_videos(store, "test"):
        if video.video_id not in kinds:
            raise FeatstoreError(f"{store.path}: test video {video.video_id!r} is not an AD video of the dataset "
                                 "given by --kinds-from")
        planned = kinds[video.video_id]
        stored = np.asarray(video.intervals, dtype=np.float64).reshape(-1, 2)  # (m, 2) seconds
        expected = np.array([[a, b] for a, b, _ in planned]).reshape(-1, 2)
        if stored.shape != expected.shape or not np.allclose(stored, expected, atol=1e-5):
            raise FeatstoreError(f"{store.path}: test video {video.video_id!r}: its anomalous intervals are not those "
                                 "of the dataset given by --kinds-from")
        anomalous = frame_ground_truth(video.clip_times, expected, frames).astype(np.float64)
        for kind in ANOMALY_KINDS:
            this = frame_ground_truth(video.clip_times, np.array([[a, b] for a, b, k in planned if k == kind])
                                      .reshape(-1, 2), frames).astype(np.float64)
            this[(anomalous == 1) & (this == 0)] = np.nan
            labels[kind].append(this)
        normal_video = not planned
        labels["across videos"].append(np.where((anomalous == 0) & (not normal_video), np.nan, anomalous))
        labels["within videos"].append(np.full_like(anomalous, np.nan) if normal_video else anomalous)
    return {part: np.concatenate(values) for part, values in labels.items()}


def part_aucs(store: Store, heads: int, centre: str, labels: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """The protocol's heads (seeds 0, 1, ...; each trained by ``ad.run`` and saved), each scored on FRAME_PARTS
    (``labels``: ``part_labels`` of the store)."""
    test_videos = load_ad_videos(store, "test")
    if centre == "train-mean":
        test_videos = detector.centred(test_videos, detector.mean_clip(load_ad_videos(store, "train")))
    frames = detector.snippet_frames(store)
    found: dict[str, list[float]] = {"all": [], **{part: [] for part in FRAME_PARTS}}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(heads):
            head_path = Path(folder) / f"head-{seed}.safetensors"
            found["all"].append(ad.run(store, ad.ADConfig(seed=seed, seeds=1, centre=centre,
                                                          save_head=str(head_path)))["roc_auc"])
            model, _ = load_head(head_path, torch.device("cpu"), expected="mgfn")
            scores = expand_snippet_scores(detector.score_videos(model, test_videos, torch.device("cpu")), frames)
            for part in FRAME_PARTS:
                keep = ~np.isnan(labels[part])
                found[part].append(frame_level_auc(scores[keep], labels[part][keep].astype(int))["roc_auc"])
    return found


def readout(path: Path, heads: int, centre: str, labels: dict[str, np.ndarray] | None) -> dict:
    store = Store.open(path)
    train, train_labels = clip_labels(store, "train")
    test, test_labels = clip_labels(store, "test")
    found = {"probe": probe_auc(train, train_labels, test, test_labels, centred=False),
             "probe_centred": probe_auc(train, train_labels, test, test_labels, centred=True),
             "norm": norm_auc(train, test, test_labels, centred=False),
             "norm_centred": norm_auc(train, test, test_labels, centred=True)}
    if labels is not None:
        found["parts"] = part_aucs(store, heads, centre, labels)
        found["per_head"] = found["parts"]["all"]
        found["heads"] = float(np.mean(found["per_head"]))
    elif heads:
        result = ad.run(store, ad.ADConfig(seeds=heads, centre=centre, save_head=None))
        found["heads"] = result["roc_auc"]
        found["per_head"] = [seed["roc_auc"] for seed in result.get("per_seed", [result])]  # one head: no per_seed
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", type=Path, help="AD stores (raw and anonymized exports).")
    parser.add_argument("--heads", type=int, default=10, help="MGFN heads per store (seeds 0, 1, ...); 0: none.")
    parser.add_argument("--centre", choices=ad.CENTRE_CHOICES, default=ad.CENTRE_CHOICES[0],
                        help="The heads' input: as stored (MGFN's recipe) or centred on the train split's mean clip.")
    parser.add_argument("--kinds-from", type=Path, default=None, metavar="DATA_ROOT",
                        help="The synthetic dataset the stores were extracted from: AUC per anomaly kind and across / "
                             "within videos too.")
    args = parser.parse_args()
    if args.heads < 0:
        parser.error(f"--heads must be >= 0, got {args.heads}")
    if args.kinds_from is not None and args.heads == 0:
        parser.error("--kinds-from reads the heads' scores: give --heads 1 or more")
    labels = {}
    try:  # every store is checked before the first head trains
        kinds = None if args.kinds_from is None else anomaly_kinds(saved_config(args.kinds_from))
        for path in args.stores:
            store = Store.open(path)
            if kinds is None:
                load_ad_videos(store, "test")
            else:
                labels[path] = part_labels(store, kinds)
    except FeatstoreError as error:
        parser.error(str(error))
    torch.set_num_threads(1)  # the figures in docs/anonymize.md; another thread count moves one head's AUC by a point
    heads = (f"mean of {args.heads} head(s) (min-max), --centre {args.centre}" if args.heads
             else "not run (--heads 0)")
    print(f"| store | MGFN ROC AUC, {heads} | probe AUC | probe AUC, centred per video "
          "| norm AUC | norm AUC about the training mean |")
    print("|---|---|---|---|---|---|")
    parts = {}
    for path in args.stores:
        found = readout(path, args.heads, args.centre, labels.get(path))
        parts[path] = found.get("parts")
        mgfn = (f"{found['heads']:.3f} ({min(found['per_head']):.3f} to {max(found['per_head']):.3f})"
                if args.heads else "-")
        print(f"| {path} | {mgfn} | {found['probe']:.3f} | {found['probe_centred']:.3f} "
              f"| {found['norm']:.3f} | {found['norm_centred']:.3f} |", flush=True)
    if kinds is None:
        return
    print(f"\nFrame-level ROC AUC on parts of the test frames, mean of {args.heads} head(s) (min-max), "
          f"--centre {args.centre}:\n")
    print("| store | all | " + " | ".join(FRAME_PARTS) + " |")
    print("|---|---|" + "---|" * len(FRAME_PARTS))
    for path, found in parts.items():
        print(f"| {path} | " + " | ".join(f"{np.mean(v):.3f} ({min(v):.3f} to {max(v):.3f})" for v in found.values())
              + " |")


if __name__ == "__main__":
    main()
