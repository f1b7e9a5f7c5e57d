"""The money rules, in one place: what a plan would cost, and whether it may be spent.

Used by `plan` (to report and to exit 3) and by `run` (to stop before the first submit).
Amounts are in the currency of the region's prices; wanflow never converts currencies.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BudgetError, UsageError
from ..plan.assess import IN_FLIGHT, REMOTE, RUN, TaskState
from ..plan.cost import Pricing
from ..plan.tasks import TaskId
from ..text import shown

_MONEY = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]{3})?\s*\Z")


@dataclass(frozen=True)
class Money:
    amount: float
    currency: str | None = None   # None: whatever currency the plan is in

    def __str__(self) -> str:
        return f"{self.amount:.2f}" + (f" {self.currency}" if self.currency else "")


def parse_money(text: str) -> Money:
    """`5`, `5USD`, `30 CNY` -> Money. Anything else (negative, NaN, inf, words) is a usage
    error: a limit that cannot be compared must never mean "no limit"."""
    m = _MONEY.match(str(text))
    if not m:
        raise UsageError(f"--max-cost {shown(text)!r}: expected an amount with an optional "
                         "currency, e.g. 5, 5USD or 30CNY")
    amount = float(m.group(1))
    if not math.isfinite(amount):
        raise UsageError(f"--max-cost {shown(text)!r}: the amount must be a finite number")
    return Money(amount, m.group(2).upper() if m.group(2) else None)


def totals(states: Mapping[TaskId, TaskState]) -> dict[str, Any]:
    """Counts, billed seconds and cost over a plan's task states (`plan --json` totals).
    A task on the remote costs nothing: it is downloaded."""
    run = [s for s in states.values() if s.status in (RUN, IN_FLIGHT)]
    todo = [s for s in run if s.status != IN_FLIGHT]
    remote = sum(1 for s in states.values() if s.status == REMOTE)
    return {"tasks": len(states), "cached": len(states) - len(run) - remote, "remote": remote,
            "to_run": len(todo), "in_flight": len(run) - len(todo),
            "billed_seconds": round(sum(s.billed_seconds for s in todo), 3),
            "up_to": any(s.up_to for s in todo),   # billed_seconds is a ceiling
            "cost": round(sum(s.cost for s in run), 4),
            "list_cost": round(sum(s.list_cost for s in todo), 4),
            "unpriced": sum(1 for s in todo if not s.priced)}


def check(states: Mapping[TaskId, TaskState], *, paid: bool, pricing: Pricing,
          max_cost: Money | None = None, no_spend: bool = False) -> None:
    """Raise BudgetError (exit 3) if running these states would break --no-spend or
    --max-cost, or if --max-cost cannot be checked because a price is unknown; UsageError
    (exit 2) if --max-cost is in another currency than the prices. A free backend never
    spends."""
    if max_cost is not None and max_cost.currency not in (None, pricing.currency):
        raise UsageError(f"--max-cost is in {max_cost.currency} but prices in "
                         f"{pricing.region} are in {pricing.currency}; wanflow does not "
                         "convert currencies")
    if not paid:
        return
    to_pay = [s for s in states.values() if s.status == RUN and s.task.kind == "gen"]
    cost = round(sum(s.cost for s in to_pay), 4)
    currency = pricing.currency
    if no_spend and to_pay:
        raise BudgetError(f"--no-spend: {len(to_pay)} generation(s) would be paid for "
                          f"(estimated {cost:.2f} {currency}); nothing was spent")
    if max_cost is None:
        return
    unknown = [s for s in to_pay if not s.priced]
    if unknown:
        raise BudgetError(f"--max-cost {max_cost} cannot be checked: no price is known in "
                          f"{pricing.region} for {len(unknown)} generation(s), e.g. "
                          f"{unknown[0].task}; add your prices to the user config file or "
                          "pass --prices FILE; nothing was spent")
    if cost > max_cost.amount:
        raise BudgetError(f"estimated cost {cost:.2f} {currency} exceeds --max-cost "
                          f"{max_cost.amount:.2f}; nothing was spent")


def cost_words(cost: float, unpriced: int, *, currency: str = "", budget: str = "") -> str:
    """`cost 1.20 USD`; with generations of no known price, `cost ?` and how many, as the
    plan says it (never 0.00 for a cost nobody knows)."""
    if not unpriced:
        return f"cost {cost:.2f}{budget}{currency}"
    known = f"{cost:.2f}{currency} + " if cost else ""
    return f"cost {known}? ({unpriced} with no known price)"
