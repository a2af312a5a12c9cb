"""The encoder registry: register, create by name (with validated overrides), list."""

from featstore.encoders._registry import (
    ConvertedWeights,
    EncoderEntry,
    EncoderSpec,
    LoadedEncoder,
    create_encoder,
    get_encoder_entry,
    list_encoders,
    register_encoder,
)

# Importing the family modules registers their encoders (the optional ones only when their library imports).
from featstore.encoders import tiny_vit, demo_c3d, vjepa, videomae, i3d  # noqa: E402,F401  (registration is the point)
from featstore.encoders import torchvision_video, vjepa2_hf  # noqa: E402,F401

__all__ = [
    "ConvertedWeights",
    "EncoderEntry",
    "EncoderSpec",
    "LoadedEncoder",
    "create_encoder",
    "get_encoder_entry",
    "list_encoders",
    "register_encoder",
]
