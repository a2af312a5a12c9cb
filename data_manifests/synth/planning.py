"""Every file to produce, with its split, subject and labels (cheap; pixels come later), and the seeding.

The attributes are assigned with a balanced design that makes them independent of the action labels (every
class sees both values of every attribute equally often). Every random draw comes from
``np.random.default_rng`` seeded with ``(seed, part, index)``, so each file depends only on the config and its
own index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_manifests.synth.config import CLASS_NAMES, MIN_GAP, SynthConfig

# Seeding: every file uses default_rng([seed, part_code, index]); subjects use [seed, SEED_SUBJECT, subject];
# the per-part plans (splits, subjects, labels, lengths) use [seed, SEED_PLAN, part_code].
SEED_TRIMMED, SEED_TAD, SEED_AD, SEED_IMAGES, SEED_SUBJECT, SEED_PLAN = 1, 2, 3, 4, 5, 6


@dataclass
class Item:
    part: str
    index: int
    video_id: str
    path: str
    split: str
    subject: int | None
    label: int | None
    n_frames: int
    classes: list[int]                 # TAD: planned segment classes
    lengths: list[int]                 # TAD: segment lengths; AD: anomalous interval lengths
    anomalous: bool = False
    code: int = 0                      # images: position in the balanced attribute-code cycle


def seeded_rng(config: SynthConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, *key])


def subject_id(index: int, n_subjects: int) -> str:
    width = max(2, len(str(n_subjects - 1)))
    return f"s{index:0{width}d}"


def plan(config: SynthConfig) -> list[Item]:
    """Every file to produce, with its split, subject and labels (cheap; pixels come later)."""
    items: list[Item] = []
    ns = config.n_subjects

    # trimmed: every train class gets the SAME run of consecutive subjects 0..train_per_class-1, so in
    # training appearance says nothing about the class (a class-dependent subject set would let a probe
    # learn subject -> class and then fail on test). Test videos cycle through the remaining subjects
    # (unseen in training where there are enough). With even counts every (class, split) cell holds
    # complementary attribute pairs.
    rng = seeded_rng(config, SEED_PLAN, SEED_TRIMMED)
    index = 0
    test_first = config.train_per_class if ns > config.train_per_class else 0
    test_pool = ns - test_first
    cursor = 0
    for split, per_class in (("train", config.train_per_class), ("test", config.test_per_class)):
        for cls in range(len(CLASS_NAMES)):
            for k in range(per_class):
                n = int(rng.integers(config.trimmed_min_frames, config.trimmed_max_frames + 1))
                vid = f"trim_{index:05d}"
                if split == "train":
                    subject = k % ns
                else:
                    subject = test_first + cursor % test_pool
                    cursor += 1
                items.append(Item("synthetic", index, vid, f"trimmed/{vid}.mp4", split, subject, cls, n, [], []))
                index += 1

    # TAD: segment classes drawn from a shuffled balanced pool shared by all videos.
    rng = seeded_rng(config, SEED_PLAN, SEED_TAD)
    cursor = 0
    index = 0
    plans = []
    for split, count in (("train", config.tad_train_videos), ("test", config.tad_test_videos)):
        for _ in range(count):
            n = int(rng.integers(config.tad_min_frames, config.tad_max_frames + 1))
            k = int(rng.integers(config.tad_min_segments, config.tad_max_segments + 1))
            budget = n - (k + 1) * MIN_GAP
            lengths = [int(x) for x in rng.integers(config.tad_min_segment_frames,
                                                    config.tad_max_segment_frames + 1, size=k)]
            excess = sum(lengths) - budget
            while excess > 0:  # keep room for the idle gaps: trim the longest segment (validated to fit)
                longest = int(np.argmax(lengths))
                cut = min(excess, lengths[longest] - config.tad_min_segment_frames)
                lengths[longest] -= cut
                excess -= cut
            plans.append((split, n, lengths))
    pool: list[int] = []
    while len(pool) < sum(len(p[2]) for p in plans):
        pool += [int(c) for c in rng.permutation(len(CLASS_NAMES))]
    used = 0
    for split, n, lengths in plans:
        classes = pool[used:used + len(lengths)]
        used += len(lengths)
        vid = f"tad_{index:05d}"
        items.append(Item("synthetic-tad", index, vid, f"untrimmed/{vid}.mp4", split, cursor % ns, None, n,
                           classes, lengths))
        cursor += 1
        index += 1

    # AD: per split a fixed share of anomalous videos, at random positions.
    rng = seeded_rng(config, SEED_PLAN, SEED_AD)
    cursor = 0
    index = 0
    for split, count in (("train", config.ad_train_videos), ("test", config.ad_test_videos)):
        n_anomalous = min(count - 1, max(1, round(config.ad_anomaly_fraction * count)))
        pairs = count // 2
        if pairs >= 2 and n_anomalous % 2 == 0:
            # whole aligned subject pairs (complementary attributes) share the label, so the anomaly
            # label is balanced against every attribute too
            chosen = rng.permutation(pairs)[: n_anomalous // 2]
            anomalous = {int(2 * p + d) for p in chosen for d in (0, 1)}
        else:
            anomalous = set(int(i) for i in rng.permutation(count)[:n_anomalous])
        for j in range(count):
            n = int(rng.integers(config.ad_min_frames, config.ad_max_frames + 1))
            lengths: list[int] = []
            if j in anomalous:
                k = int(rng.integers(1, config.ad_max_intervals + 1))
                for _ in range(k):
                    lengths.append(int(rng.integers(config.ad_min_anomaly_frames, config.ad_max_anomaly_frames + 1)))
                # intervals keep 8 idle frames at both ends and 16 frames between each other
                while len(lengths) > 1 and sum(lengths) + 16 + 16 * (len(lengths) - 1) > n:
                    lengths.pop()
                lengths[0] = min(lengths[0], n - 16)
            vid = f"ad_{index:05d}"
            items.append(Item("synthetic-ad", index, vid, f"anomaly/{vid}.mp4", split, cursor % ns,
                               int(j in anomalous), n, [], lengths, anomalous=j in anomalous))
            cursor += 1
            index += 1

    # images: fresh identities with attribute codes cycling the balanced order within each split.
    index = 0
    for split, count in (("train", config.image_train), ("test", config.image_test)):
        for j in range(count):
            vid = f"img_{index:05d}"
            items.append(Item("synthetic-images", index, vid, f"images/{vid}.png", split, None, None, 1, [], [], code=j))
            index += 1
    return items
