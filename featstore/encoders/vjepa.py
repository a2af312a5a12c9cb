"""V-JEPA v1 (facebookresearch/jepa) ViT-L/16, ViT-H/16 and ViT-H/16 at 384 on the shared video ViT.

Fused qkv with bias, the fixed 3-D sin-cos table stored in checkpoints as ``pos_embed`` (interpolated
trilinearly when the checkpoint was made for another grid), final LayerNorm; the clip embedding is the mean
of the normalized tokens (the authors probe with an attentive pooler; mean pooling is the fixed choice here).

Accepted layout: the official checkpoint dict ('target_encoder', else 'encoder'; or 'model'/'module'/bare)
with 'module.'/'backbone.'/'encoder.' prefixes, fp16 or fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from featstore.encoders._convert import rename_keys, strip_prefixes, unknown_layout, unwrap_checkpoint
from featstore.encoders._registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ConvertedWeights,
    EncoderEntry,
    EncoderSpec,
    register_encoder,
)
from featstore.encoders.vit_video import (
    OFFICIAL_VIT_RENAMES,
    POOLING_DESCRIPTIONS,
    VideoViT,
    VideoViTConfig,
    replace_config,
)

VJEPA_LAYOUTS = (
    "official V-JEPA (target_encoder/encoder -> module.backbone.{patch_embed.proj, pos_embed, blocks.N.attn.qkv, "
    "norm}; or bare)",
    "native (this project's module names: patch_embed, blocks.N.mlp.0)",
)
# Preferred wrapper first: the EMA target encoder is the one the authors evaluate.
VJEPA_WRAPPERS = ("target_encoder", "encoder", "model", "module", "state_dict")

BASE = VideoViTConfig(
    embed_dim=1024, depth=24, num_heads=16, patch_size=16, tubelet_size=2, num_frames=16, img_size=224,
    qkv_bias="qkv", pos_table="sincos-3d", pooling="mean",
)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    sizes: dict
    default_weights_file: str


VARIANTS = (
    Variant("vjepa-l", "V-JEPA ViT-L/16 (1024-d, 16x224)", dict(embed_dim=1024, depth=24, num_heads=16), "vitl16.pth.tar"),
    Variant("vjepa-h", "V-JEPA ViT-H/16 (1280-d, 16x224)", dict(embed_dim=1280, depth=32, num_heads=16), "vith16.pth.tar"),
    Variant(
        "vjepa-h-384", "V-JEPA ViT-H/16 at 384 (1280-d, 16x384)",
        dict(embed_dim=1280, depth=32, num_heads=16, img_size=384), "vith16-384.pth.tar",
    ),
)


def vjepa_spec(variant: Variant, config: VideoViTConfig) -> EncoderSpec:
    return EncoderSpec(
        name=variant.name,
        family="vjepa",
        embed_dim=config.embed_dim,
        num_frames=config.num_frames,
        tubelet=config.tubelet_size,
        patch=config.patch_size,
        resolution=config.img_size,
        # V-JEPA's evaluation transform: short side int(crop * 256 / 224), then a centre crop.
        resize_short=int(config.img_size * 256 / 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        pooling=POOLING_DESCRIPTIONS[config.pooling],
    )


def build_vjepa(variant: Variant, overrides: dict):
    config = replace_config(replace_config(BASE, variant.sizes, variant.name), overrides, variant.name)
    return VideoViT(config), vjepa_spec(variant, config)


def convert_vjepa(checkpoint: dict, source: Path, model: str) -> ConvertedWeights:
    state, wrapper = unwrap_checkpoint(checkpoint, VJEPA_WRAPPERS, model)
    state, stripped = strip_prefixes(state, ("module.", "backbone.", "encoder."))
    if "patch_embed.proj.weight" in state:
        layout = "official V-JEPA"
    elif "patch_embed.weight" in state:
        layout = "native"  # this project's own module names (e.g. weights saved from a built model)
    else:
        raise unknown_layout(model, state, VJEPA_LAYOUTS)
    described = f"{layout}, wrapper {wrapper}" + (f", prefix {''.join(stripped)}" if stripped else "")
    return ConvertedWeights(rename_keys(state, OFFICIAL_VIT_RENAMES), described)


for _variant in VARIANTS:
    register_encoder(
        EncoderEntry(
            name=_variant.name,
            description=_variant.description + "; 3-D sin-cos table, final norm, mean of tokens",
            spec=vjepa_spec(_variant, replace_config(BASE, _variant.sizes, _variant.name)),
            build=partial(build_vjepa, _variant),
            weights_required=True,
            default_weights_file=_variant.default_weights_file,
            convert=partial(convert_vjepa, model=_variant.name),
            layouts=VJEPA_LAYOUTS,
        )
    )
