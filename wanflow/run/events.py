"""What a run reports as it goes. The executor never prints: it calls a reporter with an
`Event` and its data, and the reporter decides what a person or a program sees.

The `--json` output names each event by its value (`{"event": "finished", ...}`): those
names, and the fields listed here, are part of the documented output and do not change
(new kinds and new fields may be added).
"""
from __future__ import annotations

import enum
from typing import Any, Protocol

from ..plan.tasks import TaskId


class Event(enum.Enum):
    PLAN = "plan"              # tasks, to_run, cost; cached, currency, max_cost
    START = "start"            # task, reason
    STATE = "state"            # task, state (one of the states below)
    SUBMITTED = "submitted"    # task, remote_id; expected (s from submit to done, or null)
    REATTACH = "reattach"      # task, remote_id, state; elapsed (s since submit), expected
    RETRY = "retry"            # task, why, delay?
    CACHED = "cached"          # task (found in the store once its inputs were known)
    FINISHED = "finished"      # task, seconds, output, cost; billed_seconds; source?;
    #                            priced? (false: a paid generation with no known price)
    FAILED = "failed"          # task, error, code
    SKIPPED = "skipped"        # task, because
    CANCELED = "canceled"      # task, remote_id
    NOTICE = "notice"          # message
    INTERRUPT = "interrupt"    # message
    DONE = "done"              # generated, cached, failed, skipped, billed_seconds, cost,
    #                            interrupted; films (paths written, as a person would open them);
    #                            unpriced (generations in `cost` at 0 for want of a price)


# What a started task is doing (`Event.STATE`); SUBMITTED and REATTACH imply "submitted".
WAITING = "waiting"            # for one of its model's slots, or a run-wide permit
UPLOADING = "uploading"        # its local inputs, to the provider's temporary storage
RUNNING = "running"            # at the provider (it left the provider's queue)
DOWNLOADING = "downloading"    # the finished video (preview: rendering it)
ASSEMBLING = "assembling"      # a scene or a film
EXTRACTING = "extracting"      # a frame of a clip
STORING = "storing"            # an asset, into the content store


class Reporter(Protocol):
    """What receives a run's events: any callable; a `close()` method, if it has one, is
    called when the run ends (the live view stops there)."""

    def __call__(self, event: Event, **data: Any) -> None: ...
    def close(self) -> None: ...


class Tally:
    """A reporter that passes every event on and remembers the generations that finished
    (what a CI summary lists as regenerated)."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.generated: list[str] = []

    def __call__(self, event: Event, **data: Any) -> None:
        if event is Event.FINISHED:
            task = TaskId.parse(str(data.get("task", "")))
            if task is not None and task.kind == "gen":
                self.generated.append(task)
        self.inner(event, **data)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)   # a plain function may report too
        if close is not None:
            close()
