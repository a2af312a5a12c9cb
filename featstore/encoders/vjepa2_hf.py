"""Optional: V-JEPA 2 through Hugging Face transformers (>= 4.53), loaded offline from a local directory.

Registered only when transformers is installed. The encoder is transformers' own ``VJEPA2Encoder`` (3-D RoPE
on q/k, no position weight); the embedding is the mean of its final-normalized tokens (``last_hidden_state``
of ``VJEPA2Model(..., skip_predictor=True)``). ``--weights`` is a ``save_pretrained`` directory (or a
safetensors file beside its config.json): the architecture is read from config.json, the predictor and any
classification head are dropped.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from featstore.encoders._convert import select_prefix, unknown_layout
from featstore.encoders._registry import (
    ConvertedWeights,
    EncoderEntry,
    EncoderSpec,
    encoder_spec,
    register_encoder,
    replace_fields,
    require_positive_integers,
)
from data_manifests.errors import FeatstoreError

MIN_TRANSFORMERS = (4, 53)
VJEPA2_LAYOUTS = (
    "Hugging Face VJEPA2Model / VJEPA2ForVideoClassification (encoder.*, or vjepa2.encoder.*), "
    "architecture from config.json beside the weights",
)


@dataclass(frozen=True)
class VJEPA2Options:
    """The VJEPA2Config fields the encoder uses (defaults: ViT-L/16, 64 frames, 256 crop)."""

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    mlp_ratio: float = 4.0
    patch_size: int = 16
    tubelet_size: int = 2
    crop_size: int = 256
    frames_per_clip: int = 64
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True

    def __post_init__(self) -> None:
        require_positive_integers(self, ("hidden_size", "num_hidden_layers", "num_attention_heads", "patch_size",
                                         "tubelet_size", "crop_size", "frames_per_clip"), "vjepa2")
        if self.hidden_size % self.num_attention_heads:
            raise FeatstoreError("vjepa2: hidden_size must divide by num_attention_heads")


def transformers_available() -> bool:
    try:
        version = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    return (major, minor) >= MIN_TRANSFORMERS


class VJEPA2Embedder(nn.Module):
    """(B, 3, T, H, W) clips -> (B, D): mean of transformers' VJEPA2Encoder output tokens."""

    def __init__(self, options: VJEPA2Options):
        super().__init__()
        # Imported here: transformers takes seconds to import and is only needed for this model.
        from transformers import VJEPA2Config
        from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder

        config = VJEPA2Config(**dataclasses.asdict(options))
        config._attn_implementation = "sdpa"
        self.encoder = VJEPA2Encoder(config)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder(clips.permute(0, 2, 1, 3, 4)).last_hidden_state  # it takes (B, T, C, H, W)
        return tokens.mean(dim=1)


def vjepa2_spec(options: VJEPA2Options) -> EncoderSpec:
    return encoder_spec(
        "vjepa2", "vjepa2-hf", embed_dim=options.hidden_size, num_frames=options.frames_per_clip,
        resolution=options.crop_size,
        resize_short=int(options.crop_size * 256 / 224),  # the VJEPA2 video processor's shortest edge
        pooling="mean of final-normalized tokens", tubelet=options.tubelet_size, patch=options.patch_size,
    )


def build_vjepa2(overrides: dict):
    options = replace_fields(VJEPA2Options(), overrides, "vjepa2")
    return VJEPA2Embedder(options), vjepa2_spec(options)


def _config_overrides(source: Path) -> dict:
    config_file = (source if source.is_dir() else source.parent) / "config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FeatstoreError(f"vjepa2: cannot read {config_file}: {exc}") from exc
    return {f.name: config[f.name] for f in dataclasses.fields(VJEPA2Options) if f.name in config}


def convert_vjepa2(checkpoint: dict, source: Path) -> ConvertedWeights:
    state = {(k[len("vjepa2.") :] if k.startswith("vjepa2.") else k): v for k, v in checkpoint.items()}
    encoder = select_prefix(state, "encoder.")
    if not encoder or not all(isinstance(v, torch.Tensor) for v in encoder.values()):
        raise unknown_layout("vjepa2", state, VJEPA2_LAYOUTS)
    native = {f"encoder.{k}": v for k, v in encoder.items()}  # predictor, pooler, classifier dropped
    return ConvertedWeights(native, "Hugging Face VJEPA2", _config_overrides(source))


if transformers_available():
    register_encoder(
        EncoderEntry(
            name="vjepa2",
            description="V-JEPA 2 via transformers (architecture from the weights folder's config.json; "
            "default ViT-L/16 64x256), mean of tokens",
            spec=vjepa2_spec(VJEPA2Options()),
            build=build_vjepa2,
            weights_required=True,
            convert=convert_vjepa2,
            layouts=VJEPA2_LAYOUTS,
        )
    )
