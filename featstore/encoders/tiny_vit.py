"""tiny-vit: a small seeded random-initialized video ViT for the demo and the tests."""

from __future__ import annotations

from featstore.encoders._registry import (
    EncoderEntry,
    EncoderSpec,
    imagenet_eval_resize,
    register_encoder,
    replace_fields,
)
from featstore.encoders._vit_variants import vit_spec
from featstore.encoders.vit_video import VideoViT, VideoViTConfig

TINY_VIT = VideoViTConfig(embed_dim=192, depth=4, num_heads=3, patch_size=16, tubelet_size=2, num_frames=16, img_size=64)


def tiny_vit_spec(config: VideoViTConfig) -> EncoderSpec:
    return vit_spec("tiny-vit", "vit-video", config, imagenet_eval_resize(config.img_size))


def build_tiny_vit(overrides: dict):
    config = replace_fields(TINY_VIT, overrides, "tiny-vit")
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
