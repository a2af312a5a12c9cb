"""V-JEPA v1 (facebookresearch/jepa) ViT-L/16, ViT-H/16 and ViT-H/16 at 384 on the shared video ViT.

Fused qkv with bias, the fixed 3-D sin-cos table stored in checkpoints as ``pos_embed`` (interpolated
trilinearly when the checkpoint was made for another grid), final LayerNorm; the clip embedding is the mean
of the normalized tokens (the authors probe with an attentive pooler; mean pooling is the fixed choice here).

Accepted layout: the official checkpoint dict ('target_encoder', else 'encoder'; or 'model'/'module'/bare)
with 'module.'/'backbone.'/'encoder.' prefixes, fp16 or fp32.
"""

from __future__ import annotations

from pathlib import Path

from featstore.encoders._convert import describe_layout, rename_keys, strip_prefixes, unwrap_checkpoint
from featstore.encoders._registry import ConvertedWeights
from featstore.encoders._vit_variants import Variant, ViTFamily
from featstore.encoders.vit_video import OFFICIAL_VIT_RENAMES, VideoViTConfig, official_or_native

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

VARIANTS = (
    Variant("vjepa-l", "vjepa", "V-JEPA ViT-L/16 (1024-d, 16x224)", dict(embed_dim=1024, depth=24, num_heads=16),
            "vitl16.pth.tar"),
    Variant("vjepa-h", "vjepa", "V-JEPA ViT-H/16 (1280-d, 16x224)", dict(embed_dim=1280, depth=32, num_heads=16),
            "vith16.pth.tar"),
    Variant(
        "vjepa-h-384", "vjepa", "V-JEPA ViT-H/16 at 384 (1280-d, 16x384)",
        dict(embed_dim=1280, depth=32, num_heads=16, img_size=384), "vith16-384.pth.tar",
    ),
)


def convert_vjepa(checkpoint: dict, source: Path, model: str) -> ConvertedWeights:
    state, wrapper = unwrap_checkpoint(checkpoint, VJEPA_WRAPPERS, model)
    state, stripped = strip_prefixes(state, ("module.", "backbone.", "encoder."))
    layout = official_or_native(state, "official V-JEPA", model, VJEPA_LAYOUTS)
    return ConvertedWeights(rename_keys(state, OFFICIAL_VIT_RENAMES), describe_layout(layout, wrapper, stripped))


# V-JEPA's evaluation transform: short side int(crop * 256 / 224), then a centre crop.
VJEPA = ViTFamily(base=BASE, resize_short=lambda crop: int(crop * 256 / 224), convert=convert_vjepa,
                  layouts=VJEPA_LAYOUTS, description="; 3-D sin-cos table, final norm, mean of tokens")
VJEPA.register(VARIANTS)
