"""Shared steps of the checkpoint converters: unwrap training checkpoints, strip prefixes, rename keys."""

from __future__ import annotations

import re

import torch

from data_manifests.errors import FeatstoreError


def is_state_dict(obj: object) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap_checkpoint(checkpoint: dict, wrappers: tuple[str, ...], model: str) -> tuple[dict[str, torch.Tensor], str]:
    """Descend through training-checkpoint wrappers ({'model': ...}, {'target_encoder': ...}) to the tensors.

    ``wrappers`` are tried in order at each level; returns the state dict and the wrapper path taken
    ("bare" when the file is the state dict itself).
    """
    current, taken = checkpoint, []
    while not is_state_dict(current):
        inner_key = next((k for k in wrappers if isinstance(current.get(k), dict) and current[k]), None)
        if inner_key is None:
            keys = sorted(str(k) for k in current)[:8]
            raise FeatstoreError(
                f"{model}: no weights found in the checkpoint (top-level keys {keys}); expected a bare state dict "
                f"or one wrapped in {list(wrappers)}"
            )
        current = current[inner_key]
        taken.append(inner_key)
    return dict(current), "/".join(taken) or "bare"


def strip_prefixes(state: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Remove each prefix that every key carries (repeatedly: 'module.backbone.' is two steps)."""
    stripped: list[str] = []
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if state and all(key.startswith(prefix) for key in state):
                state = {key[len(prefix) :]: value for key, value in state.items()}
                stripped.append(prefix)
                changed = True
    return state, stripped


def describe_layout(layout: str, wrapper: str, stripped: list[str]) -> str:
    """How a checkpoint was read, for reports: its layout, the wrappers descended and the prefixes stripped."""
    return f"{layout}, wrapper {wrapper}" + (f", prefix {''.join(stripped)}" if stripped else "")


def select_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The keys under ``prefix`` with it removed (e.g. the encoder of a pretrain checkpoint)."""
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def drop_keys(state: dict[str, torch.Tensor], patterns: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Remove keys matching any regex (heads, decoders: parts of the checkpoint the encoder does not use)."""
    compiled = [re.compile(p) for p in patterns]
    return {k: v for k, v in state.items() if not any(p.match(k) for p in compiled)}


def rename_keys(state: dict[str, torch.Tensor], rules: tuple[tuple[str, str], ...]) -> dict[str, torch.Tensor]:
    """Apply regex substitutions (in order) to every key."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in compiled:
            key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


def unknown_layout(model: str, state: dict[str, torch.Tensor], layouts: tuple[str, ...]) -> FeatstoreError:
    keys = sorted(state)[:4]
    return FeatstoreError(
        f"{model}: cannot tell the checkpoint's key layout (keys like {keys}); accepted layouts: {'; '.join(layouts)}"
    )
