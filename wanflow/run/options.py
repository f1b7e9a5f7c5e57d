"""How a run behaves: concurrency, retries, resubmission and what it reports with the plan.

One value, made by the session from flags, the spec and settings, read by the executor and
by the generations it runs.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..plan.tasks import TaskId
from .quotas import Limits


def _resubmit_flag(task: TaskId) -> str:
    return f"--resubmit {task.label}"


@dataclass(frozen=True)
class RunOptions:
    generate: bool = True                  # False (pull): a generation the remote lacks fails
    jobs: int = 16                         # concurrent generations, all models together
    local_jobs: int = max(1, os.cpu_count() or 1)
    resubmit_uncertain: bool = False
    resubmit: frozenset[TaskId] = frozenset()   # generations to submit again, journal or not
    resubmit_command: Callable[[TaskId], str] = _resubmit_flag   # says how, in full
    limits: dict[str, Limits] = field(default_factory=dict)   # model -> Limits (merged)
    submit_retries: int = 6
    failed_task_retries: int = 2
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    backend_reason: str = ""               # why this backend runs (reported with the plan)
    currency: str | None = None            # of the prices, recorded with each cost
    max_cost: float | None = None          # the budget, reported with the plan (checked before)
