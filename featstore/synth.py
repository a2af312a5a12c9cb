"""The built-in synthetic video dataset: motion-defined actions, appearance-defined private attributes.

Four parts are generated under one folder, each with its own manifest (``data_manifests/schema.py``):

- ``synthetic``         trimmed clips, one action each (task "action", train/test)
- ``synthetic-tad``     untrimmed videos: idle actor with 2-4 annotated action segments (task "tad")
- ``synthetic-ad``      untrimmed videos, half with anomalous intervals (task "ad", classes normal/anomaly)
- ``synthetic-images``  still PNG frames of actors with attribute labels only (task "static")

The structure is built so that privacy and utility are separable by construction:

- an action class is defined only by how the actor moves across frames (translation direction,
  rotation sense, growth, bouncing, orbiting); start positions, orientations, sizes and phases are
  random, so one frame tells nothing about the class;
- the private attributes (``skin_tone``, ``gender_shape``, ``clothing_texture``, ``scene``) are static
  appearance only, fixed per subject, and assigned with a balanced design that makes them
  independent of the action labels (every class sees both values of every attribute equally often).

How the dataset looks and moves (colours, textures, sizes, speeds, motion profiles) is a ``SynthStyle``
held by ``SynthConfig.style``: ``STYLES["default"]`` (what every default is tuned on) or the preset
``STYLES["variant"]`` (seed 7 by default; dataset names ``synthetic-variant``, ``synthetic-variant-tad``,
...), with the same classes, attributes, balance and splits. A non-default style is recorded in the
manifests (name and description) and in ``synth_config.json``.

Everything is drawn from ``np.random.default_rng`` seeded with ``(seed, part, index)``, so each file
depends only on the config and its own index; two runs with the same config give byte-identical
files. See ``data_manifests/README.md`` for the full description.
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path

import numpy as np

from data_manifests.schema import Manifest, ManifestHeader, Segment, VideoRecord
from data_manifests.errors import FeatstoreError

__all__ = [
    "AD_CLASS_NAMES",
    "ATTRIBUTE_NAMES",
    "CLASS_NAMES",
    "GENERATOR_VERSION",
    "PARTS",
    "STYLES",
    "SynthConfig",
    "SynthStyle",
    "generate_synthetic",
    "manifest_path",
    "part_name",
    "preset_config",
]

GENERATOR_VERSION = 2  # 2: trimmed classes share one subject run per split
PARTS = ("synthetic", "synthetic-tad", "synthetic-ad", "synthetic-images")
CLASS_NAMES = [
    "move_left", "move_right", "move_up", "move_down", "rotate_cw",
    "rotate_ccw", "grow", "shrink", "bounce", "orbit",
]
AD_CLASS_NAMES = ["normal", "anomaly"]
# 0/1 meaning: skin_tone 0 light / 1 dark; gender_shape 0 angular (rectangle body) / 1 round (ellipse
# body); clothing_texture 0 plain / 1 striped; scene 0 indoor (smooth walls + floor) / 1 outdoor
# (sky + noisy textured ground).
ATTRIBUTE_NAMES = ["skin_tone", "gender_shape", "clothing_texture", "scene"]
CONFIG_FILE = "synth_config.json"

(MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN, ROTATE_CW, ROTATE_CCW, GROW, SHRINK, BOUNCE, ORBIT) = range(10)
# The class a motion becomes when its displacement is negated (used to keep the actor in frame).
_MIRROR = {MOVE_LEFT: MOVE_RIGHT, MOVE_RIGHT: MOVE_LEFT, MOVE_UP: MOVE_DOWN, MOVE_DOWN: MOVE_UP,
           ROTATE_CW: ROTATE_CCW, ROTATE_CCW: ROTATE_CW, GROW: SHRINK, SHRINK: GROW, BOUNCE: BOUNCE, ORBIT: ORBIT}

# Seeding: every file uses default_rng([seed, part_code, index]); subjects use [seed, _SUBJECT, subject];
# the per-part plans (splits, subjects, labels, lengths) use [seed, _PLAN, part_code].
_TRIMMED, _TAD, _AD, _IMAGES, _SUBJECT, _PLAN = 1, 2, 3, 4, 5, 6

_SPRITE_EXTENT = 0.95              # every sprite pixel lies within this many R of the pivot
_SUPERSAMPLE = 3                   # sprite pixels per output pixel at scale 1
_MIN_GAP = 4                       # minimum idle frames between TAD segments
# One thread and no lookahead-driven decisions: x264's macroblock-tree rate control (on by default) gave
# different bytes for identical frames depending on what was encoded before in the same process.
_X264_OPTIONS = {"crf": "20", "preset": "veryfast", "threads": "1",
                 "x264-params": "mbtree=0:rc-lookahead=0:b-adapt=0:scenecut=0"}


# ---------------------------------------------------------------------------------------------- style
Range = tuple[float, float]


@dataclass(frozen=True)
class SynthStyle:
    """How the dataset looks and moves: colours, textures, sizes and speeds (the structure — classes,
    attributes, balance, splits — is the same for every style).

    Ranges are inclusive ``(low, high)`` pairs a value is drawn uniformly from. Hues, saturations and
    values are HSV in 0..1; sizes are in units of the actor radius R unless said otherwise. The defaults
    are the ``default`` style (the dataset every default is tuned on); ``STYLES["variant"]`` is a second
    preset. Every value is validated on construction; a bad one raises a one-line ``FeatstoreError``.
    """

    name: str = "default"
    # -- colours: skin (attribute skin_tone: light = low ramp position, dark = high)
    skin_light: tuple[float, float, float] = (250.0, 218.0, 190.0)   # RGB at ramp position 0
    skin_dark: tuple[float, float, float] = (72.0, 44.0, 28.0)       # RGB at ramp position 1
    skin_light_ramp: Range = (0.0, 0.3)    # ramp positions of light-skinned actors
    skin_dark_ramp: Range = (0.7, 1.0)     # ramp positions of dark-skinned actors
    skin_jitter: float = 8.0               # +- per RGB channel
    # -- colours: clothing (hue is uniform over the colour wheel)
    cloth_saturation: Range = (0.35, 0.8)
    cloth_value: Range = (0.35, 0.85)
    stripe_mix: float = 0.3                # share of the clothing colour in the stripe colour
    # -- colours: indoor scene (wall hues are uniform over the colour wheel)
    wall_saturation: Range = (0.08, 0.3)
    wall_value: Range = (0.6, 0.92)
    floor_hue: Range = (0.02, 0.12)
    floor_saturation: Range = (0.2, 0.45)
    floor_value: Range = (0.3, 0.55)
    indoor_horizon: Range = (0.62, 0.8)    # floor starts at this fraction of the height
    # -- colours and texture: outdoor scene
    sky_hue: Range = (0.55, 0.62)
    sky_saturation: Range = (0.3, 0.55)
    sky_value: Range = (0.8, 1.0)
    outdoor_horizon: Range = (0.25, 0.45)
    ground_hue: Range = (0.12, 0.33)
    ground_saturation: Range = (0.35, 0.65)
    ground_value: Range = (0.35, 0.6)
    ground_relief: Range = (0.7, 1.3)      # brightness factor of the coarse ground pattern
    ground_cells: int = 8                  # the coarse pattern is a cells x cells grid, upsampled
    ground_grain: float = 14.0             # std of the per-pixel ground noise (RGB levels)
    # -- textures: clothing stripes (attribute clothing_texture)
    stripe_period: Range = (0.24, 0.32)    # in R
    stripe_angle: float = 0.0              # degrees; 0 = horizontal bands
    # -- sizes
    actor_frac: float = 0.16               # R as a fraction of min(height, width)
    body_size: Range = (0.9, 1.1)          # per-identity size factor
    scale: Range = (0.7, 1.4)              # per-frame actor scale (the state's scale stays in this range)
    body_width: float = 0.42               # body half-width (ellipse semi-axis; the rectangle has equal area)
    body_height: float = 0.62              # body half-height
    body_center: float = 0.28              # body centre below the pivot
    head_radius: float = 0.3
    hand_radius: float = 0.12
    # -- speeds and motion patterns (pixel values are at 96 px and scale with min(height, width) / 96)
    move_speed: Range = (0.45, 0.7)        # px/frame
    rotate_speed: Range = (0.045, 0.075)   # rad/frame
    scale_speed: Range = (0.007, 0.011)    # log-scale/frame
    ramp_power: float = 1.0                # move/rotate/grow/shrink progress ~ (t / T) ** p (1: constant speed)
    bounce_height: Range = (0.1, 0.16)     # fraction of min(height, width)
    bounce_period: Range = (10.0, 16.0)    # frames
    bounce_power: float = 1.0              # height profile |sin| ** p (1: hops, 2: smooth bobbing)
    orbit_radius: Range = (0.09, 0.14)     # fraction of min(height, width)
    orbit_period: Range = (22.0, 36.0)     # frames
    orbit_aspect: float = 1.0              # vertical / horizontal radius (1: circle)
    tremor_position: float = 0.3           # px, per sine component (two per axis)
    tremor_angle: float = 0.015            # rad, per sine component

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise FeatstoreError(f"SynthStyle.{message}")

        if not isinstance(self.name, str) or not _STYLE_NAME.fullmatch(self.name):
            fail(f"name must be 1-32 lowercase letters, digits, '_' or '-' (starting with a letter), got {self.name!r}")
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            rule = _STYLE_RULES[f.name]
            kind, lo, hi = rule
            if kind == "int":
                if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                    fail(f"{f.name} must be an integer in {lo}..{hi}, got {value!r}")
                continue
            size = {"num": 0, "range": 2, "rgb": 3}[kind]
            items = [value] if size == 0 else value
            if size and (not isinstance(value, (tuple, list)) or len(value) != size):
                fail(f"{f.name} must be a list of {size} numbers, got {value!r}")
            if any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) for x in items):
                fail(f"{f.name} must hold finite numbers, got {value!r}")
            if not all(lo <= x <= hi for x in items):
                fail(f"{f.name} must lie in [{lo:g}, {hi:g}], got {value!r}")
            if kind == "range" and items[0] > items[1]:
                fail(f"{f.name} must be a (low, high) pair with low <= high, got {value!r}")
            object.__setattr__(self, f.name, float(value) if size == 0 else tuple(float(x) for x in items))
        if self.skin_light_ramp[1] >= self.skin_dark_ramp[0]:
            fail(f"skin_light_ramp {self.skin_light_ramp} must end below skin_dark_ramp {self.skin_dark_ramp} "
                 "(light and dark skin must not overlap)")
        extent = _figure_extent(self)
        if extent > _SPRITE_EXTENT:
            fail(f"body proportions reach {extent:.3f} R from the pivot; the figure must fit in {_SPRITE_EXTENT} R")
        preset = STYLES.get(self.name)
        if preset is not None and preset != self:
            fail(f"name {self.name!r} is a preset's name but the values differ from it; give a modified style "
                 "another name")

    @classmethod
    def from_json(cls, value) -> SynthStyle:
        """A style from a preset name, a JSON object of fields (unknown fields are an error) or a style."""
        if isinstance(value, SynthStyle):
            return value
        if isinstance(value, str):
            if value not in STYLES:
                raise FeatstoreError(f"unknown synthetic style {value!r} (known: {', '.join(STYLES)})")
            return STYLES[value]
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise FeatstoreError(f"unknown SynthStyle fields {unknown} (known: {', '.join(sorted(known))})")
            if "name" not in value:
                raise FeatstoreError("a synthetic style given as fields needs a 'name' (not a preset's name unless "
                                     "it is that preset)")
            return cls(**value)
        raise FeatstoreError(f"a synthetic style must be a preset name or an object of SynthStyle fields, "
                             f"got {value!r}")

    def to_json(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


_STYLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_RGB = ("rgb", 0.0, 255.0)
_UNIT = ("range", 0.0, 1.0)
_STYLE_RULES: dict[str, tuple[str, float, float]] = {
    "skin_light": _RGB, "skin_dark": _RGB, "skin_light_ramp": _UNIT, "skin_dark_ramp": _UNIT,
    "skin_jitter": ("num", 0.0, 64.0),
    "cloth_saturation": _UNIT, "cloth_value": _UNIT, "stripe_mix": ("num", 0.0, 1.0),
    "wall_saturation": _UNIT, "wall_value": _UNIT, "floor_hue": _UNIT, "floor_saturation": _UNIT,
    "floor_value": _UNIT, "indoor_horizon": ("range", 0.05, 0.95),
    "sky_hue": _UNIT, "sky_saturation": _UNIT, "sky_value": _UNIT, "outdoor_horizon": ("range", 0.05, 0.95),
    "ground_hue": _UNIT, "ground_saturation": _UNIT, "ground_value": _UNIT,
    "ground_relief": ("range", 0.0, 4.0), "ground_cells": ("int", 2, 64), "ground_grain": ("num", 0.0, 64.0),
    "stripe_period": ("range", 0.05, 2.0), "stripe_angle": ("num", -180.0, 180.0),
    "actor_frac": ("num", 0.04, 0.3), "body_size": ("range", 0.5, 2.0), "scale": ("range", 0.25, 4.0),
    "body_width": ("num", 0.1, 0.8), "body_height": ("num", 0.1, 0.8), "body_center": ("num", -0.5, 0.5),
    "head_radius": ("num", 0.05, 0.6), "hand_radius": ("num", 0.02, 0.4),
    "move_speed": ("range", 0.0, 10.0), "rotate_speed": ("range", 0.0, 1.0), "scale_speed": ("range", 0.0, 0.2),
    "ramp_power": ("num", 0.25, 4.0),
    "bounce_height": ("range", 0.0, 0.5), "bounce_period": ("range", 2.0, 1000.0), "bounce_power": ("num", 0.25, 4.0),
    "orbit_radius": ("range", 0.0, 0.5), "orbit_period": ("range", 2.0, 1000.0), "orbit_aspect": ("num", 0.2, 5.0),
    "tremor_position": ("num", 0.0, 5.0), "tremor_angle": ("num", 0.0, 0.5),
}
_RECT = 0.886  # rectangle half-sides = ellipse semi-axes x this (same area: sqrt(pi / 4))


def _figure_extent(style: SynthStyle) -> float:
    """The farthest point of either body shape (with head and hands) from the pivot, in body units."""
    theta = np.linspace(0, 2 * math.pi, 721)
    cy = style.body_center
    extent = 0.0
    for a, b, body in ((style.body_width, style.body_height,
                        float(np.max(np.hypot(style.body_width * np.cos(theta),
                                              cy + style.body_height * np.sin(theta))))),
                       (style.body_width * _RECT, style.body_height * _RECT,
                        math.hypot(style.body_width * _RECT, abs(cy) + style.body_height * _RECT))):
        head = abs(cy - b - 0.8 * style.head_radius) + style.head_radius
        hands = math.hypot(a + 0.08, cy + 0.1) + style.hand_radius
        extent = max(extent, body, head, hands)
    return extent


STYLES: dict[str, SynthStyle] = {}
STYLES["default"] = SynthStyle()
# Another look and motion for the same structure: tanned/darker skin ramp, more saturated clothes with
# coarser diagonal stripes, purple indoor floors and sandy outdoor ground under a low cyan sky, a smaller
# and slimmer actor, faster turns and moves that accelerate, softer bobbing and elliptical orbits.
STYLES["variant"] = SynthStyle(
    name="variant",
    skin_light=(238.0, 200.0, 166.0), skin_dark=(92.0, 56.0, 36.0),
    skin_light_ramp=(0.0, 0.35), skin_dark_ramp=(0.65, 1.0), skin_jitter=12.0,
    cloth_saturation=(0.5, 0.95), cloth_value=(0.4, 0.9), stripe_mix=0.4,
    wall_saturation=(0.15, 0.4), wall_value=(0.5, 0.85),
    floor_hue=(0.75, 0.92), floor_saturation=(0.25, 0.5), floor_value=(0.3, 0.5), indoor_horizon=(0.55, 0.72),
    sky_hue=(0.5, 0.56), sky_saturation=(0.4, 0.7), sky_value=(0.75, 0.95), outdoor_horizon=(0.35, 0.52),
    ground_hue=(0.07, 0.14), ground_saturation=(0.3, 0.55), ground_value=(0.45, 0.7),
    ground_relief=(0.8, 1.2), ground_cells=5, ground_grain=10.0,
    stripe_period=(0.34, 0.44), stripe_angle=35.0,
    actor_frac=0.145, body_size=(0.85, 1.15), scale=(0.75, 1.35),
    body_width=0.36, body_height=0.58, body_center=0.3, head_radius=0.27, hand_radius=0.1,
    move_speed=(0.55, 0.8), rotate_speed=(0.06, 0.1), scale_speed=(0.006, 0.009), ramp_power=1.5,
    bounce_height=(0.07, 0.12), bounce_period=(14.0, 22.0), bounce_power=2.0,
    orbit_radius=(0.07, 0.11), orbit_period=(16.0, 28.0), orbit_aspect=0.7,
    tremor_position=0.45, tremor_angle=0.02,
)
# Each preset's seed when none is given (other seeds than the default's: no draw is shared with it).
STYLE_SEEDS = {"default": 0, "variant": 7}


def part_name(part: str, style: str | SynthStyle = "default") -> str:
    """The dataset name of one part in a style: ``synthetic-tad`` -> ``synthetic-variant-tad``."""
    name = style.name if isinstance(style, SynthStyle) else style
    if part not in PARTS:
        raise FeatstoreError(f"unknown synthetic part {part!r} (known: {', '.join(PARTS)})")
    return part if name == "default" else part.replace("synthetic", f"synthetic-{name}", 1)


def preset_config(style: str = "default", **overrides) -> SynthConfig:
    """The SynthConfig of a named style preset, with that preset's default seed."""
    preset = SynthStyle.from_json(style)
    return SynthConfig(**{"seed": STYLE_SEEDS.get(preset.name, 0), "style": preset, **overrides})


