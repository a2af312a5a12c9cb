"""The budget modes by name: ``register_budget`` (a class decorator), ``budget_modes()``, ``build_budget``."""

from __future__ import annotations

from anonymize.budgets.base import BudgetContext, BudgetMode
from data_manifests.errors import FeatstoreError

_MODES: dict[str, type[BudgetMode]] = {}


def register_budget(mode: type[BudgetMode]) -> type[BudgetMode]:
    if not mode.name:
        raise ValueError(f"{mode.__name__} has no name")
    _MODES[mode.name] = mode
    return mode


def budget_modes() -> list[str]:
    """Every registered mode name, in registration order."""
    return list(_MODES)


def budget_class(name: str) -> type[BudgetMode]:
    if name not in _MODES:
        raise FeatstoreError(f"budget mode must be one of {budget_modes()}, got {name!r}")
    return _MODES[name]


def build_budget(context: BudgetContext) -> BudgetMode:
    """The mode named by ``context.config.budget_mode``, built from ``context``."""
    return budget_class(context.config.budget_mode)(context)
