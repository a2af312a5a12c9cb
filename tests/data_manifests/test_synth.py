"""The built-in synthetic dataset generator (data_manifests.synth) on a tiny config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from data_manifests import synth
from data_manifests.errors import FeatstoreError
from data_manifests.schema import Manifest
from data_manifests.synth import (
    AD_CLASS_NAMES, ATTRIBUTE_NAMES, CLASS_NAMES, PARTS, STYLES, SynthConfig, SynthStyle, generate_synthetic,
    manifest_path,
)
from data_manifests.synth import generate
from data_manifests.synth.config import Geometry
from data_manifests.synth.motion import plan_anomaly, trimmed_motion
from data_manifests.synth.planning import SEED_AD, plan, seeded_rng

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
    real = generate.write_mp4

    def failing(path, frames, fps):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("disk full")
        real(path, frames, fps)

    monkeypatch.setattr(generate, "write_mp4", failing)
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
    items = [i for i in plan(SynthConfig()) if i.part == "synthetic"]
    train = {i.subject for i in items if i.split == "train"}
    test = {i.subject for i in items if i.split == "test"}
    assert train == set(range(42)) and test == set(range(42, 72))


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


def test_anomaly_kinds_name_the_manifest_intervals(generated, manifests):
    root, _ = generated
    assert synth.saved_config(root) == tiny()
    kinds = synth.anomaly_kinds(synth.saved_config(root))
    records = manifests["synthetic-ad"].records
    assert set(kinds) == {r.video_id for r in records}
    for record in records:
        assert [(s.start, s.end) for s in record.segments] == [(a, b) for a, b, _ in kinds[record.video_id]]
        assert {kind for *_, kind in kinds[record.video_id]} <= set(synth.ANOMALY_KINDS)


def test_anomaly_kinds_say_what_the_interval_holds():
    # an intruder interval is exactly where a second actor is drawn; an erratic one is where the actor jumps
    config = tiny(ad_train_videos=8, ad_test_videos=8)
    kinds = synth.anomaly_kinds(config)
    geo = Geometry.of(config)
    subjects = generate._subjects(config, geo)
    seen = set()
    for item in plan(config):
        if item.part != "synthetic-ad" or not item.anomalous:
            continue
        state, intervals, extra = plan_anomaly(item, subjects, seeded_rng(config, SEED_AD, item.index), geo)
        fps = config.fps
        assert [(round(a / fps, 6), round(b / fps, 6), k) for a, b, k in intervals] == kinds[item.video_id]
        drawn = [(int(frames[0]), int(frames[-1]) + 1) for _, _, frames in extra]
        assert drawn == [(a, b) for a, b, kind in intervals if kind == "intruder"]
        steps = np.abs(np.diff(state[:, :2], axis=0)).max(axis=1)  # steps[t]: frame t -> t + 1
        outside = np.ones(len(steps), dtype=bool)
        for a, b, _ in intervals:
            outside[max(0, a - 1):b] = False
        for a, b, kind in intervals:
            seen.add(kind)
            if kind == "erratic":  # jumps of up to a quarter of the frame against a smooth path outside
                assert steps[a:b - 1].max() > 2 * steps[outside].max()
    assert seen == set(synth.ANOMALY_KINDS)


def test_saved_config_of_a_root_without_settings_is_a_clear_error(tmp_path):
    with pytest.raises(FeatstoreError, match="no synth_config.json"):
        synth.saved_config(tmp_path)


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
    geo = Geometry.of(config)
    cls = CLASS_NAMES.index(name)
    starts = []
    for index in range(20):
        rng = np.random.default_rng([7, index])
        state = trimmed_motion(cls, 56, rng, geo)
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


# ------------------------------------------------------------------------------------------ styles
# Digests of the default tiny dataset as made before styles existed: every rendered frame/image before
# encoding (independent of the x264 build) and the four manifests. The default style must keep them.
DEFAULT_PIXELS_SHA256 = "774708678d74c51ca2d76ae8b2969d629546e2613cb82397739e9ea8d7fdd419"
DEFAULT_MANIFESTS_SHA256 = "6be6a6078e7f1eda4a77fb256229bbe8374390650d08640e08a9f2cdaf572a09"


def _rendered_digest(out: Path, config: SynthConfig, monkeypatch) -> tuple[str, str]:
    import hashlib

    digests = {}

    def capture(path, frames, *_):
        digests[Path(path).name] = hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()

    monkeypatch.setattr(generate, "write_mp4", capture)
    monkeypatch.setattr(generate, "write_png", capture)
    generate_synthetic(out, config, show_progress=False)
    pixels = hashlib.sha256("".join(f"{k}:{digests[k]}\n" for k in sorted(digests)).encode()).hexdigest()
    manifests = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((out / "manifests").iterdir(),
                                                                         key=lambda p: p.name))).hexdigest()
    return pixels, manifests


def test_default_style_renders_exactly_what_it_did_before_styles(tmp_path, monkeypatch):
    assert SynthConfig().style == SynthStyle() == STYLES["default"]
    assert "style" not in SynthConfig().to_json()  # synth_config.json of a default dataset is unchanged too
    assert _rendered_digest(tmp_path, tiny(), monkeypatch) == (DEFAULT_PIXELS_SHA256, DEFAULT_MANIFESTS_SHA256)
    assert _rendered_digest(tmp_path / "named", tiny(style="default"), monkeypatch)[0] == DEFAULT_PIXELS_SHA256


def test_variant_preset_differs_in_every_parameter_group():
    default, variant = STYLES["default"], STYLES["variant"]
    groups = {
        "colours": ["skin_light", "skin_dark", "skin_light_ramp", "skin_dark_ramp", "skin_jitter", "cloth_saturation",
                    "cloth_value", "stripe_mix", "wall_saturation", "wall_value", "floor_hue", "floor_saturation",
                    "floor_value", "sky_hue", "sky_saturation", "sky_value", "ground_hue", "ground_saturation",
                    "ground_value", "indoor_horizon", "outdoor_horizon"],
        "textures": ["stripe_period", "stripe_angle", "ground_relief", "ground_cells", "ground_grain"],
        "sizes": ["actor_frac", "body_size", "scale", "body_width", "body_height", "body_center", "head_radius",
                  "hand_radius"],
        "speeds": ["move_speed", "rotate_speed", "scale_speed", "bounce_height", "bounce_period", "orbit_radius",
                   "orbit_period", "tremor_position", "tremor_angle"],
        "motion patterns": ["ramp_power", "bounce_power", "orbit_aspect"],
    }
    from dataclasses import fields as dc_fields

    assert sorted(sum(groups.values(), [])) == sorted(f.name for f in dc_fields(SynthStyle) if f.name != "name")
    for group, names in groups.items():
        for name in names:
            assert getattr(variant, name) != getattr(default, name), (group, name)
    assert synth.STYLE_SEEDS == {"default": 0, "variant": 7, "dev": 23}
    config = synth.preset_config("variant")
    assert config.seed == 7 and config.style is variant and synth.preset_config("default") == SynthConfig()


def test_dev_preset_is_a_third_look_for_tuning():
    from data_manifests.registry import list_datasets

    default, variant, dev = STYLES["default"], STYLES["variant"], STYLES["dev"]
    config = synth.preset_config("dev")
    assert config.seed == 23 and config.style is dev
    # colours, textures, sizes, speeds and motion patterns of its own
    for name in ("floor_hue", "sky_hue", "ground_hue", "stripe_angle", "stripe_period", "actor_frac", "move_speed",
                 "ramp_power", "bounce_power", "orbit_aspect"):
        assert getattr(dev, name) != getattr(default, name) and getattr(dev, name) != getattr(variant, name), name
    entries = {entry.name: entry for entry in list_datasets()}
    for part in PARTS:
        entry = entries[synth.part_name(part, "dev")]
        assert entry.default_root == Path("data/synth-dev") and "for tuning" in entry.description


@pytest.fixture(scope="module")
def variant_generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_variant")
    generate_synthetic(out, tiny(style="variant"), show_progress=False)
    return out


def test_variant_keeps_the_structure_and_records_its_style(variant_generated, generated, manifests):
    out, _ = generated
    for part in PARTS:
        default, variant = manifests[part], Manifest.load(manifest_path(variant_generated, part))
        assert variant.header.name == synth.part_name(part, "variant") == part.replace("synthetic", "synthetic-variant")
        assert variant.header.description.endswith(", style variant.")
        assert not default.header.description.endswith(", style variant.") and default.header.name == part
        for key in ("task", "class_names", "attribute_names", "root"):
            assert getattr(variant.header, key) == getattr(default.header, key)
        # same seed, other style: the same plan (ids, splits, subjects, labels, attributes), other pixels
        assert [(r.video_id, r.split, r.subject, r.label, r.attributes, r.n_frames) for r in variant.records] == \
            [(r.video_id, r.split, r.subject, r.label, r.attributes, r.n_frames) for r in default.records]
    saved = json.loads((variant_generated / "synth_config.json").read_text())
    assert saved["style"]["name"] == "variant" and SynthConfig(**saved) == tiny(style="variant")
    first, second = _files(out), _files(variant_generated)
    assert all(first[name] != second[name] for name in first if name.endswith((".mp4", ".png")))


def test_variant_is_deterministic(variant_generated, tmp_path):
    again = tmp_path / "again"
    generate_synthetic(again, tiny(style=STYLES["variant"]), show_progress=False)
    assert _files(again) == _files(variant_generated)


def test_variant_looks_different(variant_generated, generated):
    """The variant's still images differ in colour statistics (backgrounds, skin, clothes) from the default's."""
    out, _ = generated

    def mean_colour(root: Path) -> np.ndarray:
        return np.mean([np.asarray(Image.open(p), dtype=np.float64).mean(axis=(0, 1))
                        for p in sorted((root / "images").glob("*.png"))], axis=0)

    assert np.abs(mean_colour(out) - mean_colour(variant_generated)).max() > 5.0


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_variant_trajectories_follow_the_class_and_stay_in_frame(name):
    config = SynthConfig(style="variant")
    geo = Geometry.of(config)
    cls = CLASS_NAMES.index(name)
    expected = {"move_left": (0, -1), "move_right": (0, 1), "move_up": (1, -1), "move_down": (1, 1),
                "rotate_cw": (3, 1), "rotate_ccw": (3, -1), "grow": (2, 1), "shrink": (2, -1)}
    for index in range(10):
        state = trimmed_motion(cls, 56, np.random.default_rng([7, index]), geo)
        assert (state[:, :3] >= geo.lows() - 1e-9).all() and (state[:, :3] <= geo.highs() + 1e-9).all()
        if name in expected:
            dim, sign = expected[name]
            steps = np.diff(state[:, dim])
            assert (sign * steps >= 0).all() and sign * (state[-1, dim] - state[0, dim]) > 0
            assert abs(steps[-1]) > abs(steps[1])  # ramp_power 1.5: the motion accelerates
        else:
            assert np.ptp(state[:, :2], axis=0).max() > 3


@pytest.mark.parametrize("bad", [
    dict(skin_light=(300.0, 0.0, 0.0)), dict(skin_dark=(1.0, 2.0)), dict(cloth_value=(0.9, 0.1)),
    dict(cloth_saturation="high"), dict(stripe_period=(0.0, 0.3)), dict(stripe_angle=float("nan")),
    dict(ground_cells=1.5), dict(ground_cells=True), dict(actor_frac=0.5), dict(move_speed=(-1.0, 1.0)),
    dict(skin_light_ramp=(0.0, 0.8)), dict(body_height=0.8), dict(name="Bad Name"), dict(name=""),
    dict(name="variant"),  # a preset's name with other values
])
def test_invalid_style_values_are_one_line_errors(bad):
    fields = {"name": "custom", **bad}
    with pytest.raises(FeatstoreError) as info:
        SynthStyle(**fields)
    assert "\n" not in str(info.value) and "SynthStyle." in str(info.value)


@pytest.mark.parametrize("style, message", [
    ("nope", "unknown synthetic style 'nope' (known: default, variant, dev)"),
    ({"name": "x", "bogus": 1}, "unknown SynthStyle fields ['bogus']"),
    ({"actor_frac": 0.1}, "needs a 'name'"),
    (3, "must be a preset name or an object"),
])
def test_invalid_styles_in_a_config_are_one_line_errors(style, message):
    with pytest.raises(FeatstoreError, match=re.escape(message)) as info:
        tiny(style=style)
    assert "\n" not in str(info.value)


def test_a_style_too_big_for_the_frame_is_refused():
    with pytest.raises(FeatstoreError, match="leaves no room") as info:
        SynthConfig(height=32, width=32, style={"name": "big", "actor_frac": 0.3, "scale": (1.0, 4.0)})
    assert "\n" not in str(info.value)


def test_custom_style_from_json_fields():
    config = tiny(style={"name": "greyish", "sky_hue": [0.0, 0.1], "ground_cells": 4})
    assert config.style.sky_hue == (0.0, 0.1) and config.style.ground_cells == 4
    assert config.style.move_speed == SynthStyle().move_speed
    assert SynthConfig(**json.loads(json.dumps(config.to_json()))) == config
    assert synth.part_name("synthetic-ad", config.style) == "synthetic-greyish-ad"


# ------------------------------------------------------------------------------------------ registry
def test_variant_dataset_names_resolve(variant_generated, generated):
    from data_manifests.registry import VARIANT_SYNTH_ROOT, list_datasets, resolve_dataset
    from data_manifests.schema import ManifestError

    entries = {entry.name: entry for entry in list_datasets()}
    for part in PARTS:
        name = synth.part_name(part, "variant")
        assert entries[name].default_root == VARIANT_SYNTH_ROOT == Path("data/synth-variant")
        manifest = resolve_dataset(name, variant_generated)
        assert manifest.header.name == name and manifest.header.task == Manifest.load(manifest_path(
            variant_generated, part)).header.task
    out, _ = generated
    # a folder of the other style is refused with a one-line hint
    with pytest.raises(ManifestError, match="--dataset synthetic-variant-tad or --dataset") as info:
        resolve_dataset("synthetic-tad", variant_generated)
    assert "\n" not in str(info.value)
    with pytest.raises(ManifestError, match="holds the synthetic dataset 'synthetic'"):
        resolve_dataset("synthetic-variant", out)


def test_variant_is_generated_on_first_use(tmp_path, monkeypatch):
    from data_manifests.registry import resolve_dataset

    asked = []

    def small_preset(style="default", **overrides):
        asked.append(style)
        return tiny(seed=synth.STYLE_SEEDS[style], style=style)

    monkeypatch.setattr(synth, "preset_config", small_preset)
    root = tmp_path / "fresh"
    manifest = resolve_dataset("synthetic-variant-images", root)
    assert asked == ["variant"] and manifest.header.name == "synthetic-variant-images"
    assert json.loads((root / "synth_config.json").read_text())["seed"] == 7
    resolve_dataset("synthetic-variant", root)  # present now: not generated again
    assert asked == ["variant"]


# ------------------------------------------------------------------------------------------ stale default roots
@pytest.fixture
def default_roots(tmp_path, monkeypatch) -> Path:
    """A fresh working folder (data/synth* relative to it) whose style presets are the tiny config."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(synth, "preset_config", lambda style="default", **overrides: tiny(
        seed=synth.STYLE_SEEDS[style], style=style, **overrides))
    return tmp_path


