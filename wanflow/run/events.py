"""What a run reports as it goes. The executor never prints: it calls a reporter with an
`Event` and its data, and the reporter decides what a person or a program sees.

The `--json` output names each event by its value (`{"event": "finished", ...}`): those
names are part of the documented output and do not change.
"""
from __future__ import annotations

import enum
from typing import Any, Protocol


class Event(enum.Enum):
    PLAN = "plan"              # tasks, to_run, cost
    START = "start"            # task, reason
    SUBMITTED = "submitted"    # task, remote_id
    REATTACH = "reattach"      # task, remote_id, state
    RETRY = "retry"            # task, why, delay?
    FINISHED = "finished"      # task, seconds, output, cost
    FAILED = "failed"          # task, error, code
    SKIPPED = "skipped"        # task, because
    CANCELED = "canceled"      # task, remote_id
    NOTICE = "notice"          # message
    INTERRUPT = "interrupt"    # message
    DONE = "done"              # generated, cached, failed, skipped, billed_seconds, cost,
    #                            interrupted


class Reporter(Protocol):
    def __call__(self, event: Event, **data: Any) -> None: ...
    def close(self) -> None: ...


class Tally:
    """A reporter that passes every event on and remembers the generations that finished
    (what a CI summary lists as regenerated)."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.generated: list[str] = []

    def __call__(self, event: Event, **data: Any) -> None:
        task = str(data.get("task", ""))
        if event is Event.FINISHED and task.startswith("gen:"):
            self.generated.append(task)
        self.inner(event, **data)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)   # a plain function may report too
        if close is not None:
            close()
