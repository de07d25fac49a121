"""The audit's view of the differential-privacy budget: ε spent per day and the releases made.

The DP trending release and its privacy-budget ledger are built separately
(issue 13, first half); the audit reads the ledger through this one shape, so
connecting it is one function. Until then :func:`no_ledger` answers with
empty data and says so in ``source``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BudgetSource", "BudgetView", "no_ledger"]


@dataclass(frozen=True)
class BudgetView:
    """ε spent per UTC day (``YYYY-MM-DD`` → ε), the daily budget, and every release recorded.

    ``releases``: one mapping per release as the ledger records it (mechanism,
    ε, δ, bound, noise scale, time); aggregates only, never a viewer.
    """

    epsilon_budget_per_day: float | None = None
    epsilon_spent_by_day: dict[str, float] = field(default_factory=dict)
    releases: list[dict[str, Any]] = field(default_factory=list)
    source: str = "none"


BudgetSource = Callable[[Any, Any], BudgetView]
"""``(settings, redis) -> BudgetView``."""


def no_ledger(settings: Any, redis: Any) -> BudgetView:
    """No DP ledger is connected yet: nothing spent, nothing released."""
    del redis
    budget = getattr(getattr(settings, "dp", None), "epsilon_per_day", None)
    return BudgetView(epsilon_budget_per_day=budget, source="not connected (no dp ledger in this build)")
