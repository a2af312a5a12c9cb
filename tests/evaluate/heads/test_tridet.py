"""TriDet head: soft-NMS, target assignment, decoding, losses, feature grid, a planted-signal fit, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from evaluate.heads import load_head, save_head
from evaluate.heads.tridet import (
    DepthwiseConv1d,
    TadTarget,
    TriDet,
    TriDetOutput,
    batched_soft_nms,
    center_diou_loss,
    pad_batch,
    random_crop,
    sigmoid_focal_loss,
    soft_nms,
)
from evaluate.heads.tridet_config import TriDetConfig, TriDetTrainConfig
from evaluate.protocols._action_detector import FeatureGrid, TadVideo, detect_videos, ground_truth_of, train_tridet
from evaluate.tad_metrics import evaluate_detections
from data_manifests.errors import FeatstoreError

TINY = dict(embd_dim=32, sgp_mlp_dim=32, head_dim=32, branch_layers=2, regression_range=((0, 4), (4, 8), (8, 10000)),
            max_seq_len=64, num_bins=4)


def tiny_config(**overrides) -> TriDetConfig:
    return TriDetConfig(input_dim=8, num_classes=3, **{**TINY, **overrides})


# ------------------------------------------------------------------ soft-NMS
def reference_soft_nms(segments, scores, sigma, min_score):
    """A literal transcription of the 1-D C++ op: in-place max search, swap, decay, swap-with-last removal."""
    x1, x2 = segments[:, 0].astype(np.float32).tolist(), segments[:, 1].astype(np.float32).tolist()
    sc = scores.astype(np.float32).tolist()
    inds = list(range(len(sc)))
    n, i, out = len(sc), 0, []
    while i < n:
        best = i
        for pos in range(i + 1, n):
            if sc[best] < sc[pos]:
                best = pos
        for arr in (x1, x2, sc, inds):
            arr[i], arr[best] = arr[best], arr[i]
        out.append((inds[i], sc[i]))
        pos = i + 1
        while pos < n:
            inter = max(0.0, min(x2[i], x2[pos]) - max(x1[i], x1[pos]))
            ovr = np.float32(inter) / np.float32((x2[i] - x1[i]) + (x2[pos] - x1[pos]) - inter)
            sc[pos] = float(np.float32(sc[pos]) * np.exp(-(ovr * ovr) / np.float32(sigma)))
            if sc[pos] < min_score:
                for arr in (x1, x2, sc, inds):
                    arr[pos] = arr[n - 1]
                n -= 1
                pos -= 1
            pos += 1
        i += 1
    return out


@pytest.mark.parametrize("seed", range(3))
def test_soft_nms_matches_the_reference_loop(seed):
    rng = np.random.default_rng(seed)
    n = 300
    starts = rng.uniform(0, 100, n)
    segments = np.stack([starts, starts + rng.uniform(0.5, 20, n)], axis=1).astype(np.float32)
    scores = rng.uniform(0.0005, 1, n).astype(np.float32)
    expected = reference_soft_nms(segments, scores, 0.5, 0.001)
    kept, decayed = soft_nms(segments, scores, sigma=0.5, min_score=0.001)
    assert kept.tolist() == [index for index, _ in expected]
    np.testing.assert_allclose(decayed, [score for _, score in expected], rtol=1e-5)


def test_soft_nms_keeps_the_first_pick_even_below_min_score_and_caps():
    segments = np.array([[0, 10], [0, 10], [50, 60]], dtype=np.float32)
    kept, scores = soft_nms(segments, np.array([0.0005, 0.0004, 0.0003], np.float32), min_score=0.001)
    assert kept.tolist() == [0]
    kept, scores = soft_nms(segments, np.array([0.9, 0.8, 0.7], np.float32), sigma=0.5, max_keep=2)
    assert kept.tolist() == [0, 2]  # the duplicate decays by exp(-1 / 0.5) to 0.108 < 0.7
    np.testing.assert_allclose(scores, [0.9, 0.7])


def test_batched_soft_nms_is_per_class_and_sorted():
    segments = np.array([[0, 10], [0, 10], [0, 10]], dtype=np.float32)
    found = batched_soft_nms(segments, np.array([0.9, 0.8, 0.5], np.float32), np.array([0, 1, 0]), max_seg_num=10)
    # classes do not suppress each other: class 1 keeps 0.8; class 0's duplicate decays to 0.5 * e^-2
    np.testing.assert_allclose(found.scores, [0.9, 0.8, 0.5 * math.exp(-2)], rtol=1e-6)
    assert found.labels.tolist() == [0, 1, 0]
    assert len(batched_soft_nms(segments, np.array([0.9, 0.8, 0.5], np.float32), np.zeros(3, int), max_seg_num=1).scores) == 1


# ------------------------------------------------------------------ building blocks
def test_depthwise_conv_equals_a_grouped_conv():
    torch.manual_seed(0)
    for kernel in (1, 11):
        ours = DepthwiseConv1d(6, kernel)
        nn.init.normal_(ours.weight)
        nn.init.normal_(ours.bias)
        grouped = nn.Conv1d(6, 6, kernel, padding=kernel // 2, groups=6)
        grouped.load_state_dict({"weight": ours.weight.detach(), "bias": ours.bias.detach()})
        x = torch.randn(2, 6, 20)
        torch.testing.assert_close(ours(x), grouped(x), rtol=1e-5, atol=1e-5)


def test_losses_on_hand_values():
    same = torch.tensor([[1.0, 2.0]])
    assert float(center_diou_loss(same, same)) == pytest.approx(0.0, abs=1e-7)
    # pred [-1, 1] vs target [-0.5, 1.5]: IoU 1.5 / 2.5, centres 0.5 apart, enclosing 2.5 -> 0.4 + (0.5/2.5)^2
    assert float(center_diou_loss(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.5, 1.5]]))) == pytest.approx(0.44)
    logit, target = torch.tensor([0.3]), torch.tensor([1.0])
    p = 1 / (1 + math.exp(-0.3))
    assert float(sigmoid_focal_loss(logit, target)) == pytest.approx(0.25 * -math.log(p) * (1 - p) ** 2, rel=1e-5)


def test_assign_targets_hand_case():
    model = TriDet(tiny_config())
    points = model.points([32, 16, 8], torch.device("cpu"))
    cls, reg = model.assign_targets(points, TadTarget(torch.tensor([[10.0, 14.0]]), torch.tensor([1])))
    positive = torch.nonzero(cls.sum(1) > 0).squeeze(1).tolist()
    # centre 12, radius 1.5 on level 0 -> points 11, 12, 13; the level-1 point 12 is outside its range [4, 8]
    assert positive == [11, 12, 13]
    assert cls[positive].argmax(1).tolist() == [1, 1, 1]
    torch.testing.assert_close(reg[positive], torch.tensor([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]))


def test_detect_decodes_a_planted_output():
    config = tiny_config()
    model = TriDet(config).eval()
    lengths, k, bins = [64, 32, 16], config.num_classes, config.num_bins + 1
    output = TriDetOutput([torch.full((1, t, k), -20.0) for t in lengths], [torch.zeros(1, t, k) for t in lengths],
                          [torch.zeros(1, t, k) for t in lengths], [torch.zeros(1, t, 2, bins) for t in lengths],
                          [torch.ones(1, t, dtype=torch.bool) for t in lengths])
    output.cls_logits[0][0, 20, 2] = 10.0  # class 2 at point 20 of level 0
    output.start_logits[0][0, 18, 2] = 40.0  # start 2 before -> left distance 2
    output.end_logits[0][0, 23, 2] = 40.0  # end 3 after -> right distance 3
    found = model.detect(output, 0)
    assert found.labels[0] == 2
    np.testing.assert_allclose(found.segments[0], [18.0, 23.0], atol=1e-3)
    assert found.scores[0] == pytest.approx(1 / (1 + math.exp(-10)), rel=1e-5)


def test_feature_grid_reproduces_the_thumos_formula():
    fps, frames = 30.0, np.arange(50) * 4
    times = np.stack([frames, frames + 16], axis=1) / fps
    grid = FeatureGrid.of_clip_times(times, duration=10.0)
    seconds = np.array([0.0, 1.3, 5.0, 6.5])
    np.testing.assert_allclose(grid.to_index(seconds), (seconds * fps - 8) / 4)
    np.testing.assert_allclose(grid.to_seconds(np.array([-5.0, 3.0, 100.0])), [0.0, (3 * 4 + 8) / fps, 10.0])
    uneven = FeatureGrid(np.array([0.5, 1.0, 2.0]), duration=3.0)
    np.testing.assert_allclose(uneven.to_index(np.array([0.0, 1.5, 3.0])), [-1.0, 1.5, 3.0])
    np.testing.assert_allclose(uneven.to_seconds(uneven.to_index(np.array([0.75, 1.5]))), [0.75, 1.5])


def test_pad_batch_and_crop():
    config = tiny_config()
    x, mask = pad_batch([torch.ones(10, 8), torch.ones(30, 8)], config, training=False)
    assert x.shape == (2, 64, 8) and mask.sum(1).tolist() == [10, 30]
    x, _ = pad_batch([torch.ones(70, 8)], config, training=False)
    assert x.shape[1] == 72  # longer than max_seq_len: next multiple of 4 (2^(levels-1))
    with pytest.raises(ValueError, match="cropped"):
        pad_batch([torch.ones(70, 8)], config, training=True)
    rng = np.random.default_rng(0)
    segments, labels = np.array([[10.0, 20.0], [60.0, 90.0]], np.float32), np.array([0, 1])
    start, end, kept, kept_labels = random_crop(100, segments, labels, 50, (0.9, 1.0), 0.5, rng)
    assert end - start == 50 and len(kept) >= 1
    assert np.all(kept >= 0) and np.all(kept <= 50)


def test_config_validation():
    with pytest.raises(FeatstoreError, match="multiple of 16"):
        tiny_config(embd_dim=30)
    with pytest.raises(FeatstoreError, match="regression_range"):
        tiny_config(branch_layers=3)
    with pytest.raises(FeatstoreError, match="max_seq_len"):
        tiny_config(max_seq_len=66)
    with pytest.raises(FeatstoreError, match="crop_ratio"):
        TriDetTrainConfig(crop_ratio=(0.9, 1.2))
    with pytest.raises(FeatstoreError, match="unknown fields"):
        TriDetConfig.from_json({"input_dim": 8, "num_classes": 2, "bogus": 1})


# ------------------------------------------------------------------ end to end on planted sequences
def planted_videos(n: int, seed: int, dim: int = 8, n_classes: int = 3) -> list[TadVideo]:
    rng = np.random.default_rng(seed)
    videos = []
    for i in range(n):
        length = int(rng.integers(40, 61))
        features = rng.normal(0, 0.3, (length, dim)).astype(np.float32)
        segments, labels, t = [], [], int(rng.integers(1, 6))
        while t + 12 < length:
            width = int(rng.integers(5, 12))
            label = int(rng.integers(0, n_classes))
            features[t:t + width, label] += 2.0
            segments.append([t, t + width])
            labels.append(label)
            t += width + int(rng.integers(4, 10))
        centres = np.arange(length) + 0.5  # grid index g <-> g + 0.5 seconds
        seg = np.array(segments, dtype=np.float64) + 0.5 - 0.5  # seconds of boundaries
        videos.append(TadVideo(i, f"v{seed}_{i}", features, np.arange(length), seg, np.array(labels),
                               FeatureGrid(centres, duration=float(length))))
    return videos


def test_training_fits_planted_sequences():
    train, test = planted_videos(10, 0), planted_videos(6, 1)
    config = tiny_config(max_seq_len=64, input_noise=0.0)
    recipe = TriDetTrainConfig(lr=3e-3, batch_size=5, warmup_epochs=2, epochs=18, ema_decay=0.8, seed=0)
    _, ema, losses = train_tridet(train, config, recipe, torch.device("cpu"))
    assert losses[-1] < losses[0]
    result = evaluate_detections(ground_truth_of(test), detect_videos(ema.module, test, torch.device("cpu")))
    assert result.mAP[0] > 0.6, result.mAP  # tIoU 0.3 on held-out videos (measured 1.0; random segments: 0.13)


def test_training_is_seeded():
    train = planted_videos(4, 0)
    recipe = TriDetTrainConfig(batch_size=2, warmup_epochs=0, epochs=1, seed=3)
    runs = [train_tridet(train, tiny_config(), recipe, torch.device("cpu"))[1].module for _ in range(2)]
    for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values()):
        torch.testing.assert_close(a, b)


def test_head_checkpoint_round_trip(tmp_path):
    model = TriDet(tiny_config())
    path = save_head(tmp_path / "head.safetensors", model, {"store": "x"})
    loaded, meta = load_head(path, "cpu", expected="tridet")
    assert meta["store"] == "x" and loaded.config == model.config
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)
    with pytest.raises(FeatstoreError, match="not a 'mgfn' head"):
        load_head(path, "cpu", expected="mgfn")
    with pytest.raises(FeatstoreError, match="no saved head"):
        load_head(tmp_path / "missing.safetensors")
    (tmp_path / "head.json").write_text("{not json")
    with pytest.raises(FeatstoreError, match="not valid JSON"):
        load_head(path)


def test_a_videos_detections_do_not_depend_on_its_batch_mates():
    """The SGP blocks' GroupNorm and global mean see the padding, so inference pads each video alone (TriDet
    infers one video at a time): a short video gives the same detections next to a longer one, in any order."""
    torch.manual_seed(0)
    model = TriDet(tiny_config()).eval()
    short, other = planted_videos(2, 4)
    rng = np.random.default_rng(5)
    longer = TadVideo(9, "long", rng.normal(0, 0.3, (150, 8)).astype(np.float32), np.arange(150),
                      np.zeros((0, 2)), np.zeros(0, np.int64), FeatureGrid(np.arange(150) + 0.5, 150.0))
    alone = detect_videos(model, [short], torch.device("cpu"))
    assert len(alone) > 0
    for batch in ([short, longer], [longer, short, other], [other, short]):
        together = detect_videos(model, batch, torch.device("cpu"))
        mine = together.video == short.video_id
        np.testing.assert_array_equal(together.score[mine], alone.score)
        np.testing.assert_array_equal(together.start[mine], alone.start)
        np.testing.assert_array_equal(together.end[mine], alone.end)
        np.testing.assert_array_equal(together.label[mine], alone.label)
