"""Optional: torchvision's Kinetics-400 video classifiers as clip encoders (classifier removed).

Registered only when torchvision imports beside our torch. NOT TESTED in this project's environment
(torchvision cannot be installed next to its torch build). Weights are torchvision's bare state dicts
(e.g. r2plus1d_18-91a641e6.pth); the classifier keys are dropped. Input size and mean/std are read from
each weights enum's own inference transform. torchvision resizes r2plus1d_18 to a fixed 128x171 and s3d to
256x256; our short-side resize matches those for 4:3 and square frames respectively.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch.nn as nn

from featstore.encoders._convert import drop_keys, strip_prefixes, unwrap_checkpoint
from featstore.encoders._registry import (
    ConvertedWeights,
    EncoderEntry,
    EncoderSpec,
    encoder_spec,
    register_encoder,
    replace_fields,
)

try:  # a torchvision built for another torch fails at import with any of these
    import torchvision.models.video as tv_video
except (ImportError, RuntimeError, OSError):
    tv_video = None


@dataclass(frozen=True)
class TorchvisionVideo:
    name: str
    builder: str  # torchvision.models.video function
    weights_enum: str
    classifier: str  # attribute replaced by Identity so the pooled features come out
    embed_dim: int
    num_frames: int  # the clip length torchvision's accuracy figures use
    pooling: str


MODELS = (
    TorchvisionVideo("r2plus1d-18", "r2plus1d_18", "R2Plus1D_18_Weights", "fc", 512, 16, "global average pool"),
    TorchvisionVideo("mvit-v2-s", "mvit_v2_s", "MViT_V2_S_Weights", "head", 768, 16, "CLS token after the final norm"),
    TorchvisionVideo("swin3d-b", "swin3d_b", "Swin3D_B_Weights", "head", 1024, 32, "global average pool"),
    TorchvisionVideo("s3d", "s3d", "S3D_Weights", "classifier", 1024, 128, "AvgPool3d((2,7,7)) then mean over time"),
)


@dataclass(frozen=True)
class TorchvisionOptions:
    num_frames: int
    img_size: int


def _transform(model: TorchvisionVideo):
    return getattr(tv_video, model.weights_enum).KINETICS400_V1.transforms()


def torchvision_spec(model: TorchvisionVideo, options: TorchvisionOptions) -> EncoderSpec:
    transform = _transform(model)
    return encoder_spec(model.name, "torchvision-video", embed_dim=model.embed_dim, num_frames=options.num_frames,
                        resolution=options.img_size, resize_short=min(transform.resize_size), pooling=model.pooling,
                        mean=tuple(transform.mean), std=tuple(transform.std))


def build_torchvision(model: TorchvisionVideo, overrides: dict):
    default = TorchvisionOptions(model.num_frames, _transform(model).crop_size[0])
    options = replace_fields(default, overrides, model.name)
    network = getattr(tv_video, model.builder)(weights=None)
    setattr(network, model.classifier, nn.Identity())
    return network, torchvision_spec(model, options)


def convert_torchvision(checkpoint: dict, source: Path, model: TorchvisionVideo) -> ConvertedWeights:
    state, wrapper = unwrap_checkpoint(checkpoint, ("model", "state_dict", "module"), model.name)
    state, _ = strip_prefixes(state, ("module.",))
    return ConvertedWeights(drop_keys(state, (rf"{model.classifier}\.",)), f"torchvision, wrapper {wrapper}")


if tv_video is not None:
    for _model in MODELS:
        _transform_of = _transform(_model)
        register_encoder(
            EncoderEntry(
                name=_model.name,
                description=f"torchvision {_model.builder} (Kinetics-400), {_model.embed_dim}-d; optional, untested here",
                spec=torchvision_spec(_model, TorchvisionOptions(_model.num_frames, _transform_of.crop_size[0])),
                build=partial(build_torchvision, _model),
                weights_required=True,
                convert=partial(convert_torchvision, model=_model),
                layouts=("torchvision state dict (bare)",),
            )
        )
