"""Generic pieces of the heads' training recipes: the model EMA, the warmup-cosine schedule, and AdamW
parameter groups that decay only the weights of chosen module types."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """Exponential moving average of a model's parameters and floating buffers (evaluated instead of it)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema_value, value in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema_value.dtype.is_floating_point:
                ema_value.mul_(self.decay).add_(value.detach(), alpha=1 - self.decay)
            else:
                ema_value.copy_(value)


def parameter_groups(model: nn.Module, weight_decay: float, decayed: tuple[type[nn.Module], ...]) -> list[dict]:
    """Weight decay on the ``weight`` of ``decayed`` modules only; none on biases, norms, scales (as TriDet)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad:
                continue
            if name == "weight" and isinstance(module, decayed):
                decay.append(parameter)
            else:
                no_decay.append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, base_lr: float, eta_min: float = 1e-8) -> float:
    """Linear warmup from 0 then cosine annealing to ``eta_min`` (per optimizer step)."""
    if step < warmup_steps:
        return base_lr * step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * min(1.0, progress)))
