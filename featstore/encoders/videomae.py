"""VideoMAE v1, VideoMAE v2 and InternVideo v1 (VideoMAE format) on the shared video ViT.

All of them: qkv projection without bias plus separate q_bias/v_bias, the fixed 1-D interleaved sinusoid
(not stored), no CLS token. Fine-tuned checkpoints end in fc_norm (embedding = fc_norm(mean of tokens));
pretrain checkpoints end in the final norm (embedding = mean of normalized tokens). The checkpoint decides,
through the converter's implied ``pooling``.

Accepted layouts: the official one (MCG-NJU/VideoMAE, OpenGVLab/VideoMAEv2, InternVideo v1), bare or
wrapped in 'model'/'module'/'state_dict', with 'module.'/'backbone.' prefixes, fp16 or fp32; the official
pretrain one ('encoder.' + decoder keys); and the Hugging Face one (VideoMAEModel / ForVideoClassification
/ ForPreTraining; q_bias/v_bias as older transformers stored them or query.bias/value.bias as newer ones do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from featstore.encoders._convert import (
    drop_keys,
    rename_keys,
    select_prefix,
    strip_prefixes,
    unknown_layout,
    unwrap_checkpoint,
)
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
    sinusoid_table_1d,
)
from data_manifests.errors import FeatstoreError

VIDEOMAE_LAYOUTS = (
    "official VideoMAE/VideoMAEv2/InternVideo (patch_embed.proj, blocks.N.attn.qkv + q_bias/v_bias, "
    "fc_norm or norm; bare or in 'model'/'module')",
    "official pretrain (encoder.* beside decoder.*)",
    "Hugging Face VideoMAE (videomae.embeddings.patch_embeddings.projection, "
    "videomae.encoder.layer.N.attention.attention.query/key/value, fc_norm or videomae.layernorm)",
    "native (this project's module names: patch_embed, blocks.N.mlp.0)",
)

# ViT-B/16 at 224, 16 frames; the sizes below change width/depth/heads (and patch for ViT-g/14).
BASE = VideoViTConfig(
    embed_dim=768, depth=12, num_heads=12, patch_size=16, tubelet_size=2, num_frames=16, img_size=224,
    qkv_bias="qv", pos_table="sincos-1d", pooling="mean_norm",
)


@dataclass(frozen=True)
class Variant:
    name: str
    family: str
    description: str
    sizes: dict
    default_weights_file: str | None = None


VARIANTS = (
    Variant("videomae-b", "videomae", "VideoMAE v1 ViT-B/16 (768-d, 16x224)", dict(embed_dim=768, depth=12, num_heads=12)),
    Variant("videomae-l", "videomae", "VideoMAE v1 ViT-L/16 (1024-d, 16x224)", dict(embed_dim=1024, depth=24, num_heads=16)),
    Variant("videomae-h", "videomae", "VideoMAE v1 ViT-H/16 (1280-d, 16x224)", dict(embed_dim=1280, depth=32, num_heads=16)),
    Variant(
        "videomaev2-g", "videomae-v2", "VideoMAE v2 ViT-g/14 (1408-d, 16x224)",
        dict(embed_dim=1408, depth=40, num_heads=16, patch_size=14, mlp_ratio=48 / 11),
        "vit_g_hybrid_pt_1200e_k710_ft.pth",
    ),
    Variant(
        "videomaev2-b", "videomae-v2", "VideoMAE v2 ViT-B/16 distilled from ViT-g (768-d, 16x224)",
        dict(embed_dim=768, depth=12, num_heads=12), "vit_b_k710_dl_from_giant.pth",
    ),
    Variant(
        "videomaev2-s", "videomae-v2", "VideoMAE v2 ViT-S/16 distilled from ViT-g (384-d, 16x224)",
        dict(embed_dim=384, depth=12, num_heads=6), "vit_s_k710_dl_from_giant.pth",
    ),
    Variant("internvideo-h", "internvideo", "InternVideo v1 ViT-H/16, VideoMAE format (1280-d, 16x224)",
            dict(embed_dim=1280, depth=32, num_heads=16)),
)


def videomae_spec(variant: Variant, config: VideoViTConfig) -> EncoderSpec:
    return EncoderSpec(
        name=variant.name,
        family=variant.family,
        embed_dim=config.embed_dim,
        num_frames=config.num_frames,
        tubelet=config.tubelet_size,
        patch=config.patch_size,
        resolution=config.img_size,
        # VideoMAE's evaluation resizes the short side to the crop size (short_side_size 224), then crops.
        resize_short=config.img_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        pooling=POOLING_DESCRIPTIONS[config.pooling],
    )


def build_videomae(variant: Variant, overrides: dict):
    config = replace_config(replace_config(BASE, variant.sizes, variant.name), overrides, variant.name)
    return VideoViT(config), videomae_spec(variant, config)


# ---------------------------------------------------------------------- conversion
_HF_DROPPED = (r"classifier\.", r"decoder\.", r"encoder_to_decoder\.", r"mask_token$", r"position_embeddings$")
_HF_RENAMES = (
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.(q_bias|query\.bias)$", r"blocks.\1.attn.q_bias"),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.(v_bias|value\.bias)$", r"blocks.\1.attn.v_bias"),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layer\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"^encoder\.layer\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.mlp.fc2."),
    (r"^layernorm\.", "norm."),
)
_HF_QKV = re.compile(r"^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.weight$")


def hf_to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hugging Face VideoMAE names -> the official ones; separate q/k/v weights are fused into qkv."""
    state = {(k[len("videomae.") :] if k.startswith("videomae.") else k): v for k, v in state.items()}
    state = drop_keys(state, _HF_DROPPED)
    projections: dict[int, dict[str, torch.Tensor]] = {}
    rest = {}
    for key, value in state.items():
        match = _HF_QKV.match(key)
        if match:
            projections.setdefault(int(match.group(1)), {})[match.group(2)] = value
        else:
            rest[key] = value
    official = rename_keys(rest, _HF_RENAMES)
    for layer, parts in projections.items():
        if set(parts) != {"query", "key", "value"}:
            raise FeatstoreError(f"Hugging Face VideoMAE layer {layer} lacks some of query/key/value weights")
        official[f"blocks.{layer}.attn.qkv.weight"] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return official


