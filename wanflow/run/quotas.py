"""Per-model quotas: tasks in flight and submissions per second.

Defaults come from the model table; the spec (`settings.limits`), then WANFLOW_LIMITS and
`--limit` override them (those last two arrive through `Settings.limits`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .. import models
from ..errors import UsageError
from ..settings import parse_limit
from ..spec.nodes import Spec


@dataclass(frozen=True)
class Limits:
    concurrency: int
    submit_rps: float


def default_limits(model: str) -> Limits:
    info = models.lookup(model)
    return Limits(info.concurrency if info else 2, info.submit_rps if info else 1.0)


def merge(spec: Spec, overrides: Iterable[str] = ()) -> dict[str, Limits]:
    """model -> Limits for every model the table, the spec or an override names."""
    merged: dict[str, Limits] = {}

    def apply(model: str, conc: int | None, rps: float | None) -> None:
        info = models.lookup(model)
        if info is None:
            raise UsageError(f"limit for unknown model {model!r}")
        base = merged.get(info.name) or Limits(info.concurrency, info.submit_rps)
        merged[info.name] = Limits(conc if conc else base.concurrency,
                                   rps if rps else base.submit_rps)

    for item in spec.settings.limits:
        apply(item.model, item.concurrency, item.submit_rps)
    for text in overrides:
        apply(*parse_limit(text))
    for shot in spec.shots():  # snapshots share their family's quota
        info = models.lookup(shot.model)
        if shot.model not in merged and info and info.name in merged:
            merged[shot.model] = merged[info.name]
    return merged
