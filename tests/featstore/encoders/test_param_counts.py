"""Full-size configurations, instantiated on the meta device, against the published model sizes.

Published sizes are rounded and usually include a classifier head or CLS token that the encoders here do
not carry, hence the 3 % tolerance. Counted: trainable parameters (V-JEPA's fixed position table excluded).
Sources: VideoMAE paper (ViT-S 22M, B 87M, L 305M, H 633M), VideoMAE v2 paper (ViT-g 1011M), ViT paper
(L 307M, H 632M; V-JEPA uses these backbones), V-JEPA 2 paper (ViT-L 300M), Quo Vadis / I3D (RGB 12M).
"""

from __future__ import annotations

import pytest
import torch

from featstore.encoders import get_encoder_entry, list_encoders

PUBLISHED_MILLIONS = {
    "videomae-b": 87, "videomae-l": 305, "videomae-h": 633,
    "videomaev2-g": 1011, "videomaev2-b": 87, "videomaev2-s": 22,
    "internvideo-h": 633,
    "vjepa-l": 307, "vjepa-h": 632, "vjepa-h-384": 632,
    "vjepa2": 300,
    "i3d": 12,
}
# Registered names published sizes do not apply to: the demo models (this project's own).
NOT_PUBLISHED = {"tiny-vit", "demo-c3d"}


def trainable_millions(name: str) -> float:
    with torch.device("meta"):
        module, _ = get_encoder_entry(name).build({})
    return sum(p.numel() for p in module.parameters() if p.requires_grad) / 1e6


@pytest.mark.parametrize("name", sorted(PUBLISHED_MILLIONS))
def test_full_size_matches_published(name):
    if name not in {e.name for e in list_encoders()}:
        pytest.skip(f"{name} is an optional encoder whose library is not installed")
    published = PUBLISHED_MILLIONS[name]
    assert trainable_millions(name) == pytest.approx(published, rel=0.03)


def test_every_registered_encoder_has_a_published_size_or_is_exempt():
    torchvision_names = {"r2plus1d-18", "mvit-v2-s", "swin3d-b", "s3d"}  # sizes come from torchvision itself
    names = {e.name for e in list_encoders()} - NOT_PUBLISHED - torchvision_names
    assert names <= set(PUBLISHED_MILLIONS)


def test_exact_counts_of_the_vit_families():
    """Exact arithmetic for ViT-B/16 VideoMAE: patch conv + 12 blocks (qkv without bias, q/v biases) + fc_norm."""
    d, hidden = 768, 3072
    block = 2 * d + (3 * d * d + 2 * d) + (d * d + d) + 2 * d + (d * hidden + hidden) + (hidden * d + d)
    expected = (3 * 2 * 16 * 16 * d + d) + 12 * block + 2 * d
    assert round(trainable_millions("videomae-b") * 1e6) == expected
    # ViT-g/14: hidden int(1408 * 48 / 11) = 6144, as the official code rounds
    d, hidden = 1408, 6144
    block = 2 * d + (3 * d * d + 2 * d) + (d * d + d) + 2 * d + (d * hidden + hidden) + (hidden * d + d)
    assert round(trainable_millions("videomaev2-g") * 1e6) == (3 * 2 * 14 * 14 * d + d) + 40 * block + 2 * d