def _resolve_error(name: str, data_root: Path | None = None) -> str:
    from data_manifests.registry import resolve_dataset
    from data_manifests.schema import ManifestError

    with pytest.raises(ManifestError) as info:
        resolve_dataset(name, data_root)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_a_default_root_of_the_preset_is_read(default_roots, generated):
    import shutil

    from data_manifests.registry import DEFAULT_SYNTH_ROOT, resolve_dataset

    shutil.copytree(generated[0], DEFAULT_SYNTH_ROOT)
    for part in PARTS:
        assert resolve_dataset(part).header.name == part


def test_a_default_root_made_with_other_counts_is_refused_naming_them(default_roots):
    import shutil

    from data_manifests.registry import DEFAULT_SYNTH_ROOT, resolve_dataset

    generate_synthetic(DEFAULT_SYNTH_ROOT, tiny(ad_train_videos=4, ad_test_videos=6), show_progress=False)
    for part in PARTS:  # every part of the root, not only the one whose settings changed
        message = _resolve_error(part)
        assert "data/synth was generated with other settings than the 'default' preset: ad_test_videos 6 " \
               "(expected 2); ad_train_videos 4 (expected 2);" in message
        assert "featstore synth --out data/synth`" in message and f"--dataset data/synth/manifests/{part}.jsonl" in message
    assert _resolve_error("synthetic-ad", DEFAULT_SYNTH_ROOT.resolve()) == _resolve_error("synthetic-ad").replace(
        "data/synth", str(DEFAULT_SYNTH_ROOT.resolve()))  # the same folder however it is spelled
    # the data as it is: by manifest path, or under another --data-root (a folder its maker chose)
    assert len(resolve_dataset(str(manifest_path(DEFAULT_SYNTH_ROOT, "synthetic-ad"))).records) == 10
    shutil.copytree(DEFAULT_SYNTH_ROOT, "custom")
    assert len(resolve_dataset("synthetic-ad", Path("custom")).records) == 10
    # the fix the message gives: regenerate with the preset
    generate_synthetic(DEFAULT_SYNTH_ROOT, synth.preset_config(), show_progress=False)
    assert len(resolve_dataset("synthetic-ad").records) == 4


