"""``supervised`` (the paper's Table 2 reference): an attribute classifier Linear(d,d)-ReLU-Linear(d,A)
minimizes BCE on the attribute labels of the AAM outputs of the static pairs; the anonymizer maximizes
that BCE (``supervised_objective="maximize"``) or pushes the predictions to 1/2 (``confusion``,
bounded)."""

from __future__ import annotations

import torch
from torch import nn

from anonymize.budgets.base import AdversaryBudget, BudgetStep, attribute_count
from anonymize.budgets.registry import register_budget
from anonymize.losses import attribute_bce, attribute_confusion


class AttributeAdversary(nn.Module):
    """The supervised reference's adversary: the privacy protocol's MLP shape, Linear(d,d)-ReLU-Linear(d,A)."""

    def __init__(self, dim: int, n_attributes: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, n_attributes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_budget
class SupervisedBudget(AdversaryBudget):
    name = "supervised"
    supervised = True
    static_inputs = "anonymized"

    def build_adversary(self) -> nn.Module:
        return AttributeAdversary(self.context.dim, attribute_count(self.context.store, self.name))

    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        privacy = torch.zeros((), device=self.device)
        adversary_inputs = []
        for pair in step.pairs:
            logits = self.adversary(torch.cat(pair.anonymized))
            both = torch.cat([pair.attributes, pair.attributes])
            if self.config.supervised_objective == "maximize":
                privacy = privacy - attribute_bce(logits, both)
            else:
                privacy = privacy + attribute_confusion(logits, both)
            adversary_inputs.append(([output.detach() for output in pair.anonymized], pair.attributes))
        return privacy / len(step.pairs), adversary_inputs

    def adversary_loss(self, adversary_inputs: list) -> torch.Tensor:
        loss = torch.zeros((), device=self.device)
        for outputs, attributes in adversary_inputs:
            loss = loss + attribute_bce(self.adversary(torch.cat(outputs)), torch.cat([attributes, attributes]))
        return loss / len(adversary_inputs)
