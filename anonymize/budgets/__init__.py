"""Budget modes: the privacy term of Eq. 7 as strategy classes (interface: ``base``; by name: ``registry``).

One module per mode: ``direct``, ``adversarial``, ``supervised``, ``none`` (the paper's and the
authors' budgets on static clips) and ``cross-view``, ``bottleneck``, ``supervised-clips``, ``independence`` (budgets on
the full clips, which a shortcut through the static inputs cannot satisfy).
"""

# Importing a mode's module registers it; this order is the order ``budget_modes()`` lists them in.
from anonymize.budgets import direct  # noqa: F401  isort: skip
from anonymize.budgets import adversarial  # noqa: F401  isort: skip
from anonymize.budgets import supervised  # noqa: F401  isort: skip
from anonymize.budgets import none  # noqa: F401  isort: skip
from anonymize.budgets import cross_view  # noqa: F401  isort: skip
from anonymize.budgets import bottleneck  # noqa: F401  isort: skip
from anonymize.budgets import supervised_clips  # noqa: F401  isort: skip
from anonymize.budgets import independence  # noqa: F401  isort: skip
from anonymize.budgets.base import BudgetContext, BudgetMode, BudgetPair, BudgetStep, VideoClips
from anonymize.budgets.registry import budget_class, budget_modes, build_budget, register_budget

__all__ = ["BudgetContext", "BudgetMode", "BudgetPair", "BudgetStep", "VideoClips", "budget_class", "budget_modes",
           "build_budget", "register_budget"]