def test_a_stale_default_root_is_refused_by_the_cli_before_anything_is_written(default_roots, monkeypatch, capsys):
    from tests.conftest import run_in_process

    generate_synthetic(Path("data/synth"), tiny(seed=5, n_subjects=6, image_train=4, ad_test_videos=4),
                       show_progress=False)
    code, _, err = run_in_process(monkeypatch, capsys, "featstore", "manifest", "synthetic-images", "--out", "m.jsonl")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    # a few fields are named, the rest counted
    assert "ad_test_videos 4 (expected 2); image_train 4 (expected 8); n_subjects 6 (expected 4); 1 more;" in err
    assert "Traceback" not in err and not Path("m.jsonl").exists()


def test_a_default_root_without_its_settings_file_is_refused(default_roots, generated):
    import shutil

    from data_manifests.registry import DEFAULT_SYNTH_ROOT, resolve_dataset

    shutil.copytree(generated[0], DEFAULT_SYNTH_ROOT)
    (DEFAULT_SYNTH_ROOT / "synth_config.json").unlink()  # as a version before the file existed left it
    assert "data/synth has no synth_config.json (made by an old version), so its settings are unknown; remove that " \
           "folder" in _resolve_error("synthetic")
    assert resolve_dataset("synthetic", generated[0]).header.name == "synthetic"  # elsewhere: read as it is
    shutil.copytree(DEFAULT_SYNTH_ROOT, "old")
    assert resolve_dataset("synthetic", Path("old")).header.name == "synthetic"


