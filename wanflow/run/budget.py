"""The money rules, in one place: what a plan would cost, and whether it may be spent.

Used by `plan` (to report and to exit 3) and by `run` (to stop before the first submit).
"""
from __future__ import annotations

from collections.abc import Mapping

from .. import models
from ..errors import BudgetError
from ..plan.assess import CACHED, IN_FLIGHT, RUN, TaskState


def totals(states: Mapping[str, TaskState]) -> dict:
    """Counts, billed seconds and cost over a plan's task states (`plan --json` totals)."""
    run = [s for s in states.values() if s.status != CACHED]
    return {"tasks": len(states), "cached": len(states) - len(run),
            "to_run": sum(1 for s in run if s.status != IN_FLIGHT),
            "in_flight": sum(1 for s in run if s.status == IN_FLIGHT),
            "billed_seconds": round(sum(s.billed_seconds for s in run
                                        if s.status != IN_FLIGHT), 3),
            "cost": round(sum(s.cost for s in run), 4),
            "list_cost": round(sum(s.list_cost for s in run if s.status != IN_FLIGHT), 4)}


def check(states: Mapping[str, TaskState], *, paid: bool, max_cost: float | None = None,
          no_spend: bool = False) -> None:
    """Raise BudgetError (exit 3) if running these states would break --no-spend or
    --max-cost. A free backend never breaks either."""
    if not paid:
        return
    to_pay = [s for s in states.values() if s.status == RUN and s.task.kind == "gen"]
    cost = round(sum(s.cost for s in to_pay), 4)
    currency = models.PRICE_CURRENCY
    if no_spend and to_pay:
        raise BudgetError(f"--no-spend: {len(to_pay)} generation(s) would be paid for "
                          f"(estimated {cost:.2f} {currency}); nothing was spent")
    if max_cost is not None and cost > max_cost:
        raise BudgetError(f"estimated cost {cost:.2f} {currency} exceeds --max-cost "
                          f"{max_cost:.2f}; nothing was spent")
