"""How an actor and a scene look: identities (attributes, colours, body size), their sprites, backgrounds.

The private attributes (``skin_tone``, ``gender_shape``, ``clothing_texture``, ``scene``) are static appearance
only, fixed per subject, and cycle through a balanced order of attribute codes (``code_attributes``).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from data_manifests.synth.config import ATTRIBUTE_NAMES, Geometry
from data_manifests.synth.style import RECT, SPRITE_EXTENT, SynthStyle

SUPERSAMPLE = 3                   # sprite pixels per output pixel at scale 1


@dataclass
class Identity:
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


def code_attributes(index: int) -> list[int]:
    code = _CODES[index % len(_CODES)]
    return [(code >> bit) & 1 for bit in range(len(ATTRIBUTE_NAMES))]


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float64) * 255.0


def make_identity(attributes: list[int], rng: np.random.Generator, geo: Geometry) -> Identity:
    style = geo.style
    skin_dark, _, _, _ = attributes
    t = rng.uniform(*style.skin_dark_ramp) if skin_dark else rng.uniform(*style.skin_light_ramp)
    light, dark = np.array(style.skin_light), np.array(style.skin_dark)
    skin = np.clip(light + t * (dark - light) + rng.uniform(-style.skin_jitter, style.skin_jitter, 3), 0, 255)
    cloth_v = rng.uniform(*style.cloth_value)
    cloth = _hsv(rng.uniform(), rng.uniform(*style.cloth_saturation), cloth_v)
    mix = style.stripe_mix
    stripe = cloth * mix if cloth_v > 0.6 else cloth * mix + (1.0 - mix) * 245.0
    identity = Identity(
        attributes=list(attributes), skin=skin, cloth=cloth, stripe=stripe,
        stripe_period=rng.uniform(*style.stripe_period), stripe_phase=rng.uniform(),
        size=rng.uniform(*style.body_size),
    )
    identity.sprite = _render_sprite(identity, geo.radius, style)
    return identity


def _render_sprite(ident: Identity, radius: float, style: SynthStyle | None = None) -> np.ndarray:
    """Premultiplied RGBA sprite at ``SUPERSAMPLE`` px per output px, antialiased 2x2, zero border."""
    style = style or SynthStyle()
    _, round_body, striped, _ = ident.attributes
    unit = radius * ident.size                      # pixels per body unit at scale 1
    k = SUPERSAMPLE
    n_in = 2 * int(math.ceil(SPRITE_EXTENT * unit * k)) + 2
    fine = 2 * n_in
    coords = (np.arange(fine) + 0.5) / (2 * k) - n_in / (2 * k)   # output pixels at scale 1
    v, u = np.meshgrid(coords / unit, coords / unit, indexing="ij")  # body units
    body_cy = style.body_center
    if round_body:
        a, b = style.body_width, style.body_height
        body = (u / a) ** 2 + ((v - body_cy) / b) ** 2 <= 1.0
    else:
        a, b = style.body_width * RECT, style.body_height * RECT   # same area as the ellipse
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


def render_background(outdoor: int, rng: np.random.Generator, height: int, width: int,
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