# ---------------------------------------------------------------------------------------------- config
@dataclass
class SynthConfig:
    """Every size of the synthetic dataset; the defaults generate ~250 videos + 300 images quickly.

    Counts are per split (train/test). Frame ranges are inclusive ``min..max``. All values are validated
    on construction and a bad one raises ``FeatstoreError`` naming the field.
    """

    seed: int = 0
    height: int = 96
    width: int = 96
    fps: float = 25.0
    n_subjects: int = 24
    # trimmed action clips ("synthetic"): 10 classes x (14 train + 6 test) = 200 videos
    train_per_class: int = 14
    test_per_class: int = 6
    trimmed_min_frames: int = 48
    trimmed_max_frames: int = 64
    # untrimmed temporal action detection ("synthetic-tad")
    tad_train_videos: int = 16
    tad_test_videos: int = 8
    tad_min_frames: int = 240
    tad_max_frames: int = 320
    tad_min_segments: int = 2
    tad_max_segments: int = 4
    tad_min_segment_frames: int = 32
    tad_max_segment_frames: int = 64
    # anomaly detection ("synthetic-ad")
    ad_train_videos: int = 12
    ad_test_videos: int = 12
    ad_min_frames: int = 240
    ad_max_frames: int = 240
    ad_anomaly_fraction: float = 0.5
    ad_max_intervals: int = 2
    ad_min_anomaly_frames: int = 24
    ad_max_anomaly_frames: int = 64
    # still images ("synthetic-images")
    image_train: int = 200
    image_test: int = 100
    # how it looks and moves: a SynthStyle, a preset name ("default", "variant") or a JSON object of fields
    style: SynthStyle = field(default_factory=SynthStyle)

    def __post_init__(self) -> None:
        self.style = SynthStyle.from_json(self.style)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "style":
                continue
            if f.name in ("fps", "ad_anomaly_fraction"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise FeatstoreError(f"SynthConfig.{f.name} must be a number, got {value!r}")
                setattr(self, f.name, float(value))
            elif isinstance(value, bool) or not isinstance(value, int):
                raise FeatstoreError(f"SynthConfig.{f.name} must be an integer, got {value!r}")

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise FeatstoreError(f"SynthConfig: {message}")

        need(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        for name in ("height", "width"):
            value = getattr(self, name)
            need(32 <= value <= 1024 and value % 2 == 0, f"{name} must be an even number in 32..1024, got {value}")
        need(0 < self.fps <= 240, f"fps must be in (0, 240], got {self.fps}")
        need(2 <= self.n_subjects <= 9999, f"n_subjects must be in 2..9999, got {self.n_subjects}")
        for name in ("train_per_class", "test_per_class", "tad_train_videos", "tad_test_videos",
                     "image_train", "image_test"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("ad_train_videos", "ad_test_videos"):
            need(getattr(self, name) >= 2, f"{name} must be >= 2 (each split holds normal and anomalous videos), "
                 f"got {getattr(self, name)}")
        for lo, hi, floor in (("trimmed_min_frames", "trimmed_max_frames", 8),
                              ("tad_min_frames", "tad_max_frames", 16),
                              ("tad_min_segments", "tad_max_segments", 1),
                              ("tad_min_segment_frames", "tad_max_segment_frames", 8),
                              ("ad_min_frames", "ad_max_frames", 32),
                              ("ad_min_anomaly_frames", "ad_max_anomaly_frames", 4)):
            a, b = getattr(self, lo), getattr(self, hi)
            need(a >= floor, f"{lo} must be >= {floor}, got {a}")
            need(a <= b, f"{lo} ({a}) must not exceed {hi} ({b})")
        need(self.trimmed_max_frames <= 100_000 and self.tad_max_frames <= 100_000 and self.ad_max_frames <= 100_000,
             "videos are limited to 100000 frames")
        need(self.tad_max_segments * self.tad_min_segment_frames + (self.tad_max_segments + 1) * _MIN_GAP
             <= self.tad_min_frames,
             f"tad_min_frames ({self.tad_min_frames}) is too short for {self.tad_max_segments} segments of at least "
             f"{self.tad_min_segment_frames} frames plus idle gaps of {_MIN_GAP}")
        need(0 < self.ad_anomaly_fraction < 1, f"ad_anomaly_fraction must be in (0, 1), got {self.ad_anomaly_fraction}")
        need(self.ad_max_intervals >= 1, f"ad_max_intervals must be >= 1, got {self.ad_max_intervals}")
        need(self.ad_min_anomaly_frames + 16 <= self.ad_min_frames,
             f"ad_min_frames ({self.ad_min_frames}) must be at least ad_min_anomaly_frames + 16")
        geo = _Geometry.of(self)
        need(min(geo.width, geo.height) - 2 * geo.margin >= 8,
             f"a {self.width}x{self.height} frame leaves no room to move an actor of style {self.style.name!r} "
             f"(margin {geo.margin} px); use a larger frame or a smaller actor_frac / scale")

    def to_json(self) -> dict:
        """The fields as JSON; ``style`` only when it is not the default (so default datasets keep their bytes)."""
        out = asdict(self)
        del out["style"]
        if self.style != SynthStyle():
            out["style"] = self.style.to_json()
        return out


def manifest_path(root: Path, part: str) -> Path:
    """Where the manifest of one synthetic part lives: ``root/manifests/<part>.jsonl``."""
    if part not in PARTS:
        raise FeatstoreError(f"unknown synthetic part {part!r} (known: {', '.join(PARTS)})")
    return Path(root) / "manifests" / f"{part}.jsonl"


# ---------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Geometry:
    height: int
    width: int
    radius: float      # R in pixels
    speed: float       # pixel-speed scale: min(H, W) / 96
    margin: int        # actor centre stays in [margin, size - margin]
    window: int        # side of the square window that always holds the whole actor
    style: SynthStyle

    @classmethod
    def of(cls, config: SynthConfig) -> _Geometry:
        style = config.style
        side = min(config.height, config.width)
        radius = style.actor_frac * side
        margin = int(math.ceil(_SPRITE_EXTENT * radius * style.body_size[1] * style.scale[1])) + 1
        return cls(config.height, config.width, radius, side / 96.0, margin, 2 * margin + 2, style)

    @property
    def side(self) -> int:
        return min(self.height, self.width)

    def lows(self) -> np.ndarray:
        return np.array([self.margin, self.margin, math.log(self.style.scale[0])])

    def highs(self) -> np.ndarray:
        return np.array([self.width - self.margin, self.height - self.margin, math.log(self.style.scale[1])])


# ---------------------------------------------------------------------------------------------- appearance
@dataclass
class _Identity:
    """Static appearance of one actor: attributes, colours, body geometry."""

    attributes: list[int]
    skin: np.ndarray          # RGB float
    cloth: np.ndarray
    stripe: np.ndarray
    stripe_period: float      # in units of R
    stripe_phase: float
    size: float
    sprite: np.ndarray | None = None   # premultiplied RGBA, float32, padded with a zero border


def _balanced_codes() -> list[int]:
    """16 attribute codes ordered so every aligned pair is complementary (each attribute balanced in any
    aligned window of 2) and the first 8 are pairwise balanced too; 16 consecutive = full factorial."""
    base = list(range(8))
    even = [c for c in base if bin(c).count("1") % 2 == 0]
    odd = [c for c in base if bin(c).count("1") % 2 == 1]
    order = []
    for code in even + odd:
        order += [code, code ^ 0b1111]
    return order


_CODES = _balanced_codes()


def _code_attributes(index: int) -> list[int]:
    code = _CODES[index % len(_CODES)]
    return [(code >> bit) & 1 for bit in range(len(ATTRIBUTE_NAMES))]


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float64) * 255.0


def _make_identity(attributes: list[int], rng: np.random.Generator, geo: _Geometry) -> _Identity:
    style = geo.style
    skin_dark, _, _, _ = attributes
    t = rng.uniform(*style.skin_dark_ramp) if skin_dark else rng.uniform(*style.skin_light_ramp)
    light, dark = np.array(style.skin_light), np.array(style.skin_dark)
    skin = np.clip(light + t * (dark - light) + rng.uniform(-style.skin_jitter, style.skin_jitter, 3), 0, 255)
    cloth_v = rng.uniform(*style.cloth_value)
    cloth = _hsv(rng.uniform(), rng.uniform(*style.cloth_saturation), cloth_v)
    mix = style.stripe_mix
    stripe = cloth * mix if cloth_v > 0.6 else cloth * mix + (1.0 - mix) * 245.0
    identity = _Identity(
        attributes=list(attributes), skin=skin, cloth=cloth, stripe=stripe,
        stripe_period=rng.uniform(*style.stripe_period), stripe_phase=rng.uniform(),
        size=rng.uniform(*style.body_size),
    )
    identity.sprite = _render_sprite(identity, geo.radius, style)
    return identity


def _render_sprite(ident: _Identity, radius: float, style: SynthStyle | None = None) -> np.ndarray:
    """Premultiplied RGBA sprite at ``_SUPERSAMPLE`` px per output px, antialiased 2x2, zero border."""
    style = style or SynthStyle()
    _, round_body, striped, _ = ident.attributes
    unit = radius * ident.size                      # pixels per body unit at scale 1
    k = _SUPERSAMPLE
    n_in = 2 * int(math.ceil(_SPRITE_EXTENT * unit * k)) + 2
    fine = 2 * n_in
    coords = (np.arange(fine) + 0.5) / (2 * k) - n_in / (2 * k)   # output pixels at scale 1
    v, u = np.meshgrid(coords / unit, coords / unit, indexing="ij")  # body units
    body_cy = style.body_center
    if round_body:
        a, b = style.body_width, style.body_height
        body = (u / a) ** 2 + ((v - body_cy) / b) ** 2 <= 1.0
    else:
        a, b = style.body_width * _RECT, style.body_height * _RECT   # same area as the ellipse
        body = (np.abs(u) <= a) & (np.abs(v - body_cy) <= b)
    head_r = style.head_radius
    head_cy = body_cy - b - 0.8 * head_r
    head = u ** 2 + (v - head_cy) ** 2 <= head_r ** 2
    hand_r = style.hand_radius
    hands = ((np.abs(u) - (a + 0.08)) ** 2 + (v - body_cy - 0.1) ** 2) <= hand_r ** 2
    shade = (1.0 - 0.18 * np.clip(u / a, -1, 1) ** 2)[..., None]
    if striped:
        across = v - body_cy
        if style.stripe_angle:  # bands turned by stripe_angle degrees
            turn = math.radians(style.stripe_angle)
            across = across * math.cos(turn) + u * math.sin(turn)
        band = np.floor(across / ident.stripe_period + ident.stripe_phase) % 2 == 0
        cloth = np.where(band[..., None], ident.cloth, ident.stripe) * shade
    else:
        cloth = ident.cloth * shade
    rgb = np.zeros((fine, fine, 3))
    rgb = np.where(body[..., None], cloth, rgb)
    skin = head | hands
    rgb = np.where(skin[..., None], ident.skin, rgb)
    alpha = (body | skin).astype(np.float64)
    rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1)
    rgba = rgba.reshape(n_in, 2, n_in, 2, 4).mean(axis=(1, 3))
    rgba[..., 3] = np.clip(rgba[..., 3], 0.0, 1.0)
    return np.pad(rgba, ((1, 1), (1, 1), (0, 0))).astype(np.float32)


def _resize_bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    gh, gw = grid.shape[:2]
    ys = np.clip((np.arange(height) + 0.5) * gh / height - 0.5, 0, gh - 1)
    xs = np.clip((np.arange(width) + 0.5) * gw / width - 0.5, 0, gw - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, gh - 1)
    x1 = np.minimum(x0 + 1, gw - 1)
    wy = (ys - y0)[:, None, None] if grid.ndim == 3 else (ys - y0)[:, None]
    wx = (xs - x0)[None, :, None] if grid.ndim == 3 else (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x1] * wx
    bottom = grid[y1][:, x0] * (1 - wx) + grid[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def _render_background(outdoor: int, rng: np.random.Generator, height: int, width: int,
                       style: SynthStyle | None = None) -> np.ndarray:
    """Indoor: smooth two-colour wall gradient over a plain floor. Outdoor: sky over a noisy ground."""
    st = style or SynthStyle()
    yy, xx = np.meshgrid(np.arange(height) / height, np.arange(width) / width, indexing="ij")
    if not outdoor:
        angle = rng.uniform(0, 2 * math.pi)
        ramp = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) / 0.71 * 0.5 + 0.5
        c1 = _hsv(rng.uniform(), rng.uniform(*st.wall_saturation), rng.uniform(*st.wall_value))
        c2 = _hsv(rng.uniform(), rng.uniform(*st.wall_saturation), rng.uniform(*st.wall_value))
        wall = c1 + ramp[..., None] * (c2 - c1)
        floor_c = _hsv(rng.uniform(*st.floor_hue), rng.uniform(*st.floor_saturation), rng.uniform(*st.floor_value))
        floor = floor_c * (0.85 + 0.3 * yy[..., None])
        horizon = rng.uniform(*st.indoor_horizon)
        image = np.where((yy >= horizon)[..., None], floor, wall)
    else:
        horizon = rng.uniform(*st.outdoor_horizon)
        sky_top = _hsv(rng.uniform(*st.sky_hue), rng.uniform(*st.sky_saturation), rng.uniform(*st.sky_value))
        sky_low = sky_top * 0.5 + 0.5 * 245.0
        sky = sky_top + (yy / horizon)[..., None] * (sky_low - sky_top)
        ground_c = _hsv(rng.uniform(*st.ground_hue), rng.uniform(*st.ground_saturation), rng.uniform(*st.ground_value))
        cells = st.ground_cells
        coarse = _resize_bilinear(rng.uniform(*st.ground_relief, (cells, cells)), height, width)
        fine = rng.normal(0.0, st.ground_grain, (height, width, 3))
        ground = ground_c * coarse[..., None] + fine
        image = np.where((yy >= horizon)[..., None], ground, sky)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- motion
def _displacement(cls: int, n: int, rng: np.random.Generator, geo: _Geometry) -> np.ndarray:
    """Per-frame displacement [n, 4] = (dx, dy, dlog_scale, dangle) relative to frame 0 (all zero there)."""
    style = geo.style
    t = np.arange(n, dtype=np.float64)
    if style.ramp_power != 1.0:
        # same distance over the clip, but accelerating (p > 1) or decelerating (p < 1)
        t_ramp = (n - 1) * (t / max(n - 1, 1)) ** style.ramp_power
    else:
        t_ramp = t
    d = np.zeros((n, 4))
    if cls in (MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN):
        v = rng.uniform(*style.move_speed) * geo.speed
        sign = -1.0 if cls in (MOVE_LEFT, MOVE_UP) else 1.0
        d[:, 0 if cls in (MOVE_LEFT, MOVE_RIGHT) else 1] = sign * v * t_ramp
    elif cls in (ROTATE_CW, ROTATE_CCW):
        # screen coordinates have y pointing down, so a positive angle turns clockwise on screen
        d[:, 3] = (1.0 if cls == ROTATE_CW else -1.0) * rng.uniform(*style.rotate_speed) * t_ramp
    elif cls in (GROW, SHRINK):
        d[:, 2] = (1.0 if cls == GROW else -1.0) * rng.uniform(*style.scale_speed) * t_ramp
    elif cls == BOUNCE:
        amp = rng.uniform(*style.bounce_height) * geo.side
        period = rng.uniform(*style.bounce_period)
        phase = rng.uniform(0, math.pi)
        if style.bounce_power != 1.0:
            p = style.bounce_power
            d[:, 1] = -amp * (np.abs(np.sin(math.pi * t / period + phase)) ** p - abs(math.sin(phase)) ** p)
        else:
            d[:, 1] = -amp * (np.abs(np.sin(math.pi * t / period + phase)) - abs(math.sin(phase)))
    elif cls == ORBIT:
        r = rng.uniform(*style.orbit_radius) * geo.side
        omega = rng.choice([-1.0, 1.0]) * 2 * math.pi / rng.uniform(*style.orbit_period)
        phi = rng.uniform(0, 2 * math.pi)
        d[:, 0] = r * (np.cos(phi + omega * t) - math.cos(phi))
        r_y = r * style.orbit_aspect if style.orbit_aspect != 1.0 else r
        d[:, 1] = r_y * (np.sin(phi + omega * t) - math.sin(phi))
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"unknown class {cls}")
    return d


