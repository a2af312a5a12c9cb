"""Checkpoint families on the shared video ViT (VideoMAE, V-JEPA) and their named sizes (variants).

A family fixes the base config, the evaluation resize, how its checkpoints are read and what its
description adds; a variant names one size of it (the config fields it changes, the official file name).
``ViTFamily.register`` registers one encoder per variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from featstore.encoders._registry import (
    ConvertedWeights,
    EncoderEntry,
    EncoderSpec,
    encoder_spec,
    register_encoder,
    replace_fields,
)
from featstore.encoders.vit_video import POOLING_DESCRIPTIONS, VideoViT, VideoViTConfig


def vit_spec(name: str, family: str, config: VideoViTConfig, resize_short: int) -> EncoderSpec:
    """The spec of a video ViT built from ``config`` (ImageNet mean/std)."""
    return encoder_spec(name, family, embed_dim=config.embed_dim, num_frames=config.num_frames,
                        resolution=config.img_size, resize_short=resize_short,
                        pooling=POOLING_DESCRIPTIONS[config.pooling], tubelet=config.tubelet_size,
                        patch=config.patch_size)


@dataclass(frozen=True)
class Variant:
    """One registered size of a family."""

    name: str
    family: str  # the family recorded in the spec (a family module may register several, e.g. VideoMAE v1/v2)
    description: str
    sizes: dict  # the fields of the family's base config this size changes
    default_weights_file: str | None = None  # the official checkpoint's file name


@dataclass(frozen=True)
class ViTFamily:
    """What every variant of a family shares."""

    base: VideoViTConfig
    resize_short: Callable[[int], int]  # crop size -> the short side the official evaluation resizes to
    description: str  # appended to each variant's description
    convert: Callable[..., ConvertedWeights]  # (checkpoint, source, model=the variant's name)
    layouts: tuple[str, ...]  # what convert accepts, for reports

    def config(self, variant: Variant, overrides: dict) -> VideoViTConfig:
        sized = replace_fields(self.base, variant.sizes, variant.name)
        return replace_fields(sized, overrides, variant.name)

    def spec(self, variant: Variant, config: VideoViTConfig) -> EncoderSpec:
        return vit_spec(variant.name, variant.family, config, self.resize_short(config.img_size))

    def build(self, variant: Variant, overrides: dict) -> tuple[VideoViT, EncoderSpec]:
        config = self.config(variant, overrides)
        return VideoViT(config), self.spec(variant, config)

    def register(self, variants: tuple[Variant, ...]) -> None:
        for variant in variants:
            register_encoder(
                EncoderEntry(
                    name=variant.name,
                    description=variant.description + self.description,
                    spec=self.spec(variant, self.config(variant, {})),
                    build=partial(self.build, variant),
                    weights_required=True,
                    default_weights_file=variant.default_weights_file,
                    convert=partial(self.convert, model=variant.name),
                    layouts=self.layouts,
                )
            )
