"""What to generate: the parts and their names, ``SynthConfig`` (every size, validated) and the pixel
geometry a config implies (``Geometry``: actor radius, margins, the bounds an actor's state stays in)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from data_manifests.errors import FeatstoreError
from data_manifests.synth.style import SPRITE_EXTENT, STYLE_SEEDS, SynthStyle

PARTS = ("synthetic", "synthetic-tad", "synthetic-ad", "synthetic-images")
CLASS_NAMES = [
    "move_left", "move_right", "move_up", "move_down", "rotate_cw",
    "rotate_ccw", "grow", "shrink", "bounce", "orbit",
]
AD_CLASS_NAMES = ["normal", "anomaly"]
# what happens in an anomalous interval (data_manifests/README.md); the manifests do not say, anomaly_kinds does
ANOMALY_KINDS = ("erratic", "intruder")
# 0/1 meaning: skin_tone 0 light / 1 dark; gender_shape 0 angular (rectangle body) / 1 round (ellipse
# body); clothing_texture 0 plain / 1 striped; scene 0 indoor (smooth walls + floor) / 1 outdoor
# (sky + noisy textured ground).
ATTRIBUTE_NAMES = ["skin_tone", "gender_shape", "clothing_texture", "scene"]
CONFIG_FILE = "synth_config.json"
MIN_GAP = 4                       # minimum idle frames between TAD segments


@dataclass
class SynthConfig:
    """Every size of the synthetic dataset; the defaults generate ~670 videos + 300 images in about 20 seconds.

    Counts are per split (train/test). Frame ranges are inclusive ``min..max``. All values are validated
    on construction and a bad one raises ``FeatstoreError`` naming the field.
    """

    seed: int = 0
    height: int = 96
    width: int = 96
    fps: float = 25.0
    n_subjects: int = 72
    # trimmed action clips ("synthetic"): 10 classes x (42 train + 18 test) = 600 videos. With 14 + 6 the AAM
    # memorized its 140 training videos' labels and cost action top-1; at 3x that cost is gone and the untuned
    # variant meets the removal target (docs/anonymize.md, "Does it anonymize?")
    train_per_class: int = 42
    test_per_class: int = 18
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
    # anomaly detection ("synthetic-ad"): with 12 + 12 videos one AD head's ROC AUC swung with its seed on the
    # variant style (std 18 points, one head at 42); 24 + 24 brings that to 4, for ~2 minutes more per store
    # (data_manifests/README.md, "Sizes")
    ad_train_videos: int = 24
    ad_test_videos: int = 24
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
        need(self.tad_max_segments * self.tad_min_segment_frames + (self.tad_max_segments + 1) * MIN_GAP
             <= self.tad_min_frames,
             f"tad_min_frames ({self.tad_min_frames}) is too short for {self.tad_max_segments} segments of at least "
             f"{self.tad_min_segment_frames} frames plus idle gaps of {MIN_GAP}")
        need(0 < self.ad_anomaly_fraction < 1, f"ad_anomaly_fraction must be in (0, 1), got {self.ad_anomaly_fraction}")
        need(self.ad_max_intervals >= 1, f"ad_max_intervals must be >= 1, got {self.ad_max_intervals}")
        need(self.ad_min_anomaly_frames + 16 <= self.ad_min_frames,
             f"ad_min_frames ({self.ad_min_frames}) must be at least ad_min_anomaly_frames + 16")
        geo = Geometry.of(self)
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


@dataclass(frozen=True)
class Geometry:
    """The pixel geometry a config implies: the actor's size and speed scale, and the bounds its state stays in."""

    height: int
    width: int
    radius: float      # R in pixels
    speed: float       # pixel-speed scale: min(H, W) / 96
    margin: int        # actor centre stays in [margin, size - margin]
    window: int        # side of the square window that always holds the whole actor
    style: SynthStyle

    @classmethod
    def of(cls, config: SynthConfig) -> Geometry:
        style = config.style
        side = min(config.height, config.width)
        radius = style.actor_frac * side
        margin = int(math.ceil(SPRITE_EXTENT * radius * style.body_size[1] * style.scale[1])) + 1
        return cls(config.height, config.width, radius, side / 96.0, margin, 2 * margin + 2, style)

    @property
    def side(self) -> int:
        return min(self.height, self.width)

    def lows(self) -> np.ndarray:
        return np.array([self.margin, self.margin, math.log(self.style.scale[0])])

    def highs(self) -> np.ndarray:
        return np.array([self.width - self.margin, self.height - self.margin, math.log(self.style.scale[1])])


def _saved_json(root: Path) -> dict | None:
    """The JSON object of ``root``'s ``synth_config.json`` as written; None when the file is absent."""
    path = Path(root) / CONFIG_FILE
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeatstoreError(f"cannot read {path}: {exc}") from exc
    if not isinstance(saved, dict):
        raise FeatstoreError(f"{path} must hold a JSON object of SynthConfig fields")
    return saved


def saved_config(root: Path) -> SynthConfig:
    """The settings ``root`` was generated with (its ``synth_config.json``)."""
    saved = _saved_json(root)
    if saved is None:
        raise FeatstoreError(f"{root} has no {CONFIG_FILE}: not a synthetic dataset root (or made by an old version)")
    unknown = sorted(set(saved) - {f.name for f in fields(SynthConfig)})
    if unknown:
        raise FeatstoreError(f"{Path(root) / CONFIG_FILE}: unknown SynthConfig fields {', '.join(unknown)}")
    return SynthConfig(**saved)


def saved_config_differences(root: Path, expected: SynthConfig) -> list[str] | None:
    """How the settings ``root`` was generated with (its ``synth_config.json``) differ from ``expected``:
    one ``"field saved (expected E)"`` per differing field (style fields as ``style.<field>``), [] when they
    agree, None when the file is absent.

    The saved JSON is compared as written, so a field an older version wrote or lacked counts as a difference.
    """
    saved = _saved_json(root)
    if saved is None:
        return None
    saved, wanted = _flat_settings(saved), _flat_settings(expected.to_json())
    return [f"{name} {saved.get(name, 'absent')} (expected {wanted.get(name, 'absent')})"
            for name in sorted(set(saved) | set(wanted)) if saved.get(name) != wanted.get(name)]


def _flat_settings(config_json: dict) -> dict[str, str]:
    """SynthConfig JSON as ``field -> JSON text``, the style's fields as ``style.<field>`` (absent: the default)."""
    flat = {name: json.dumps(value) for name, value in config_json.items() if name != "style"}
    style = config_json.get("style", SynthStyle().to_json())
    if isinstance(style, dict):
        flat.update({f"style.{name}": json.dumps(value) for name, value in style.items()})
    else:
        flat["style"] = json.dumps(style)
    return flat


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


def manifest_path(root: Path, part: str) -> Path:
    """Where the manifest of one synthetic part lives: ``root/manifests/<part>.jsonl``."""
    if part not in PARTS:
        raise FeatstoreError(f"unknown synthetic part {part!r} (known: {', '.join(PARTS)})")
    return Path(root) / "manifests" / f"{part}.jsonl"