def _fit_factor(start: np.ndarray, disp: np.ndarray, geo: _Geometry) -> float:
    """Largest f <= 1 such that start + f * disp stays inside the bounds (x, y, log scale)."""
    lows, highs = geo.lows(), geo.highs()
    f = 1.0
    for dim in range(3):
        hi, lo = disp[:, dim].max(), disp[:, dim].min()
        if hi > 1e-9:
            f = min(f, max(0.0, highs[dim] - start[dim]) / hi)
        if lo < -1e-9:
            f = min(f, max(0.0, start[dim] - lows[dim]) / -lo)
    return f


def _trimmed_motion(cls: int, n: int, rng: np.random.Generator, geo: _Geometry) -> np.ndarray:
    """State [n, 4] = (x, y, log_scale, angle) of one action clip with a start drawn uniformly from the
    starts that keep the whole motion inside the frame."""
    disp = _displacement(cls, n, rng, geo)
    lows, highs = geo.lows(), geo.highs()
    span = disp[:, :3].max(axis=0) - disp[:, :3].min(axis=0)
    room = highs - lows
    shrink = min(1.0, float(np.min(np.where(span > 1e-9, room / np.maximum(span, 1e-9), np.inf))))
    disp[:, :3] *= shrink
    lo = lows - disp[:, :3].min(axis=0)
    hi = highs - disp[:, :3].max(axis=0)
    start = np.empty(4)
    start[:3] = rng.uniform(lo, np.maximum(lo, hi))
    start[3] = rng.uniform(-math.pi, math.pi)
    return start[None, :] + disp


