"""Waiting for a task: `GET /tasks/{id}` on a schedule (reference §3, §4.2, §6).

With no history, the first poll comes at ~¾ of the table's estimate, then every 20 % of the
time since the submit (a task is noticed within ~20 % of its duration, ~8 % on average),
capped at `poll_max`, ±10 % jitter. With the run times of earlier tasks of the same kind
(`Expectation.learn`), the first poll comes just before the quickest of them and the
schedule tightens to 8 % of the age until the slowest would have finished, so that a task is
noticed within 10 % of its run time at a few queries more. Every poll of a backend goes
through one pacer that keeps them under the account's query limit. 429/5xx/transport
errors on a poll are transient; the overall deadline is the schedule's `timeout`.
"""
from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ... import models
from ...errors import BackendError, TaskFailed
from ...plan.request import GenRequest
from ...run.pacing import Pacer
from ..base import Finished
from .errors import Scrub, api_error, task_code_retryable
from .transport import Http, Response, TransportFailure

log = logging.getLogger(__name__)

POLL_FRACTION = 0.20        # after the first poll: interval = this × time since submit
TIGHT_FRACTION = 0.08       # ... while a task is due (learned): noticed within 10 %
URGENT_SHARE = 1 / 6        # of poll_max, while other tasks wait for this one's slot
POLL_JITTER = 0.10          # ± fraction applied to every poll delay
QPS_HEADROOM = 0.9          # pace at 90 % of the limit: room for network jitter
LEARN_FROM = 10             # the most recent run times of a kind that shape its schedule
LEARN_CLAMP = (0.25, 4.0)   # what history may teach, as multiples of the table's estimate
TRUSTED_RUNS = 3            # from this many runs on, their spread places the window
FIRST_SHARE = 0.9           # first poll at this share of the quickest run seen ...
SPREAD = 0.25               # ... or, with fewer runs, this much either side of the typical


def estimate_seconds(request: GenRequest) -> float:
    """A rough wall time for a generation (reference §3.1: typically 1–5 min)."""
    per_second = {"480P": 3.0, "720P": 6.0, "1080P": 10.0}.get(request.resolution, 8.0)
    estimate = 20.0 + float(request.duration) * per_second
    if (request.body.get("parameters") or {}).get("prompt_extend"):
        estimate += 10.0
    return estimate


def default_poll_first(request: GenRequest) -> float:
    """First poll at ~¾ of the expected time, between 5 s and 2 min."""
    return min(120.0, max(5.0, 0.75 * estimate_seconds(request)))


