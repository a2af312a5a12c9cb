"""The encoder registry: register, create by name (with validated overrides), list."""

from featstore.encoders._registry import (
    EncoderEntry,
    EncoderSpec,
    LoadedEncoder,
    create_encoder,
    get_encoder_entry,
    list_encoders,
    register_encoder,
)

# Importing the family modules registers their encoders.
from featstore.encoders import tiny_vit  # noqa: E402,F401  (registration side effect is the point)

__all__ = [
    "EncoderEntry",
    "EncoderSpec",
    "LoadedEncoder",
    "create_encoder",
    "get_encoder_entry",
    "list_encoders",
    "register_encoder",
]