def test_a_stale_variant_root_is_refused_with_its_style(default_roots, variant_generated):
    import shutil

    from data_manifests.registry import VARIANT_SYNTH_ROOT, resolve_dataset

    shutil.copytree(variant_generated, VARIANT_SYNTH_ROOT)  # made with seed 0, the variant preset's is 7
    message = _resolve_error("synthetic-variant-tad")
    assert "data/synth-variant was generated with other settings than the 'variant' preset: seed 0 (expected 7);" \
           in message and "featstore synth --out data/synth-variant --style variant`" in message
    generate_synthetic(VARIANT_SYNTH_ROOT, synth.preset_config("variant"), show_progress=False)
    assert resolve_dataset("synthetic-variant-tad").header.name == "synthetic-variant-tad"


def test_saved_settings_are_compared_field_by_field(tmp_path, generated, variant_generated):
    from data_manifests.synth import saved_config_differences

    assert saved_config_differences(generated[0], tiny()) == []
    assert saved_config_differences(tmp_path, tiny()) is None  # no synth_config.json
    assert saved_config_differences(generated[0], tiny(fps=30)) == ["fps 25.0 (expected 30.0)"]
    # a style is compared by its fields (the default style is not written in the file)
    variant = saved_config_differences(generated[0], tiny(style="variant"))
    assert 'style.name "default" (expected "variant")' in variant and len(variant) > 20
    assert saved_config_differences(variant_generated, tiny(style="variant")) == []
    # a field an older version wrote, or did not write, is a difference too
    (tmp_path / "synth_config.json").write_text(json.dumps({**tiny().to_json(), "clip_noise": 2, "seed": None}))
    assert saved_config_differences(tmp_path, tiny()) == ["clip_noise 2 (expected absent)", "seed null (expected 0)"]
    (tmp_path / "synth_config.json").write_text("[1, 2]")
    with pytest.raises(FeatstoreError, match="must hold a JSON object"):
        saved_config_differences(tmp_path, tiny())