@dataclass(frozen=True)
class Expectation:
    """When a task is expected to finish, in seconds after its submit."""

    typical: float    # the median of recent runs, or the table's estimate
    first: float      # when to poll first
    due_until: float  # poll tightly from `first` until this age (0: never)
    learned: int      # runs it was learned from (0: the table's estimate)

    @classmethod
    def learn(cls, request: GenRequest, runs: Sequence[float],
              time_scale: float = 1.0) -> Expectation:
        """From the run times of earlier tasks of the request's kind (any order). Each is
        clamped to ¼–4× the table's estimate: a journal may come from a restored cache, and
        one wild value must not make a schedule poll every second or sleep for an hour."""
        table = estimate_seconds(request) / time_scale
        lo, hi = LEARN_CLAMP[0] * table, LEARN_CLAMP[1] * table
        known = sorted(min(hi, max(lo, r)) for r in runs[:LEARN_FROM]
                       if isinstance(r, (int, float)) and math.isfinite(r) and r > 0)
        if not known:
            return cls(table, default_poll_first(request) / time_scale, 0.0, 0)
        n = len(known)
        typical = (known[(n - 1) // 2] + known[n // 2]) / 2
        if n >= TRUSTED_RUNS:
            first = FIRST_SHARE * known[0]
            due_until = max((1 + SPREAD) * typical, 1.1 * known[-1])
        else:
            first = (1 - SPREAD) * typical
            due_until = (1 + SPREAD) * typical
        return cls(typical, first, due_until, n)


@dataclass(frozen=True)
class PollSchedule:
    """When to poll one task. Times in seconds."""

    first: float      # first poll, counted from the submit
    poll_max: float   # longest pause between two polls
    timeout: float    # longest wait, counted from the start of this wait
    due_until: float = 0.0   # until this age the task is due: poll at TIGHT_FRACTION

    def first_delay(self, elapsed: float) -> float:
        """Pause before the first poll of a wait that starts `elapsed` s after the submit
        (a resumed wait polls sooner)."""
        return max(0.0, float(self.first) - max(0.0, elapsed))

    def next_delay(self, age: float, *, urgent: bool, retry_after: float | None) -> float:
        """Pause after a poll of a task submitted `age` s ago. Proportional: a long task is
        asked about less often, and still noticed within a fixed share of its duration.
        `urgent`: other work waits for this task's slot, so a late notice delays it too."""
        fraction = TIGHT_FRACTION if age < self.due_until else POLL_FRACTION
        interval = min(self.poll_max, max(1e-3, fraction * age))
        if urgent:
            interval = min(interval, self.poll_max * URGENT_SHARE)
        return max(interval, retry_after or 0.0)


def jittered(delay: float) -> float:
    """`delay` ± POLL_JITTER, so that waits started together do not poll together."""
    return delay * random.uniform(1.0 - POLL_JITTER, 1.0 + POLL_JITTER)


def provider_seconds(output: dict) -> float | None:
    """How long a finished task ran, submit to end, by the provider's own clock (both times
    are in its zone, so the difference needs none); None when it does not say."""
    try:
        start, end = (datetime.strptime(str(output[k]), "%Y-%m-%d %H:%M:%S.%f")
                      for k in ("submit_time", "end_time"))
    except (KeyError, ValueError):
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds > 0 else None


async def wait_for_task(http: Http, pacer: Pacer, remote_id: str, request: GenRequest,
                        schedule: PollSchedule, *, elapsed: float = 0.0,
                        urgent: Callable[[], bool] | None = None,
                        on_status: Callable[[str], None] | None = None) -> Finished:
    """Poll until the task ends: Finished on success (with how long it ran), TaskFailed on
    a terminal failure, BackendError(WaitTimeout) when the schedule's timeout runs out
    first. `on_status` hears each new status (PENDING, RUNNING, ...)."""
    started = time.monotonic()
    deadline = started + schedule.timeout
    since_submit = started - max(0.0, elapsed)   # monotonic time of the submit
    delay = schedule.first_delay(elapsed)
    last_status = "not polled yet"
    last_error: str | None = None
    polls = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BackendError(
                f"task {remote_id} did not finish within {schedule.timeout:g} s (waited "
                f"{time.monotonic() - started:.1f} s, {polls} polls, last status {last_status}"
                + (f", last poll error: {last_error}" if last_error else "")
                + "); it may still be running and will be billed if it succeeds — its id is "
                "kept, so the next run resumes waiting instead of submitting again",
                code="WaitTimeout", retryable=False)
        await asyncio.sleep(min(jittered(delay), remaining))
        await pacer.acquire()
        polls += 1
        retry_after = None
        try:
            resp = await http.get(f"tasks/{remote_id}")
        except TransportFailure as exc:
            last_error = exc.text
            log.debug("poll of %s failed: %s", remote_id, last_error)
            resp = None
        if resp is not None:
            if resp.status_code == 404:
                raise unknown_task(remote_id, resp)
            if resp.is_success:
                outcome = task_outcome(remote_id, request, resp, http.scrub)
                if isinstance(outcome, Finished):
                    if outcome.ran_seconds is None:   # no provider times: our own clock
                        outcome = replace(outcome, ran_seconds=time.monotonic() - since_submit)
                    return outcome
                if outcome != last_status and on_status is not None:
                    on_status(outcome)
                last_status, last_error = outcome, None
            else:
                err = api_error(resp, op="poll", scrub=http.scrub, base_url=http.base_url)
                if not err.retryable and resp.status_code != 429:
                    raise err
                last_error = str(err)
                retry_after = err.retry_after
        delay = schedule.next_delay(time.monotonic() - since_submit,
                                    urgent=urgent is not None and urgent(),
                                    retry_after=retry_after)


def unknown_task(remote_id: str, resp: Response, rid: str | None = None) -> TaskFailed:
    rid = rid or resp.headers.get("x-request-id")
    return TaskFailed(f"task {remote_id} is unknown to DashScope: the id is wrong, belongs to "
                      "another account or region, or has expired (task data is kept 24 h); "
                      "polling will not recover it", code="UNKNOWN", request_id=rid,
                      status=resp.status_code, retryable=False)


def task_outcome(remote_id: str, request: GenRequest, resp: Response,
                 scrub: Scrub) -> Finished | str:
    """Finished for SUCCEEDED; raises for terminal failures; else the status string."""
    try:
        data = resp.json()
        output = data.get("output")
    except (ValueError, AttributeError):
        return "unreadable response"
    if not isinstance(output, dict):
        return "response without output"
    rid = data.get("request_id") or resp.headers.get("x-request-id")
    status = str(output.get("task_status") or "UNKNOWN").upper()
    if status == "SUCCEEDED":
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        return Finished(remote_id=remote_id, request_id=rid,
                        video_url=output.get("video_url") or None,
                        actual_prompt=output.get("actual_prompt"), usage=usage,
                        billed_seconds=models.billed_seconds(usage, fallback=request.duration),
                        status="SUCCEEDED", ran_seconds=provider_seconds(output))
    if status == "FAILED":
        code = scrub(output.get("code")) or "TaskFailed"
        message = scrub(output.get("message")) or "the task failed without a message"
        raise TaskFailed(message, code=code, request_id=rid, status=resp.status_code,
                         retryable=task_code_retryable(code))
    if status in ("CANCELED", "CANCELLED"):
        raise TaskFailed(f"task {remote_id} was canceled", code="Canceled", request_id=rid,
                         status=resp.status_code, retryable=False)
    if status == "UNKNOWN":
        raise unknown_task(remote_id, resp, rid)
    return status  # PENDING, RUNNING, SUSPENDED, ...
