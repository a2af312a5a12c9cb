"""MGFN's settings, torch-free (the command line reads them): the architecture and loss config, the named
presets and the training recipe.

A preset is an architecture (keyword overrides of :class:`MGFNConfig`, ``PRESETS``) with its training recipe
(keyword overrides of :class:`MGFNTrainConfig`, ``TRAIN_PRESETS``); "auto" picks one for a store's size
(``evaluate.heads.choose_preset``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from data_manifests.errors import FeatstoreError

FULL_DATA_PRESET = "ucf-crime"  # what "auto" picks for a store of UCF-Crime's size
BLOCK_TYPES = ("glance", "focus")
LOSS_VARIANTS = ("heads", "mgfn-code", "authors-copy")


@dataclass
class MGFNConfig:
    """Architecture and loss settings. Defaults: MGFN on UCF-Crime (10-crop I3D, 2048-d)."""

    input_dim: int
    dims: tuple = (64, 128, 1024)
    depths: tuple = (3, 3, 2)
    block_types: tuple = ("glance", "focus", "focus")
    dim_head: int = 64
    focus_kernel: int = 5
    ff_mult: int = 4
    mag_ratio: float = 0.1
    magnitude_dropout: float = 0.7
    k: int = 3
    seg_length: int = 32
    margin: float = 200.0
    sparsity_weight: float = 8e-3
    smoothness_weight: float = 8e-4
    # the released script's sparsity/smoothness: the "heads" form is seed-dependent on small data (docs/heads.md)
    loss_variant: str = "mgfn-code"

    def __post_init__(self):
        self.dims = tuple(int(d) for d in self.dims)
        self.depths = tuple(int(d) for d in self.depths)
        self.block_types = tuple(str(b).lower() for b in self.block_types)

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise FeatstoreError(f"MGFNConfig: {message}")

        need(self.input_dim >= 1, f"input_dim must be >= 1, got {self.input_dim}")
        need(len(self.dims) == len(self.depths) == len(self.block_types) >= 1,
             "dims, depths and block_types need the same number (>= 1) of stages")
        need(all(b in BLOCK_TYPES for b in self.block_types), f"block_types must be among {list(BLOCK_TYPES)}")
        need(self.dim_head >= 1 and all(d % self.dim_head == 0 and d >= self.dim_head for d in self.dims),
             f"every stage dim must be a positive multiple of dim_head ({self.dim_head}), got {self.dims}")
        need(all(d >= 1 for d in self.depths), "depths must be >= 1")
        need(self.focus_kernel >= 1 and self.focus_kernel % 2 == 1, "focus_kernel must be a positive odd number")
        need(self.ff_mult >= 1, "ff_mult must be >= 1")
        need(0 <= self.magnitude_dropout < 1, f"magnitude_dropout must be in [0, 1), got {self.magnitude_dropout}")
        need(self.k >= 1, f"k must be >= 1, got {self.k}")
        need(self.seg_length >= self.k, f"seg_length ({self.seg_length}) must be >= k ({self.k})")
        need(self.margin > 0, "margin must be > 0")
        need(self.sparsity_weight >= 0 and self.smoothness_weight >= 0, "loss weights must be >= 0")
        need(self.loss_variant in LOSS_VARIANTS, f"loss_variant must be one of {list(LOSS_VARIANTS)}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> MGFNConfig:
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise FeatstoreError(f"MGFNConfig: unknown fields {unknown}")
        return cls(**values)


PRESETS: dict[str, dict] = {
    "ucf-crime": {},
    # Small stores (tens of videos of ~15 snippets): narrower stages.
    "small": {"dims": (32, 64, 128), "dim_head": 32},
}


@dataclass
class MGFNTrainConfig:
    """MGFN's optimization: Adam lr 1e-3, weight decay 5e-4, 16 normal + 16 anomalous videos per step, 1000 steps."""

    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 5e-4
    batch_per_class: int = 16


TRAIN_PRESETS: dict[str, dict] = {
    "ucf-crime": {},
    # Small stores: fewer steps.
    "small": {"steps": 300},
}
