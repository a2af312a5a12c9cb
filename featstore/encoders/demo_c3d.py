"""demo-c3d: a small 3D CNN with bundled pretrained weights; the demo's default encoder.

A full-resolution spatial stem (1x3x3) and four Conv3d stages (3x3x3), each Conv-BatchNorm-ReLU, then a
global average pool to a 192-d clip embedding (16 frames at 64 px in). The stem keeps the small actor's
details (skin colour, body shape, clothing stripes) before the first downsampling. The weights come
from ``featstore.encoders.demo_pretrain`` (see its docstring for why and how): trained on a synthetic dataset generated with another seed than the demo's, so the demo's
features carry motion and appearance the way a real foundation model's do. The file ships in
``featstore/encoders/weights/``. A CNN rather than a ViT because it learns the small actor's motion and
appearance from a few thousand CPU steps; a tiny ViT trained the same way stayed near chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from featstore.encoders._registry import EncoderEntry, EncoderSpec, encoder_spec, imagenet_eval_resize, register_encoder
from data_manifests.errors import FeatstoreError

WEIGHTS = Path(__file__).parent / "weights" / "demo-c3d.safetensors"


@dataclass(frozen=True)
class DemoC3DConfig:
    widths: tuple[int, ...] = (12, 32, 64, 128, 192)
    kernels: tuple[tuple[int, int, int], ...] = ((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3))
    # (time, height, width) stride of each stage: 16x64x64 in -> 2x8x8 before pooling
    strides: tuple[tuple[int, int, int], ...] = ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 1, 1))
    num_frames: int = 16
    img_size: int = 64

    @property
    def embed_dim(self) -> int:
        return self.widths[-1]


DEMO_C3D = DemoC3DConfig()


class DemoC3D(nn.Module):
    """(B, 3, T, H, W) clips -> (B, D) clip embeddings (mean of the last stage's activations)."""

    def __init__(self, config: DemoC3DConfig = DEMO_C3D):
        super().__init__()
        self.config = config
        stages, channels = [], 3
        for width, kernel, stride in zip(config.widths, config.kernels, config.strides):
            padding = tuple(k // 2 for k in kernel)
            stages.append(nn.Sequential(nn.Conv3d(channels, width, kernel, stride=stride, padding=padding, bias=False),
                                        nn.BatchNorm3d(width), nn.ReLU(inplace=True)))
            channels = width
        self.stages = nn.Sequential(*stages)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.stages(clips).mean(dim=(2, 3, 4))


def demo_c3d_spec() -> EncoderSpec:
    return encoder_spec("demo-c3d", "conv3d", embed_dim=DEMO_C3D.embed_dim, num_frames=DEMO_C3D.num_frames,
                        resolution=DEMO_C3D.img_size, resize_short=imagenet_eval_resize(DEMO_C3D.img_size),
                        pooling="global average of the last stage")


def build_demo_c3d(overrides: dict):
    if overrides:
        raise FeatstoreError(f"demo-c3d has fixed pretrained weights; overrides are not accepted (got {sorted(overrides)})")
    return DemoC3D(), demo_c3d_spec()


register_encoder(
    EncoderEntry(
        name="demo-c3d",
        description="small 3D CNN pretrained on separate synthetic data (actions + appearance); the demo's encoder",
        spec=demo_c3d_spec(),
        build=build_demo_c3d,
        weights_required=False,
        bundled_weights=WEIGHTS,
    )
)
