"""How the synthetic dataset looks and moves: ``SynthStyle``, its validation, and the presets ``STYLES``.

The structure (classes, attributes, balance, splits) is the same for every style; a style changes colours,
textures, sizes and speeds only. ``STYLES["default"]`` is what every default is tuned on; ``STYLES["variant"]``
is a second preset with its own seed (``STYLE_SEEDS``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

import numpy as np

from data_manifests.errors import FeatstoreError

SPRITE_EXTENT = 0.95              # every sprite pixel lies within this many R of the pivot
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
        if extent > SPRITE_EXTENT:
            fail(f"body proportions reach {extent:.3f} R from the pivot; the figure must fit in {SPRITE_EXTENT} R")
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
RECT = 0.886  # rectangle half-sides = ellipse semi-axes x this (same area: sqrt(pi / 4))


def _figure_extent(style: SynthStyle) -> float:
    """The farthest point of either body shape (with head and hands) from the pivot, in body units."""
    theta = np.linspace(0, 2 * math.pi, 721)
    cy = style.body_center
    extent = 0.0
    for a, b, body in ((style.body_width, style.body_height,
                        float(np.max(np.hypot(style.body_width * np.cos(theta),
                                              cy + style.body_height * np.sin(theta))))),
                       (style.body_width * RECT, style.body_height * RECT,
                        math.hypot(style.body_width * RECT, abs(cy) + style.body_height * RECT))):
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
# A third look for tuning only: a second dataset to choose settings on next to the default one, so that the
# variant stays data nothing is chosen on (docs/anonymize.md, "Does it anonymize?"). Teal floors and
# reddish ground under a blue-violet sky, clothes between the two others, stripes at -25 degrees, a mid-size
# actor whose moves ease in, orbits slightly elliptical.
STYLES["dev"] = SynthStyle(
    name="dev",
    cloth_saturation=(0.4, 0.9), cloth_value=(0.3, 0.8), stripe_mix=0.35,
    wall_saturation=(0.1, 0.35), wall_value=(0.55, 0.9),
    floor_hue=(0.45, 0.58), floor_saturation=(0.2, 0.45), floor_value=(0.3, 0.5), indoor_horizon=(0.58, 0.76),
    sky_hue=(0.6, 0.7), sky_saturation=(0.35, 0.6), sky_value=(0.75, 0.95), outdoor_horizon=(0.3, 0.48),
    ground_hue=(0.0, 0.08), ground_saturation=(0.3, 0.6), ground_value=(0.4, 0.65), ground_cells=6,
    ground_grain=12.0, stripe_period=(0.28, 0.38), stripe_angle=-25.0,
    actor_frac=0.15, body_size=(0.85, 1.15), scale=(0.75, 1.3),
    move_speed=(0.5, 0.75), rotate_speed=(0.05, 0.09), scale_speed=(0.006, 0.01), ramp_power=1.25,
    bounce_height=(0.08, 0.14), bounce_period=(12.0, 20.0), bounce_power=1.5,
    orbit_radius=(0.08, 0.12), orbit_period=(18.0, 30.0), orbit_aspect=0.85,
)
# Each preset's seed when none is given (other seeds than the default's: no draw is shared with it).
STYLE_SEEDS = {"default": 0, "variant": 7, "dev": 23}
