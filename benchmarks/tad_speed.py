"""TAD speed: mAP evaluation, Gaussian soft-NMS and TriDet training steps on the CPU, measured side by side.

    python benchmarks/tad_speed.py [--predictions 200000] [--videos 212] [--segments 2000] [--steps 3]
                                                [--threads 1]

1. mAP (tIoU 0.3:0.1:0.7) of --predictions detections over --videos videos (THUMOS14-like ground truth:
   ~3,300 segments, 20 classes, string video ids). Target: under 2 s. The literal per-prediction
   evaluator of the tests runs on a 10 % subsample for the ratio, and the two must agree exactly there.
2. Soft-NMS of --segments segments of one class (THUMOS-like lengths over a 2,304-long grid), ours vs the
   literal transcription of the C++ op (same kept set checked). Target: under 50 ms.
3. TriDet training step (forward + backward + AdamW step) on one CPU for a 2,304-long sequence: the
   THUMOS14 configuration (I3D 2,048-d input, 512-d, batch 2) and the small preset, ms per step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the literal reference implementations live in the tests
    sys.path.insert(0, str(REPO))

from evaluate.heads.training import parameter_groups  # noqa: E402
from evaluate.heads.tridet import WEIGHT_DECAYED, TadTarget, TriDet, pad_batch, soft_nms  # noqa: E402
from evaluate.heads.tridet_config import PRESETS, TriDetConfig  # noqa: E402
from evaluate.tad_metrics import TIOU_THRESHOLDS, Segments, evaluate_detections  # noqa: E402
from tests.evaluate.heads.test_tridet import reference_soft_nms  # noqa: E402
from tests.evaluate.test_tad_metrics import _straight_evaluate  # noqa: E402


def thumos_like(n_predictions: int, n_videos: int, seed: int = 0) -> tuple[Segments, Segments]:
    rng = np.random.default_rng(seed)
    videos, starts, ends, labels = [], [], [], []
    for v in range(n_videos):
        duration, main_class = rng.uniform(60, 600), rng.integers(0, 20)
        for _ in range(rng.integers(3, 30)):
            s = rng.uniform(0, duration - 10)
            videos.append(f"video_test_{v:07d}")
            starts.append(s)
            ends.append(s + rng.uniform(1, 15))
            labels.append(main_class if rng.random() < 0.9 else rng.integers(0, 20))
    gt = Segments(np.array(videos), np.array(starts), np.array(ends), np.array(labels))
    pick = rng.integers(0, len(gt), n_predictions)
    near = rng.random(n_predictions) < 0.6
    s = np.where(near, gt.start[pick] + rng.normal(0, 2, n_predictions), rng.uniform(0, 600, n_predictions))
    e = np.where(near, gt.end[pick] + rng.normal(0, 2, n_predictions), s + rng.uniform(0.5, 20, n_predictions))
    e = np.maximum(e, s + 0.1)
    lab = np.where(rng.random(n_predictions) < 0.7, gt.label[pick], rng.integers(0, 20, n_predictions))
    return gt, Segments(gt.video[pick], s, e, lab, rng.random(n_predictions))


def bench_map(n_predictions: int, n_videos: int) -> None:
    gt, predictions = thumos_like(n_predictions, n_videos)
    evaluate_detections(gt, predictions.take(np.arange(1000)))  # warm-up
    started = time.perf_counter()
    result = evaluate_detections(gt, predictions, TIOU_THRESHOLDS)
    ours = time.perf_counter() - started
    print(f"mAP evaluation: {n_predictions} predictions, {n_videos} videos, {len(gt)} ground-truth segments: "
          f"{ours:.3f} s (target < 2 s); average mAP {result.average_mAP:.4f}")
    sub = np.random.default_rng(1).choice(n_predictions, n_predictions // 10, replace=False)
    subset = predictions.take(np.sort(sub))
    gt_rows = list(zip(gt.video.tolist(), gt.start.tolist(), gt.end.tolist(), gt.label.tolist()))
    pred_rows = list(zip(subset.video.tolist(), subset.start.tolist(), subset.end.tolist(), subset.label.tolist(),
                         subset.score.tolist()))
    started = time.perf_counter()
    expected = _straight_evaluate(gt_rows, pred_rows, TIOU_THRESHOLDS)
    literal = time.perf_counter() - started
    started = time.perf_counter()
    fast = evaluate_detections(gt, subset, TIOU_THRESHOLDS)
    vectorized = time.perf_counter() - started
    same = np.array_equal(fast.ap, expected)
    print(f"  on a {len(subset)}-prediction subsample: literal evaluator {literal:.2f} s, ours {vectorized:.3f} s "
          f"({literal / vectorized:.0f}x); identical AP table: {same}")


def bench_soft_nms(n_segments: int, repeats: int = 5) -> None:
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 2304, n_segments)
    lengths = np.exp(rng.uniform(np.log(2), np.log(200), n_segments))
    segments = np.stack([centres - lengths / 2, centres + lengths / 2], axis=1).astype(np.float32)
    scores = (rng.beta(0.5, 3, n_segments) * 0.999 + 0.001).astype(np.float32)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        kept, _ = soft_nms(segments, scores, sigma=0.5, min_score=0.001, max_keep=2000)
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    expected = reference_soft_nms(segments, scores, 0.5, 0.001)
    literal = time.perf_counter() - started
    same = kept.tolist() == [index for index, _ in expected][:2000]
    print(f"soft-NMS: {n_segments} segments of one class: {np.median(times) * 1000:.1f} ms median of {repeats} "
          f"(target < 50 ms), {len(kept)} kept; literal loop {literal * 1000:.0f} ms "
          f"({literal / np.median(times):.0f}x); same picks: {same}")


def bench_training_step(steps: int) -> None:
    for name, input_dim, overrides in (("thumos14", 2048, {}), ("small", 192, {**PRESETS["small"], "max_seq_len": 2304})):
        config = TriDetConfig(input_dim=input_dim, num_classes=20, **overrides)
        torch.manual_seed(0)
        model = TriDet(config).train()
        optimizer = torch.optim.AdamW(parameter_groups(model, 0.025, WEIGHT_DECAYED), lr=1e-4)
        sequences = [torch.randn(config.max_seq_len, input_dim) for _ in range(2)]
        targets = [TadTarget(torch.tensor([[100.0, 180.0], [900.0, 1100.0], [2000.0, 2040.0]]), torch.tensor([1, 5, 7]))
                   for _ in range(2)]
        timings = []
        for step in range(steps + 1):
            inputs, mask = pad_batch(sequences, config, training=True)
            started = time.perf_counter()
            loss = model.loss(model(inputs, mask), targets)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if step:  # the first step pays one-time allocations
                timings.append(time.perf_counter() - started)
        params = sum(p.numel() for p in model.parameters())
        print(f"TriDet training step ({name}: {params / 1e6:.1f} M parameters, batch 2 x {config.max_seq_len} x "
              f"{input_dim}, {torch.get_num_threads()} threads): {np.median(timings) * 1000:.0f} ms median of {steps}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=200_000)
    parser.add_argument("--videos", type=int, default=212)
    parser.add_argument("--segments", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: steady on shared CPUs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_map(args.predictions, args.videos)
    bench_soft_nms(args.segments)
    bench_training_step(args.steps)


if __name__ == "__main__":
    main()