def _segment_motion(cls: int, start: np.ndarray, n: int, rng: np.random.Generator, geo: _Geometry) -> tuple[int, np.ndarray]:
    """Motion of one untrimmed segment from a given state; if the motion would leave the frame it is
    mirrored (move left -> move right, grow -> shrink, ...) when that fits better, then slowed to fit.
    Returns the class actually performed and the state [n, 4]."""
    disp = _displacement(cls, n, rng, geo)
    f = _fit_factor(start, disp, geo)
    if f < 0.75:
        f_mirror = _fit_factor(start, -disp, geo)
        if f_mirror > f:
            cls, disp, f = _MIRROR[cls], -disp, f_mirror
    disp[:, :3] *= f
    return cls, start[None, :] + disp


def _random_start(rng: np.random.Generator, geo: _Geometry) -> np.ndarray:
    start = np.empty(4)
    start[:3] = rng.uniform(geo.lows(), geo.highs())
    start[3] = rng.uniform(-math.pi, math.pi)
    return start


def _jitter(n: int, rng: np.random.Generator, geo: _Geometry) -> np.ndarray:
    """Small smooth tremor added to every frame (positions +-0.6 px, angle +-0.03 rad)."""
    t = np.arange(n, dtype=np.float64)
    out = np.zeros((n, 4))
    style = geo.style
    for dim, amp in ((0, style.tremor_position * geo.speed), (1, style.tremor_position * geo.speed),
                     (3, style.tremor_angle)):
        for _ in range(2):
            freq = rng.uniform(0.03, 0.15)
            out[:, dim] += amp * np.sin(2 * math.pi * freq * t + rng.uniform(0, 2 * math.pi))
    return out


