"""``bottleneck``: an information bottleneck on the AAM output, traded off against utility.

Per step, one random full clip x of each video of the budget batch goes through the AAM, and the term
is the capacity of a Gaussian channel carrying the output (``losses.gaussian_channel_capacity``):

    C = sum_d log(1 + Var_batch(f_A(x)_d) / sigma_d^2),   sigma_d = bottleneck_noise * std_d(raw train clips)

The task heads are trained on f_A(x) + N(0, sigma^2) (fresh noise per step from a (seed, epoch)
stream) instead of f_A(x), so a dimension only serves utility if it carries signal above the noise,
while every dimension's variance costs capacity: the AAM is pushed to keep the few directions the
tasks need and to shrink the rest (what the tasks do not need, e.g. appearance). Latent consistency
and the export use the noiseless f_A(x). ``bottleneck_with_ntxent`` adds the direct NT-Xent budget on
the static pairs (``ntxent_objective`` as in ``direct``) to C.
"""

from __future__ import annotations

import torch

from anonymize.budgets.base import (
    STREAM_BOTTLENECK_NOISE,
    BudgetContext,
    BudgetMode,
    BudgetStep,
    generator_for,
    ntxent_privacy,
    train_split_std,
)
from anonymize.budgets.registry import register_budget
from anonymize.losses import gaussian_channel_capacity


@register_budget
class BottleneckBudget(BudgetMode):
    name = "bottleneck"
    static_inputs = "none"
    uses_clips = True

    def __init__(self, context: BudgetContext):
        super().__init__(context)
        if self.config.bottleneck_with_ntxent:
            self.static_inputs = "anonymized"
        clip_std = train_split_std(context.store, "clips").to(self.device)
        # A dimension that is constant in the training clips gets the smallest positive noise instead of 0.
        self.noise_std = torch.clamp(self.config.bottleneck_noise * clip_std, min=torch.finfo(torch.float32).tiny)
        self.noise_generator: torch.Generator | None = None

    def on_epoch_start(self, epoch: int) -> None:
        self.noise_generator = generator_for(self.config.seed, epoch, STREAM_BOTTLENECK_NOISE)

    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        privacy = torch.zeros((), device=self.device)
        if step.clips is not None and step.clips.anonymized.shape[0] >= 2:
            privacy = gaussian_channel_capacity(step.clips.anonymized, self.noise_std)
        if self.config.bottleneck_with_ntxent:
            privacy = privacy + ntxent_privacy(step.pairs, lambda output: output, self.config, self.device)
        return privacy, []

    def utility_input(self, anonymized: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(anonymized.shape, generator=self.noise_generator).to(self.device)
        return anonymized + noise * self.noise_std
