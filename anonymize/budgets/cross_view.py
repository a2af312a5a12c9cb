"""``cross-view``: a critic that matches anonymized full clips to their video's RAW static clip.

Per step, for the videos of the budget batch, one random full clip per video x_i (the rows users
consume) and the first raw static clip s_i of the same video. The critic is two small MLPs,
g, h: d -> ``critic_hidden`` -> ``critic_proj`` (ReLU), and scores every pair of the batch:

    logits_ij = <g(f_A(x_i)), h(s_j)> / critic_temperature   (both L2-normalized)

- The critic minimizes InfoNCE (cross-entropy of picking s_i for f_A(x_i) among the batch's static
  clips) on detached AAM outputs, ``budget_steps`` updates per anonymizer step, re-initialized every
  ``budget_restart_every`` epochs.
- The anonymizer defeats it: ``critic_objective="confusion"`` (default, bounded) minimizes
  KL(uniform || softmax_j logits_ij), i.e. pushes the critic to chance; ``maximize`` maximizes the
  critic's InfoNCE.

The critic reads RAW static clips (``static_inputs = "raw"``: the AAM never sees a static clip for this
term), so moving static inputs gains the anonymizer nothing: the only way to lower the critic's
matching is to remove from f_A(x) what a full clip shares with a frame of its video.
"""

from __future__ import annotations

import torch
from torch import nn

from anonymize.budgets.base import AdversaryBudget, BudgetStep
from anonymize.budgets.registry import register_budget
from anonymize.losses import info_nce, info_nce_confusion, matching_logits


def projection_mlp(dim: int, hidden: int, proj: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, proj))


class CrossViewCritic(nn.Module):
    """g for anonymized clips, h for raw static clips; ``forward`` gives the (N, N) matching logits."""

    def __init__(self, dim: int, hidden: int, proj: int, temperature: float):
        super().__init__()
        self.clip_projection = projection_mlp(dim, hidden, proj)
        self.static_projection = projection_mlp(dim, hidden, proj)
        self.temperature = temperature

    def forward(self, anonymized_clips: torch.Tensor, raw_static: torch.Tensor) -> torch.Tensor:
        return matching_logits(self.clip_projection(anonymized_clips), self.static_projection(raw_static),
                               self.temperature)


@register_budget
class CrossViewBudget(AdversaryBudget):
    name = "cross-view"
    static_inputs = "raw"
    uses_clips = True
    component = "critic"

    def build_adversary(self) -> nn.Module:
        config = self.config
        return CrossViewCritic(self.context.dim, config.critic_hidden, config.critic_proj, config.critic_temperature)

    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        clips = step.clips
        if clips is None or clips.anonymized.shape[0] < 2:  # no negatives: nothing to match against
            return torch.zeros((), device=self.device), []
        logits = self.adversary(clips.anonymized, clips.raw_static)
        if self.config.critic_objective == "confusion":
            privacy = info_nce_confusion(logits)
        else:
            privacy = -info_nce(logits)
        return privacy, [(clips.anonymized.detach(), clips.raw_static)]

    def adversary_loss(self, adversary_inputs: list) -> torch.Tensor:
        anonymized, raw_static = adversary_inputs[0]
        return info_nce(self.adversary(anonymized, raw_static))
