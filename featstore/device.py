"""Device and numeric precision, resolved in one place for every command."""

from __future__ import annotations

import contextlib

import torch

from data_manifests.errors import FeatstoreError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise FeatstoreError(f"unknown device {requested!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FeatstoreError(f"device {requested!r} was asked for but no CUDA GPU is available here")
    return device


def resolve_precision(device: torch.device, requested: str = "auto") -> torch.dtype:
    """Compute dtype for the encoder forward: bf16 autocast on GPUs that support it, else fp32."""
    if requested not in PRECISIONS:
        raise FeatstoreError(f"precision must be one of {list(PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if device.type == "cpu" and requested == "fp16":
        raise FeatstoreError("fp16 is not supported on the CPU; use fp32 or bf16")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[requested]


def autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