def _plan_untrimmed(n: int, classes: list[int], lengths: list[int], rng: np.random.Generator,
                    geo: _Geometry) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """An idle actor with the given action segments separated by random idle gaps.

    Returns the state [n, 4] and [(start_frame, end_frame_exclusive, class)]."""
    k = len(classes)
    idle = n - sum(lengths)
    extra = idle - (k + 1) * _MIN_GAP
    weights = rng.dirichlet(np.ones(k + 1))
    gaps = [_MIN_GAP + int(w) for w in np.floor(weights * extra)]
    gaps[-1] += idle - sum(gaps)
    state = np.empty((n, 4))
    current = _random_start(rng, geo)
    frame = 0
    segments = []
    for i in range(k):
        state[frame:frame + gaps[i]] = current
        frame += gaps[i]
        cls, motion = _segment_motion(classes[i], current, lengths[i], rng, geo)
        state[frame:frame + lengths[i]] = motion
        segments.append((frame, frame + lengths[i], cls))
        frame += lengths[i]
        current = motion[-1].copy()
    state[frame:] = current
    return state, segments


# ---------------------------------------------------------------------------------------------- rendering
def _composite(frames: np.ndarray, sprite: np.ndarray, state: np.ndarray, geo: _Geometry,
               frame_index: np.ndarray | None = None) -> None:
    """Draw the sprite into ``frames`` (in place) at per-frame (x, y, log_scale, angle).

    Each output pixel of a fixed window around the actor is mapped back into the (supersampled) sprite
    by the inverse rotation/scale and sampled there; only pixels the sprite covers are blended.
    """
    if len(state) == 0:
        return
    if frame_index is None:
        frame_index = np.arange(len(state))
    assert frames.flags.c_contiguous
    b = geo.window
    height, width = frames.shape[1:3]
    xs, ys = state[:, 0], state[:, 1]
    scale = np.exp(state[:, 2])
    x0 = np.clip(np.floor(xs).astype(np.int64) - b // 2, 0, width - b)
    y0 = np.clip(np.floor(ys).astype(np.int64) - b // 2, 0, height - b)
    ar = np.arange(b)
    px = x0[:, None] + ar[None, :]                                            # [T, b]
    py = y0[:, None] + ar[None, :]
    k = float(_SUPERSAMPLE)
    size = sprite.shape[0]                      # padded: inner size + 2
    half = (size - 2) / 2.0 + 1.0
    dx = ((px + 0.5 - xs[:, None]) * k).astype(np.float32)[:, None, :]       # [T, 1, b]
    dy = ((py + 0.5 - ys[:, None]) * k).astype(np.float32)[:, :, None]       # [T, b, 1]
    cos = (np.cos(state[:, 3]) / scale).astype(np.float32)[:, None, None]
    sin = (np.sin(state[:, 3]) / scale).astype(np.float32)[:, None, None]
    u = cos * dx + sin * dy
    u += half
    v = cos * dy - sin * dx
    v += half
    np.clip(u, 0, size - 1, out=u)
    np.clip(v, 0, size - 1, out=v)
    src = v.astype(np.intp) * size + u.astype(np.intp)    # non-negative, so truncation is floor
    alpha = sprite[..., 3].reshape(-1)[src]
    covered = alpha > 0
    src = src[covered]
    a = alpha[covered][:, None]
    rgb = sprite[..., :3].reshape(-1, 3)[src]
    pix = ((frame_index[:, None, None] * height + py[:, :, None]) * width + px[:, None, :])[covered]
    flat = frames.reshape(-1, 3)
    out = rgb + (1.0 - a) * flat[pix].astype(np.float32)
    flat[pix] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _render_video(background: np.ndarray, actors: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                  n: int, geo: _Geometry) -> np.ndarray:
    frames = np.broadcast_to(background, (n,) + background.shape).copy()
    for sprite, state, index in actors:
        _composite(frames, sprite, state, geo, index)
    return frames


# ---------------------------------------------------------------------------------------------- writing
def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    import av

    tmp = _tmp_name(path)
    try:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                          options=dict(_X264_OPTIONS))
            stream.width = frames.shape[2]
            stream.height = frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    tmp = _tmp_name(path)
    try:
        Image.fromarray(image, mode="RGB").save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    tmp = _tmp_name(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- planning
@dataclass
class _Item:
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


def _rng(config: SynthConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, *key])


def _subject_id(index: int, n_subjects: int) -> str:
    width = max(2, len(str(n_subjects - 1)))
    return f"s{index:0{width}d}"


def _plan(config: SynthConfig) -> list[_Item]:
    """Every file to produce, with its split, subject and labels (cheap; pixels come later)."""
    items: list[_Item] = []
    ns = config.n_subjects

    # trimmed: every train class gets the SAME run of consecutive subjects 0..train_per_class-1, so in
    # training appearance says nothing about the class (a class-dependent subject set would let a probe
    # learn subject -> class and then fail on test). Test videos cycle through the remaining subjects
    # (unseen in training where there are enough). With even counts every (class, split) cell holds
    # complementary attribute pairs.
    rng = _rng(config, _PLAN, _TRIMMED)
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
                items.append(_Item("synthetic", index, vid, f"trimmed/{vid}.mp4", split, subject, cls, n, [], []))
                index += 1

    # TAD: segment classes drawn from a shuffled balanced pool shared by all videos.
    rng = _rng(config, _PLAN, _TAD)
    cursor = 0
    index = 0
    plans = []
    for split, count in (("train", config.tad_train_videos), ("test", config.tad_test_videos)):
        for _ in range(count):
            n = int(rng.integers(config.tad_min_frames, config.tad_max_frames + 1))
            k = int(rng.integers(config.tad_min_segments, config.tad_max_segments + 1))
            budget = n - (k + 1) * _MIN_GAP
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
        items.append(_Item("synthetic-tad", index, vid, f"untrimmed/{vid}.mp4", split, cursor % ns, None, n,
                           classes, lengths))
        cursor += 1
        index += 1

    # AD: per split a fixed share of anomalous videos, at random positions.
    rng = _rng(config, _PLAN, _AD)
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
            items.append(_Item("synthetic-ad", index, vid, f"anomaly/{vid}.mp4", split, cursor % ns,
                               int(j in anomalous), n, [], lengths, anomalous=j in anomalous))
            cursor += 1
            index += 1

    # images: fresh identities with attribute codes cycling the balanced order within each split.
    index = 0
    for split, count in (("train", config.image_train), ("test", config.image_test)):
        for j in range(count):
            vid = f"img_{index:05d}"
            items.append(_Item("synthetic-images", index, vid, f"images/{vid}.png", split, None, None, 1, [], [], code=j))
            index += 1
    return items


# ---------------------------------------------------------------------------------------------- generation
def _subjects(config: SynthConfig, geo: _Geometry) -> list[_Identity]:
    return [_make_identity(_code_attributes(s), _rng(config, _SUBJECT, s), geo) for s in range(config.n_subjects)]


def _produce(item: _Item, config: SynthConfig, geo: _Geometry, subjects: list[_Identity], out: Path) -> VideoRecord:
    """Render and write one item; return its manifest record."""
    fps = config.fps
    target = out / item.path
    if item.part == "synthetic-images":
        rng = _rng(config, _IMAGES, item.index)
        ident = _make_identity(_code_attributes(item.code), rng, geo)
        background = _render_background(ident.attributes[3], rng, geo.height, geo.width, geo.style)
        start = _random_start(rng, geo)
        image = _render_video(background, [(ident.sprite, start[None, :], None)], 1, geo)[0]
        _write_png(target, image)
        return VideoRecord(item.video_id, item.path, item.split, label=None, attributes=ident.attributes,
                           subject=None, segments=[], fps=None, duration=None, n_frames=1, media="image")

    subject = subjects[item.subject]
    n = item.n_frames
    segments: list[Segment] = []
    actors = []
    if item.part == "synthetic":
        rng = _rng(config, _TRIMMED, item.index)
        state = _trimmed_motion(item.label, n, rng, geo)
    elif item.part == "synthetic-tad":
        rng = _rng(config, _TAD, item.index)
        state, segs = _plan_untrimmed(n, item.classes, item.lengths, rng, geo)
        segments = [Segment(round(a / fps, 6), round(b / fps, 6), c) for a, b, c in segs]
    else:
        rng = _rng(config, _AD, item.index)
        state, intervals, intruders = _plan_anomaly(item, subjects, rng, geo)
        segments = [Segment(round(a / fps, 6), round(b / fps, 6), 1) for a, b in intervals]
        actors += intruders
    background = _render_background(subject.attributes[3], rng, geo.height, geo.width, geo.style)
    state = state + _jitter(n, rng, geo)
    state[:, 0] = np.clip(state[:, 0], geo.margin - 1, geo.width - geo.margin + 1)
    state[:, 1] = np.clip(state[:, 1], geo.margin - 1, geo.height - geo.margin + 1)
    frames = _render_video(background, [(subject.sprite, state, None)] + actors, n, geo)
    _write_mp4(target, frames, fps)
    return VideoRecord(
        item.video_id, item.path, item.split, label=item.label, attributes=list(subject.attributes),
        subject=_subject_id(item.subject, config.n_subjects), segments=segments, fps=float(fps),
        duration=round(n / fps, 6), n_frames=n, media="video",
    )


def _plan_anomaly(item: _Item, subjects: list[_Identity], rng: np.random.Generator, geo: _Geometry):
    """Normal untrimmed activity, plus (for anomalous videos) erratic jumping or an intruding second actor
    in each anomalous interval. Returns (state, [(start, end)], extra actors)."""
    n = item.n_frames
    k = max(1, min(3, n // 90))
    lengths = [int(x) for x in rng.integers(24, 49, size=k)]
    while sum(lengths) + (k + 1) * _MIN_GAP > n and lengths:
        lengths = [max(8, x // 2) for x in lengths]
        if sum(lengths) + (k + 1) * _MIN_GAP > n:
            lengths.pop()
            k -= 1
    classes = [int(c) for c in rng.integers(0, len(CLASS_NAMES), size=len(lengths))]
    state, _ = _plan_untrimmed(n, classes, lengths, rng, geo)
    intervals: list[tuple[int, int]] = []
    extra = []
    if not item.anomalous:
        return state, intervals, extra
    edge, gap = 8, 16
    lens = list(item.lengths)
    free = n - 2 * edge - sum(lens) - gap * (len(lens) - 1)
    if free < 0:  # very short video: one interval in the middle
        lens = [min(lens[0], n - 2)]
        edge, free = max(1, (n - lens[0]) // 2), 0
    offsets = np.sort(rng.integers(0, free + 1, size=len(lens)))
    frame = edge
    previous = 0
    lows, highs = geo.lows(), geo.highs()
    for length, offset in zip(lens, offsets):
        start = frame + int(offset - previous)
        end = start + length
        intervals.append((start, end))
        frame, previous = end + gap, int(offset)
        if rng.uniform() < 0.5:
            # erratic: the actor jumps to a new random offset every 2-4 frames and spins
            t = start
            while t < end:
                hold = int(rng.integers(2, 5))
                jump = np.array([rng.uniform(-0.25, 0.25) * geo.side, rng.uniform(-0.25, 0.25) * geo.side,
                                 rng.uniform(-0.3, 0.3), rng.uniform(-1.2, 1.2)])
                sl = slice(t, min(end, t + hold))
                state[sl] = state[sl] + jump
                state[sl, :3] = np.clip(state[sl, :3], lows, highs)
                t += hold
        else:
            # intruder: another identity pops up and darts around fast, bouncing off the frame borders
            others = [i for i in range(len(subjects)) if i != item.subject]
            other = subjects[int(rng.choice(others))]
            pos = rng.uniform(lows[:2], highs[:2])
            speed = rng.uniform(1.6, 2.6) * geo.speed
            heading = rng.uniform(0, 2 * math.pi)
            vel = speed * np.array([math.cos(heading), math.sin(heading)])
            angle, spin = rng.uniform(-math.pi, math.pi), rng.uniform(-0.25, 0.25)
            log_s = rng.uniform(math.log(0.8), math.log(1.2))
            track = np.empty((length, 4))
            for i in range(length):
                track[i] = (pos[0], pos[1], log_s, angle)
                pos = pos + vel
                for dim in range(2):
                    if pos[dim] < lows[dim] or pos[dim] > highs[dim]:
                        vel[dim] = -vel[dim]
                        pos[dim] = np.clip(pos[dim], lows[dim], highs[dim])
                angle += spin
            extra.append((other.sprite, track, np.arange(start, end)))
    return state, intervals, extra


_DESCRIPTIONS = {
    "synthetic": "Synthetic trimmed action clips: 10 motion-defined classes; 4 static private attributes per subject.",
    "synthetic-tad": "Synthetic untrimmed videos: an idle actor performs annotated action segments (same 10 classes).",
    "synthetic-ad": "Synthetic untrimmed videos: normal motion; anomalous intervals of erratic jumps or an intruder.",
    "synthetic-images": "Synthetic still images of actors with the 4 private attribute labels (static privacy).",
}
_TASKS = {"synthetic": "action", "synthetic-tad": "tad", "synthetic-ad": "ad", "synthetic-images": "static"}


def generate_synthetic(out: Path, config: SynthConfig, show_progress: bool = True) -> dict[str, Path]:
    """Generate all four synthetic parts under ``out``; returns part name -> manifest path.

    Media files are written first (each to a temporary name, then renamed), then ``synth_config.json``,
    then the manifests; existing manifests are removed up front, so an interrupted run never leaves a
    manifest that points at a half-written dataset.
    """
    if not isinstance(config, SynthConfig):
        raise FeatstoreError(f"generate_synthetic needs a SynthConfig, got {type(config).__name__}")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            manifest_path(out, part).unlink(missing_ok=True)
        (out / CONFIG_FILE).unlink(missing_ok=True)
        for folder in ("trimmed", "untrimmed", "anomaly", "images"):
            (out / folder).mkdir(exist_ok=True)
    except OSError as exc:
        raise FeatstoreError(f"cannot prepare the synthetic dataset folder {out}: {exc}") from exc

    geo = _Geometry.of(config)
    subjects = _subjects(config, geo)
    items = _plan(config)
    records: dict[str, list[VideoRecord]] = {part: [] for part in PARTS}
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(total=sum(item.n_frames for item in items), desc=f"synthetic data -> {out}",
                        unit="frame", unit_scale=True, leave=False)
    try:
        for item in items:
            try:
                records[item.part].append(_produce(item, config, geo, subjects, out))
            except OSError as exc:
                raise FeatstoreError(f"cannot write {out / item.path}: {exc}") from exc
            if progress is not None:
                progress.update(item.n_frames)
    finally:
        if progress is not None:
            progress.close()

    _write_text(out / CONFIG_FILE, json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n")
    paths = {}
    # a non-default style shows in the manifest (hence in every store extracted from it): its dataset
    # name (synthetic-<style>[-tad|-ad|-images]) and the description
    style_note = "" if config.style == SynthStyle() else f", style {config.style.name}"
    for part in PARTS:
        header = ManifestHeader(
            name=part_name(part, config.style),
            task=_TASKS[part],
            class_names=list(AD_CLASS_NAMES if part == "synthetic-ad" else CLASS_NAMES),
            attribute_names=list(ATTRIBUTE_NAMES),
            root="..",
            description=f"{_DESCRIPTIONS[part]} Generated by featstore.synth v{GENERATOR_VERSION}, "
                        f"seed {config.seed}{style_note}.",
        )
        if part == "synthetic-images":
            header.class_names = []
        manifest = Manifest(header, records[part], out)
        paths[part] = manifest.save(manifest_path(out, part))
    return paths
