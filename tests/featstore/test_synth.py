"""The built-in synthetic dataset generator (featstore.synth) on a tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from data_manifests.schema import Manifest
from featstore import synth
from featstore.errors import FeatstoreError
from featstore.synth import (
    AD_CLASS_NAMES, ATTRIBUTE_NAMES, CLASS_NAMES, PARTS, SynthConfig, generate_synthetic, manifest_path,
)

TINY = dict(
    height=64, width=64, n_subjects=4,
    train_per_class=2, test_per_class=2, trimmed_min_frames=32, trimmed_max_frames=40,
    tad_train_videos=2, tad_test_videos=2, tad_min_frames=64, tad_max_frames=80,
    tad_min_segments=1, tad_max_segments=2, tad_min_segment_frames=16, tad_max_segment_frames=24,
    ad_train_videos=2, ad_test_videos=2, ad_min_frames=48, ad_max_frames=56,
    ad_min_anomaly_frames=8, ad_max_anomaly_frames=16,
    image_train=8, image_test=8,
)


def tiny(**overrides) -> SynthConfig:
    return SynthConfig(**{**TINY, **overrides})


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("synth_a")
    return out, generate_synthetic(out, tiny(), show_progress=False)


@pytest.fixture(scope="module")
def manifests(generated) -> dict[str, Manifest]:
    _, paths = generated
    return {part: Manifest.load(path) for part, path in paths.items()}


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("bad", [
    dict(seed=-1), dict(height=63), dict(width=16), dict(fps=0), dict(n_subjects=1),
    dict(train_per_class=0), dict(trimmed_min_frames=40, trimmed_max_frames=30),
    dict(ad_test_videos=1), dict(ad_anomaly_fraction=1.0), dict(height=64.0), dict(seed=True),
    dict(tad_min_frames=30, tad_max_frames=80),
])
def test_config_rejects_bad_values(bad):
    with pytest.raises(FeatstoreError) as info:
        tiny(**bad)
    assert "\n" not in str(info.value)


def test_default_config_is_valid_and_json_round_trips():
    config = SynthConfig()
    assert SynthConfig(**json.loads(json.dumps(config.to_json()))) == config


def test_manifest_path():
    assert manifest_path(Path("/x"), "synthetic-tad") == Path("/x/manifests/synthetic-tad.jsonl")
    with pytest.raises(FeatstoreError):
        manifest_path(Path("/x"), "nope")


# ------------------------------------------------------------------------------------------ layout
def test_manifests_load_and_files_exist(generated, manifests):
    out, paths = generated
    assert set(paths) == set(PARTS)
    for part, path in paths.items():
        assert path == manifest_path(out, part)
        manifest = manifests[part]
        manifest.check_files()
        assert manifest.root_dir == out.resolve()
        assert manifest.header.attribute_names == ATTRIBUTE_NAMES
        assert {r.split for r in manifest.records} == {"train", "test"}
    assert manifests["synthetic"].header.task == "action"
    assert manifests["synthetic-tad"].header.task == "tad"
    assert manifests["synthetic-ad"].header.task == "ad"
    assert manifests["synthetic-images"].header.task == "static"
    assert len(manifests["synthetic"].records) == len(CLASS_NAMES) * (2 + 2)
    saved = json.loads((out / "synth_config.json").read_text())
    assert SynthConfig(**saved) == tiny()


def test_video_metadata_matches_decoded_frames(manifests):
    for part in ("synthetic", "synthetic-tad", "synthetic-ad"):
        manifest = manifests[part]
        for record in manifest.records[:3]:
            frames = _decode(manifest.resolve_path(record))
            assert frames.shape == (record.n_frames, 64, 64, 3)
            assert record.fps == 25.0
            assert record.duration == pytest.approx(record.n_frames / record.fps)
            assert record.media == "video"


def test_images_part(manifests):
    manifest = manifests["synthetic-images"]
    assert len(manifest.records) == 16
    for record in manifest.records:
        assert record.media == "image" and record.n_frames == 1
        assert record.fps is None and record.duration is None and record.label is None
        with Image.open(manifest.resolve_path(record)) as image:
            assert image.format == "PNG" and image.size == (64, 64) and image.mode == "RGB"
    for split in ("train", "test"):
        attrs = np.array([r.attributes for r in manifest.split(split)])
        assert (attrs.mean(axis=0) == 0.5).all()


# ------------------------------------------------------------------------------------------ determinism
def test_deterministic_bytes_and_seed_dependence(generated, tmp_path):
    out, _ = generated
    again = tmp_path / "again"
    generate_synthetic(again, tiny(), show_progress=False)
    assert _files(again) == _files(out)
    other = tmp_path / "other"
    generate_synthetic(other, tiny(seed=1), show_progress=False)
    first, second = _files(out), _files(other)
    assert first.keys() == second.keys()
    media = [name for name in first if name.endswith((".mp4", ".png"))]
    assert all(first[name] != second[name] for name in media)


def test_interrupted_generation_leaves_no_manifest(tmp_path, monkeypatch, generated):
    out = tmp_path / "broken"
    generate_synthetic(out, tiny(), show_progress=False)
    calls = {"n": 0}
    real = synth._write_mp4

    def failing(path, frames, fps):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("disk full")
        real(path, frames, fps)

    monkeypatch.setattr(synth, "_write_mp4", failing)
    with pytest.raises(FeatstoreError, match="disk full"):
        generate_synthetic(out, tiny(), show_progress=False)
    assert not any(manifest_path(out, part).exists() for part in PARTS)
    assert not (out / "synth_config.json").exists()
    assert not list(out.rglob("*.tmp"))


# ------------------------------------------------------------------------------------------ structure
def test_attributes_balanced_and_independent_of_labels(manifests):
    manifest = manifests["synthetic"]
    for split in ("train", "test"):
        for cls in range(len(CLASS_NAMES)):
            attrs = np.array([r.attributes for r in manifest.split(split) if r.label == cls])
            assert len(attrs) == 2
            # every (class, split) cell holds both values of every attribute, equally often
            assert (attrs.sum(axis=0) == 1).all()
    labels = {r.label for r in manifest.records}
    assert labels == set(range(len(CLASS_NAMES)))


def test_subject_keeps_its_appearance(manifests):
    seen: dict[str, list[int]] = {}
    for part in ("synthetic", "synthetic-tad", "synthetic-ad"):
        for record in manifests[part].records:
            assert record.subject is not None and record.subject.startswith("s")
            assert seen.setdefault(record.subject, record.attributes) == record.attributes
    assert len(seen) == 4
    attrs = np.array(list(seen.values()))
    assert (attrs.sum(axis=0) == 2).all()  # each attribute split evenly over subjects


def test_train_classes_share_their_subjects(manifests):
    """Appearance must not predict the action in training: every train class has the same subjects."""
    by_class: dict[int, list[str]] = {}
    for record in manifests["synthetic"].split("train"):
        by_class.setdefault(record.label, []).append(record.subject)
    subject_lists = [sorted(subjects) for subjects in by_class.values()]
    assert all(subjects == subject_lists[0] for subjects in subject_lists)


def test_test_subjects_are_unseen_in_training_when_there_are_enough():
    from featstore.synth import SynthConfig, _plan

    items = [i for i in _plan(SynthConfig()) if i.part == "synthetic"]
    train = {i.subject for i in items if i.split == "train"}
    test = {i.subject for i in items if i.split == "test"}
    assert train == set(range(14)) and test == set(range(14, 24))


def test_tad_segments_inside_video(manifests):
    manifest = manifests["synthetic-tad"]
    assert manifest.header.class_names == CLASS_NAMES
    for record in manifest.records:
        assert 1 <= len(record.segments) <= 2
        previous_end = 0.0
        for seg in record.segments:
            assert previous_end <= seg.start < seg.end <= record.duration + 1e-9
            assert 0 <= seg.label < len(CLASS_NAMES)
            previous_end = seg.end


def test_ad_part(manifests):
    manifest = manifests["synthetic-ad"]
    assert manifest.header.class_names == AD_CLASS_NAMES
    for split in ("train", "test"):
        assert {r.label for r in manifest.split(split)} == {0, 1}
    for record in manifest.records:
        if record.label == 1:
            assert record.segments
            for seg in record.segments:
                assert seg.label == 1 and 0 <= seg.start < seg.end <= record.duration + 1e-9
        else:
            assert record.segments == []


def _changed_centroid(frame: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean (x, y) of the pixels where ``frame`` differs from ``reference`` (the background is static,
    so these are the pixels covered by the actor in either frame)."""
    mask = np.abs(frame.astype(np.int16) - reference.astype(np.int16)).sum(axis=-1) > 60
    assert mask.sum() >= 10
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_motion_exists_and_has_the_class_direction(manifests):
    manifest = manifests["synthetic"]
    direction = {"move_left": (0, -1), "move_right": (0, 1), "move_up": (1, -1), "move_down": (1, 1)}
    for record in manifest.records:
        frames = _decode(manifest.resolve_path(record))
        # every class changes the picture over time far beyond compression noise
        change = np.abs(frames[-1].astype(np.int16) - frames[0].astype(np.int16)).sum(axis=-1)
        assert (change > 60).sum() >= 10, record.video_id
        name = CLASS_NAMES[record.label]
        if name in direction:
            # the region changed since frame 0 (actor at 0 plus actor at t) drifts the class's way
            axis, sign = direction[name]
            middle = _changed_centroid(frames[len(frames) // 2], frames[0])
            last = _changed_centroid(frames[-1], frames[0])
            assert sign * (last[axis] - middle[axis]) > 1.0, (record.video_id, middle, last)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_trajectories_follow_the_class_and_stay_in_frame(name):
    config = SynthConfig()
    geo = synth._Geometry.of(config)
    cls = CLASS_NAMES.index(name)
    starts = []
    for index in range(20):
        rng = np.random.default_rng([7, index])
        state = synth._trimmed_motion(cls, 56, rng, geo)
        starts.append(state[0])
        assert (state[:, :3] >= geo.lows() - 1e-9).all() and (state[:, :3] <= geo.highs() + 1e-9).all()
        delta = state[-1] - state[0]
        expected = {"move_left": (0, -1), "move_right": (0, 1), "move_up": (1, -1), "move_down": (1, 1),
                    "rotate_cw": (3, 1), "rotate_ccw": (3, -1), "grow": (2, 1), "shrink": (2, -1)}
        if name in expected:
            dim, sign = expected[name]
            assert sign * delta[dim] > 0
            assert np.allclose(np.delete(delta, dim), 0)
        else:  # bounce / orbit: a moving path, not a constant state
            assert np.ptp(state[:, :2], axis=0).max() > 5
    # random starts: a single frame's position/orientation does not give the class away
    starts = np.array(starts)
    assert np.ptp(starts[:, 3]) > 2.0 and np.ptp(starts[:, 0]) > 5 and np.ptp(starts[:, 1]) > 5