def test_data_synth_from_before_the_ad_counts_grew_is_refused(tmp_path, monkeypatch, generated):
    import shutil

    from data_manifests.registry import DEFAULT_SYNTH_ROOT

    monkeypatch.chdir(tmp_path)
    shutil.copytree(generated[0], DEFAULT_SYNTH_ROOT)
    # the settings file of a data/synth the registry generated when the preset had 12 + 12 AD videos
    (DEFAULT_SYNTH_ROOT / "synth_config.json").write_text(json.dumps(
        {**synth.preset_config().to_json(), "ad_train_videos": 12, "ad_test_videos": 12}))
    preset = synth.preset_config()
    assert preset.ad_train_videos != 12 and preset.ad_test_videos != 12
    assert f"other settings than the 'default' preset: ad_test_videos 12 (expected {preset.ad_test_videos}); " \
           f"ad_train_videos 12 (expected {preset.ad_train_videos}); remove that folder" in _resolve_error("synthetic-ad")


def test_data_synth_from_before_the_trimmed_part_grew_is_refused(tmp_path, monkeypatch, generated):
    import shutil

    from data_manifests.registry import DEFAULT_SYNTH_ROOT

    monkeypatch.chdir(tmp_path)
    shutil.copytree(generated[0], DEFAULT_SYNTH_ROOT)
    # the settings file of a data/synth the registry generated when the trimmed part had 14 + 6 videos per
    # class of 24 subjects: its stores would train the AAM on a third of the videos the docs measure
    (DEFAULT_SYNTH_ROOT / "synth_config.json").write_text(json.dumps(
        {**synth.preset_config().to_json(), "n_subjects": 24, "train_per_class": 14, "test_per_class": 6}))
    preset = synth.preset_config()
    assert (preset.n_subjects, preset.train_per_class, preset.test_per_class) == (72, 42, 18)
    assert f"other settings than the 'default' preset: n_subjects 24 (expected 72); test_per_class 6 (expected 18); " \
           f"train_per_class 14 (expected 42); remove that folder" in _resolve_error("synthetic")
