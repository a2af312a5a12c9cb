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
from pathlib import Path

import torch

from featstore.encoders._convert import (
    describe_layout,
    drop_keys,
    rename_keys,
    select_prefix,
    strip_prefixes,
    unwrap_checkpoint,
)
from featstore.encoders._registry import ConvertedWeights
from featstore.encoders._vit_variants import Variant, ViTFamily
from featstore.encoders.vit_video import OFFICIAL_VIT_RENAMES, VideoViTConfig, official_or_native, sinusoid_table_1d
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
    else:
        layout = official_or_native(state, "official VideoMAE", model, VIDEOMAE_LAYOUTS)
    state = drop_keys(state, (r"head\.",))  # the classifier
    state = _without_fixed_sinusoid(state, model)
    implied = {
        # The final layer decides the pooling: fc_norm (fine-tuned) or the final norm (pretrain).
        "pooling": "mean_norm" if "fc_norm.weight" in state else "mean",
        "layer_scale": "blocks.0.gamma_1" in state,
    }
    described = describe_layout(layout, wrapper, stripped)
    return ConvertedWeights(rename_keys(state, OFFICIAL_VIT_RENAMES), described, implied)


# VideoMAE's evaluation resizes the short side to the crop size (short_side_size 224), then crops.
VIDEOMAE = ViTFamily(base=BASE, resize_short=lambda crop: crop, convert=convert_videomae, layouts=VIDEOMAE_LAYOUTS,
                     description="; q/v-bias attention, 1-D sinusoid, fc_norm(mean) or norm-mean")
VIDEOMAE.register(VARIANTS)
