"""The shared pieces every family's entries are built from: ViT families and their variants, the spec
builder, field overrides. Full sizes on the meta device (nothing allocated)."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from featstore.encoders import get_encoder_entry, list_encoders
from featstore.encoders._vit_variants import ViTFamily
from featstore.encoders.i3d import I3DConfig
from featstore.encoders.videomae import VARIANTS as VIDEOMAE_VARIANTS
from featstore.encoders.videomae import VIDEOMAE
from featstore.encoders.vit_video import POOLING_DESCRIPTIONS, VideoViT, VideoViTConfig
from featstore.encoders.vjepa import VARIANTS as VJEPA_VARIANTS
from featstore.encoders.vjepa import VJEPA
from data_manifests.errors import FeatstoreError

FAMILY_VARIANTS = [(VIDEOMAE, variant) for variant in VIDEOMAE_VARIANTS] + [(VJEPA, variant) for variant in VJEPA_VARIANTS]
VIT_ENCODERS = ["tiny-vit"] + [variant.name for _, variant in FAMILY_VARIANTS]


@pytest.mark.parametrize(("family", "variant"), FAMILY_VARIANTS, ids=lambda value: getattr(value, "name", ""))
def test_each_variant_is_registered_as_its_family_at_its_sizes(family: ViTFamily, variant):
    entry = get_encoder_entry(variant.name)
    config = family.config(variant, {})
    assert all(getattr(config, key) == value for key, value in variant.sizes.items())
    assert entry.spec == family.spec(variant, config) and entry.spec.family == variant.family
    assert entry.description == variant.description + family.description
    assert entry.default_weights_file == variant.default_weights_file and entry.layouts == family.layouts
    assert entry.weights_required
    with torch.device("meta"):
        module, spec = entry.build({"num_frames": 8})
    assert isinstance(module, VideoViT) and module.config == family.config(variant, {"num_frames": 8})
    assert spec.num_frames == 8 and spec.resize_short == entry.spec.resize_short


@pytest.mark.parametrize("name", VIT_ENCODERS)
@pytest.mark.parametrize("pooling", ["mean", "mean_norm"])
def test_the_spec_names_the_pooling_the_built_model_does(name, pooling):
    with torch.device("meta"):
        module, spec = get_encoder_entry(name).build({"pooling": pooling})
    assert module.config.pooling == pooling and spec.pooling == POOLING_DESCRIPTIONS[pooling]


def test_each_family_keeps_its_official_evaluation_resize():
    resize = {name: get_encoder_entry(name).spec.resize_short
              for name in ("tiny-vit", "videomae-b", "vjepa-l", "vjepa-h-384", "i3d", "demo-c3d")}
    # VideoMAE: the crop size; V-JEPA: int(crop * 256 / 224), 384 -> 438; the ImageNet convention rounds (64 -> 73)
    assert resize == {"tiny-vit": 73, "videomae-b": 224, "vjepa-l": 256, "vjepa-h-384": 438, "i3d": 256,
                      "demo-c3d": 73}


@pytest.mark.parametrize(("name", "config_type"), [("tiny-vit", VideoViTConfig), ("vjepa-l", VideoViTConfig),
                                                  ("videomaev2-g", VideoViTConfig), ("i3d", I3DConfig)])
def test_an_unknown_override_is_one_line_naming_the_known_fields(name, config_type):
    known = ", ".join(field.name for field in fields(config_type))
    with pytest.raises(FeatstoreError) as raised:
        get_encoder_entry(name).build({"depht": 2})
    message = str(raised.value)
    assert message.startswith(f"{name}: bad override (") and message.endswith(f"; known fields: {known}")
    assert "\n" not in message


@pytest.mark.parametrize("entry", [entry for entry in list_encoders() if entry.name in ("i3d", "tiny-vit", "vjepa2")],
                         ids=lambda entry: entry.name)
def test_sizes_must_be_positive_integers(entry):
    size = "frames_per_clip" if entry.name == "vjepa2" else "num_frames"
    prefix = "vjepa2: " if entry.name == "vjepa2" else ""
    for bad in (0, True, 2.0):
        with pytest.raises(FeatstoreError, match=f"^{prefix}{size} must be a positive integer, got {bad!r}$"):
            entry.build({size: bad})