def _without_fixed_sinusoid(state: dict[str, torch.Tensor], model: str) -> dict[str, torch.Tensor]:
    """Drop a stored copy of the fixed sinusoid; refuse a learned table, which this family does not use."""
    table = state.get("pos_embed")
    if table is None:
        return state
    n_tokens, dim = table.shape[-2:]
    if not torch.allclose(table.reshape(n_tokens, dim).float(), sinusoid_table_1d(n_tokens, dim), atol=1e-3):
        raise FeatstoreError(f"{model}: the checkpoint has a learned position table; VideoMAE-format models use the fixed sinusoid")
    return {k: v for k, v in state.items() if k != "pos_embed"}


def convert_videomae(checkpoint: dict, source: Path, model: str) -> ConvertedWeights:
    state, wrapper = unwrap_checkpoint(checkpoint, ("model", "module", "state_dict"), model)
    state, stripped = strip_prefixes(state, ("module.", "backbone."))
    if any(k.startswith(("videomae.embeddings.", "embeddings.patch_embeddings.")) for k in state):
        state, layout = hf_to_official(state), "Hugging Face VideoMAE"
    elif any(k.startswith("encoder.patch_embed.") for k in state):
        state, layout = select_prefix(state, "encoder."), "official pretrain (encoder.*)"
    elif "patch_embed.proj.weight" in state:
        layout = "official VideoMAE"
    elif "patch_embed.weight" in state:
        layout = "native"  # this project's own module names (e.g. weights saved from a built model)
    else:
        raise unknown_layout(model, state, VIDEOMAE_LAYOUTS)
    state = drop_keys(state, (r"head\.",))  # the classifier
    state = _without_fixed_sinusoid(state, model)
    implied = {
        # The final layer decides the pooling: fc_norm (fine-tuned) or the final norm (pretrain).
        "pooling": "mean_norm" if "fc_norm.weight" in state else "mean",
        "layer_scale": "blocks.0.gamma_1" in state,
    }
    described = f"{layout}, wrapper {wrapper}" + (f", prefix {''.join(stripped)}" if stripped else "")
    return ConvertedWeights(rename_keys(state, OFFICIAL_VIT_RENAMES), described, implied)


for _variant in VARIANTS:
    register_encoder(
        EncoderEntry(
            name=_variant.name,
            description=_variant.description + "; q/v-bias attention, 1-D sinusoid, fc_norm(mean) or norm-mean",
            spec=videomae_spec(_variant, replace_config(BASE, _variant.sizes, _variant.name)),
            build=partial(build_videomae, _variant),
            weights_required=True,
            default_weights_file=_variant.default_weights_file,
            convert=partial(convert_videomae, model=_variant.name),
            layouts=VIDEOMAE_LAYOUTS,
        )
    )
