"""``adversarial`` (SPAct-style): a projection head g (MLP d -> ``budget_hidden`` -> ``budget_proj``) is
trained to *minimize* NT-Xent(g(f_A(s1)), g(f_A(s2))) on the static pairs while the anonymizer
maximizes it (or brings it to its uniform value); after each anonymizer step, ``budget_steps`` updates
of g on the same (detached) outputs; optional re-initialization every ``budget_restart_every`` epochs."""

from __future__ import annotations

import torch
from torch import nn

from anonymize.budgets.base import AdversaryBudget, BudgetStep, ntxent_privacy
from anonymize.budgets.registry import register_budget
from anonymize.losses import nt_xent


class BudgetHead(nn.Module):
    """SPAct-style projection head for the adversarial NT-Xent budget (outputs are L2-normalized in NT-Xent)."""

    def __init__(self, dim: int, hidden: int, proj: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, proj))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_budget
class AdversarialBudget(AdversaryBudget):
    name = "adversarial"
    static_inputs = "anonymized"

    def build_adversary(self) -> nn.Module:
        return BudgetHead(self.context.dim, self.config.budget_hidden, self.config.budget_proj)

    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        privacy = ntxent_privacy(step.pairs, self.adversary, self.config, self.device)
        return privacy, [[output.detach() for output in pair.anonymized] for pair in step.pairs]

    def adversary_loss(self, adversary_inputs: list) -> torch.Tensor:
        loss = torch.zeros((), device=self.device)
        for first, second in adversary_inputs:
            loss = loss + nt_xent(self.adversary(first), self.adversary(second), self.config.temperature)
        return loss / len(adversary_inputs)
