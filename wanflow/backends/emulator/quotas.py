"""Rate limits (reference §6): per-model tasks in flight and submits per second, and the
account-wide query limit shared by polls and by task lists (each with its own window)."""
from __future__ import annotations

from collections import deque

from .rules import ModelRule

# A limit option: None (the model's own figure), one number for every model, or a mapping
# from model name (as requested, or its family) to a number.
Limit = float | dict | None


class RateWindow:
    """A sliding-window counter: at most `rate` hits per second, over at least one second."""

    def __init__(self) -> None:
        self.hits: deque[float] = deque()

    def allow(self, rate: float | None, now: float) -> bool:
        """Count a hit at `now` if the rate allows it."""
        if rate is None or rate <= 0:
            return True
        window = max(1.0, 1.0 / rate)
        cap = max(1, round(rate * window))
        while self.hits and self.hits[0] <= now - window:
            self.hits.popleft()
        if len(self.hits) >= cap:
            return False
        self.hits.append(now)
        return True


class Quotas:
    """Which requests draw a 429. Not locked: the emulator calls it under its lock."""

    def __init__(self, *, concurrency: Limit, submit_rps: Limit, query_qps: float | None):
        self.concurrency = concurrency
        self.submit_rps = submit_rps
        self.query_qps = query_qps
        self._submits: dict[str, RateWindow] = {}   # per model family
        self._queries = RateWindow()
        self._lists = RateWindow()

    def admit_submit(self, model: str, rule: ModelRule, in_flight: int, now: float) -> bool:
        """Whether a submit fits the family's in-flight cap and submit rate (counting it)."""
        cap = _limit(self.concurrency, model, rule.name, rule.concurrency)
        if cap is not None and in_flight >= cap:
            return False
        rate = _limit(self.submit_rps, model, rule.name, rule.submit_rps)
        return self._submits.setdefault(rule.name, RateWindow()).allow(rate, now)

    def allow_query(self, now: float) -> bool:
        return self._queries.allow(self.query_qps, now)

    def allow_list(self, now: float) -> bool:
        return self._lists.allow(self.query_qps, now)


def _limit(option: Limit, model: str, family: str, default: float):
    if option is None:
        return default
    if isinstance(option, dict):
        return option[model] if model in option else option.get(family, default)
    return option
