"""``supervised-clips``: an ensemble of attribute classifiers on the AAM outputs of FULL clips.

For stores with attribute labels. Per step, one random full clip of each video of the budget batch
goes through the AAM; ``adversary_ensemble`` attribute MLPs (Linear(d,d)-ReLU-Linear(d,A), each its
own initialization) minimize BCE on the detached outputs (``budget_steps`` updates per anonymizer
step; all re-initialized every ``budget_restart_every`` epochs); the anonymizer pushes every member's
predictions to 1/2 (``attribute_confusion``, bounded), averaged over the ensemble. Static clips are
not used, so a shortcut through static inputs does not exist.
"""

from __future__ import annotations

import torch
from torch import nn

from anonymize.budgets.base import AdversaryBudget, BudgetStep, attribute_count
from anonymize.budgets.registry import register_budget
from anonymize.budgets.supervised import AttributeAdversary
from anonymize.losses import attribute_bce, attribute_confusion


@register_budget
class SupervisedClipsBudget(AdversaryBudget):
    name = "supervised-clips"
    supervised = True
    static_inputs = "none"
    uses_clips = True
    component = "adversary_ensemble"

    def build_adversary(self) -> nn.Module:
        n_attributes = attribute_count(self.context.store, self.name)
        return nn.ModuleList(AttributeAdversary(self.context.dim, n_attributes)
                             for _ in range(self.config.adversary_ensemble))

    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        clips = step.clips
        if clips is None or clips.anonymized.shape[0] == 0:
            return torch.zeros((), device=self.device), []
        confusion = [attribute_confusion(member(clips.anonymized), clips.attributes) for member in self.adversary]
        privacy = torch.stack(confusion).mean()
        return privacy, [(clips.anonymized.detach(), clips.attributes)]

    def adversary_loss(self, adversary_inputs: list) -> torch.Tensor:
        anonymized, attributes = adversary_inputs[0]
        return torch.stack([attribute_bce(member(anonymized), attributes) for member in self.adversary]).mean()
