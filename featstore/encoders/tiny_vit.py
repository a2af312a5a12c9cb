"""tiny-vit: a small seeded random-initialized video ViT for the demo and the tests."""

from __future__ import annotations

import dataclasses

from featstore.encoders._registry import IMAGENET_MEAN, IMAGENET_STD, EncoderEntry, EncoderSpec, register_encoder
from featstore.encoders.vit_video import VideoViT, VideoViTConfig
from data_manifests.errors import FeatstoreError

TINY_VIT = VideoViTConfig(embed_dim=192, depth=4, num_heads=3, patch_size=16, tubelet_size=2, num_frames=16, img_size=64)


def tiny_vit_spec(config: VideoViTConfig) -> EncoderSpec:
    return EncoderSpec(
        name="tiny-vit",
        family="vit-video",
        embed_dim=config.embed_dim,
        num_frames=config.num_frames,
        tubelet=config.tubelet_size,
        patch=config.patch_size,
        resolution=config.img_size,
        # The ViT eval convention: resize the short side to crop * 256 / 224, then centre crop.
        resize_short=round(config.img_size * 256 / 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        pooling="mean of final-normalized tokens",
    )


def build_tiny_vit(overrides: dict):
    try:
        config = dataclasses.replace(TINY_VIT, **overrides)
    except TypeError as exc:
        fields = ", ".join(f.name for f in dataclasses.fields(VideoViTConfig))
        raise FeatstoreError(f"tiny-vit: bad override ({exc}); known fields: {fields}") from exc
    return VideoViT(config), tiny_vit_spec(config)


register_encoder(
    EncoderEntry(
        name="tiny-vit",
        description="small video ViT (192-d, 4 layers, 64px, 16 frames), seeded random init; demo and tests",
        spec=tiny_vit_spec(TINY_VIT),
        build=build_tiny_vit,
        weights_required=False,
    )
)
