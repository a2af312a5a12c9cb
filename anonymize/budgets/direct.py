"""``direct`` (authors' code): NT-Xent between the AAM outputs of two static clips of the same video,
maximized (or brought to its uniform value, ``ntxent_objective="to-uniform"``); no adversary, one joint
AdamW step for the AAM and the task heads."""

from __future__ import annotations

import torch

from anonymize.budgets.base import BudgetMode, BudgetStep, ntxent_privacy
from anonymize.budgets.registry import register_budget


@register_budget
class DirectBudget(BudgetMode):
    name = "direct"
    static_inputs = "anonymized"

    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        privacy = ntxent_privacy(step.pairs, lambda output: output, self.config, self.device)
        return privacy, [[output.detach() for output in pair.anonymized] for pair in step.pairs]
