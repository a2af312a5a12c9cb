"""What ``featstore extract --pixel-transform`` applies (``featstore.pixel_transforms`` applies it): the settings
alone, in a module that imports neither torch nor numpy, so that ``featstore extract --help`` shows the defaults
without loading them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from data_manifests.errors import FeatstoreError
from featstore.hashing import file_sha256

PIXEL_TRANSFORMS = ("none", "downsample-2x", "downsample-4x", "blur", "blacken")
BOX_TRANSFORMS = ("blur", "blacken")  # read a person box file (--boxes) and change the boxes only
BOXES_REQUIRED = ("blacken",)  # cannot run without one (blur without one blurs the whole frame)
SIGMA_TRANSFORMS = ("blur",)  # read --blur-sigma
DEFAULT_BLUR_SIGMA = 0.04  # x the shorter side: 10 px at 256, enough to remove faces and clothing texture


@dataclass(frozen=True)
class PixelTransformConfig:
    """What ``featstore extract --pixel-transform`` applies; ``boxes`` is a box file path (see the module)."""

    name: str = "none"
    boxes: str | None = None
    blur_sigma: float = DEFAULT_BLUR_SIGMA

    def __post_init__(self) -> None:
        if self.name not in PIXEL_TRANSFORMS:
            raise FeatstoreError(f"--pixel-transform must be one of {list(PIXEL_TRANSFORMS)}, got {self.name!r}")
        if self.name in BOXES_REQUIRED and self.boxes is None:
            raise FeatstoreError(f"--pixel-transform {self.name} needs --boxes (a person box file: "
                                 "video_id,frame,x1,y1,x2,y2)")
        if self.boxes is not None and self.name not in BOX_TRANSFORMS:
            raise FeatstoreError(f"--boxes applies to {' and '.join(BOX_TRANSFORMS)}, not to --pixel-transform "
                                 f"{self.name}")
        if isinstance(self.blur_sigma, bool) or not isinstance(self.blur_sigma, (int, float)) \
                or not 0 < self.blur_sigma <= 1:
            raise FeatstoreError(f"--blur-sigma must be in (0, 1] (a fraction of the frame's shorter side), "
                                 f"got {self.blur_sigma}")

    @property
    def active(self) -> bool:
        return self.name != "none"

    def identity(self) -> dict:
        """What the store's identity records: the transform, its setting and the box file's content hash."""
        record = {"name": self.name}
        if self.name in SIGMA_TRANSFORMS:
            record["blur_sigma"] = self.blur_sigma
        if self.boxes is not None:
            record["boxes_sha256"] = file_sha256(Path(self.boxes))
        return record

    def to_json(self) -> dict:
        return asdict(self)
