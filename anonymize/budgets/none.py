"""``none``: no privacy term (an ablation: utility + latent consistency only)."""

from __future__ import annotations

import torch

from anonymize.budgets.base import BudgetMode, BudgetStep
from anonymize.budgets.registry import register_budget


@register_budget
class NoBudget(BudgetMode):
    name = "none"
    static_inputs = "none"

    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        return torch.zeros((), device=self.device), []
