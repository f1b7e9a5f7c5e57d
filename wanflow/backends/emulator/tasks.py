"""Tasks: the PENDING -> RUNNING -> SUCCEEDED/FAILED state machine, its times, usage and list.

A task draws a latency in [min, max] simulated seconds and takes latency / time_scale real
seconds: the first 10 % PENDING, the rest RUNNING, then its outcome (decided at creation).
With a `spread`, latencies carry signal as real ones do: each kind of task (model, resolution,
duration) has its own mean in [min, max], fixed by the seed, and each task varies ± spread
around it.
Only a PENDING task can be canceled. A task older than the TTL is gone: UNKNOWN to a poll,
absent from the list. Times in answers are `YYYY-MM-DD HH:MM:SS.mmm` Beijing time (§4.2).
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, replace
from datetime import datetime

from . import rules
from .errors import ApiError, invalid
from .validation import Submission

PENDING_SHARE = 0.1   # of a task's wall time spent queued
LISTED_STATES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED")

# What `prompt_extend` appends to stand for the provider's rewritten prompt.
_EXTENSION = (" The scene is captured with cinematic lighting, a smooth, steady camera and "
              "rich, natural detail; the motion is fluid and physically plausible.")


def format_time(t: float | None) -> str | None:
    if t is None:
        return None
    dt = datetime.fromtimestamp(t, rules.PROVIDER_TZ)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def _parse_list_time(text: str) -> float:
    """A `YYYYMMDDhhmmss` list bound, in the provider's zone."""
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=rules.PROVIDER_TZ).timestamp()


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


@dataclass(frozen=True)
class Task:
    """One generation task; its state follows from the clock."""

    task_id: str
    submission: Submission
    api_key: str
    submitted: float
    scheduled: float          # PENDING until then
    ends: float               # RUNNING until then, then the outcome
    failure: Failure | None = None
    expired_url: bool = False  # succeeds with a video URL that has already expired
    canceled_at: float | None = None

    @property
    def model(self) -> str:
        return self.submission.model

    @property
    def family(self) -> str:
        """The model family whose quotas the task counts against."""
        return self.submission.rule.name

    @property
    def outcome(self) -> str:
        return "FAILED" if self.failure else "SUCCEEDED"

    @property
    def actual_prompt(self) -> str | None:
        """The prompt as the provider's rewriting would return it (only with prompt_extend)."""
        if not self.submission.prompt_extend:
            return None
        base = self.submission.prompt.strip().rstrip(".")
        return base + "." + _EXTENSION if base else _EXTENSION.strip()

    @property
    def usage(self) -> dict:
        """The `usage` of a success; its keys depend on the model generation (§4.2)."""
        sub = self.submission
        seconds, sr = sub.duration, int(sub.tier.rstrip("P"))
        if sub.rule.generation == "2.1":
            return {"video_duration": seconds, "video_ratio": f"{sub.width}*{sub.height}",
                    "video_count": 1}
        if sub.rule.generation == "2.2":
            return {"video_duration": seconds, "video_count": 1, "SR": sr}
        if sub.rule.generation == "3.0":   # input video seconds are billed too (Wan 3.0 §1.4)
            return {"duration": round(sub.input_seconds + seconds, 3),
                    "input_video_duration": sub.input_seconds,
                    "output_video_duration": seconds, "video_count": 1, "SR": sr,
                    "ratio": sub.ratio, "fps": sub.rule.fps}
        return {"duration": seconds, "input_video_duration": 0, "output_video_duration": seconds,
                "video_count": 1, "SR": sr, "ratio": sub.ratio}

    def status(self, now: float) -> str:
        if self.canceled_at is not None:
            return "CANCELED"
        if now < self.scheduled:
            return "PENDING"
        if now < self.ends:
            return "RUNNING"
        return self.outcome

    def output(self, now: float, video_url: str | None) -> dict:
        """The `output` of a poll; `video_url` is used if the task has succeeded."""
        status = self.status(now)
        out = {"task_id": self.task_id, "task_status": status,
               "submit_time": format_time(self.submitted)}
        if status == "CANCELED":
            out["end_time"] = format_time(self.canceled_at)
            return out
        if status == "PENDING":
            return out
        out["scheduled_time"] = format_time(self.scheduled)
        if status == "RUNNING":
            return out
        out["end_time"] = format_time(self.ends)
        if self.failure:
            out["code"] = self.failure.code
            out["message"] = self.failure.message
            return out
        if self.submission.prompt_extend:
            out["orig_prompt"] = self.submission.prompt
            out["actual_prompt"] = self.actual_prompt
        out["video_url"] = video_url
        return out

    def list_row(self, now: float, region: str) -> dict:
        status = self.status(now)
        row = {"task_id": self.task_id, "task_status": status, "model_name": self.model,
               "region": rules.REGION_IDS.get(region, region),
               "api_key_id": hashlib.sha256(self.api_key.encode()).hexdigest()[:16],
               "submit_time": format_time(self.submitted)}
        if status not in ("PENDING", "CANCELED"):
            row["scheduled_time"] = format_time(self.scheduled)
        if status in ("SUCCEEDED", "FAILED"):
            row["end_time"] = format_time(self.ends)
        elif status == "CANCELED":
            row["end_time"] = format_time(self.canceled_at)
        return row

    def inspect(self, now: float, ttl: float) -> dict:
        """Everything about the task, for tests and the control API."""
        sub = self.submission
        return {
            "task_id": self.task_id, "model": self.model, "status": self.status(now),
            "submit_time": self.submitted, "scheduled_time": self.scheduled,
            "end_time": self.ends, "canceled_at": self.canceled_at, "outcome": self.outcome,
            "code": self.failure.code if self.failure else None,
            "message": self.failure.message if self.failure else None,
            "expired_url": self.expired_url, "width": sub.width, "height": sub.height,
            "duration": sub.duration, "fps": sub.rule.fps, "resolution": sub.tier,
            "ratio": sub.ratio, "audible": sub.audible, "prompt": sub.prompt,
            "actual_prompt": self.actual_prompt,
            "usage": self.usage, "body": sub.body, "expired": now - self.submitted > ttl,
        }


@dataclass(frozen=True)
class ListQuery:
    """The filters and page of a `GET /tasks`."""

    page_no: int = 1
    page_size: int = 10
    status: str | None = None
    start: float | None = None
    end: float | None = None
    model_name: str | None = None

    @classmethod
    def parse(cls, query: dict) -> ListQuery:
        def number(name: str, default: int, lo: int, hi: int) -> int:
            value = query.get(name)
            if value is None or value == "":
                return default
            try:
                parsed = int(value)
            except ValueError:
                raise invalid(f"{name} must be an integer.") from None
            if not lo <= parsed <= hi:
                raise invalid(f"{name} must be in [{lo}, {hi}].")
            return parsed

        def bound(name: str) -> float | None:
            value = query.get(name)
            if not value:
                return None
            try:
                return _parse_list_time(value)
            except ValueError:
                raise invalid(f"{name} must be formatted YYYYMMDDhhmmss.") from None

        page_no = number("page_no", 1, 1, 10**6)
        page_size = number("page_size", 10, 1, 100)
        status = query.get("status") or None
        if status and status not in LISTED_STATES:
            raise invalid(f"status must be one of {', '.join(LISTED_STATES)}.")
        return cls(page_no, page_size, status, bound("start_time"), bound("end_time"),
                   query.get("model_name") or None)

    def matches(self, task: Task, now: float) -> bool:
        return ((not self.status or task.status(now) == self.status)
                and (not self.model_name or task.model == self.model_name)
                and (self.start is None or task.submitted >= self.start)
                and (self.end is None or task.submitted <= self.end))


class TaskBoard:
    """The tasks of one emulator session. Not locked: the emulator calls it under its lock."""

    def __init__(self, *, seed: int, latency: tuple[float, float], time_scale: float,
                 ttl: float, spread: float | None = None):
        self.latency = latency
        self.time_scale = time_scale
        self.ttl = ttl
        self.spread = spread
        self.seed = seed
        self._rng = random.Random(seed)   # latency draws, replayed by the seed
        self._tasks: dict[str, Task] = {}

    def kind_mean(self, sub: Submission) -> float:
        """The mean simulated latency of tasks like `sub`: a point of [min, max] that the
        seed and the kind (model, resolution, duration) fix."""
        kind = f"{self.seed}\0{sub.model}\0{sub.tier}\0{sub.duration}".encode()
        share = int.from_bytes(hashlib.sha256(kind).digest()[:8], "big") / 2 ** 64
        lo, hi = self.latency
        return lo + share * (hi - lo)

    def _latency(self, sub: Submission) -> float:
        if self.spread is None:
            return self._rng.uniform(*self.latency)
        return self.kind_mean(sub) * self._rng.uniform(1 - self.spread, 1 + self.spread)

    def create(self, task_id: str, submission: Submission, api_key: str, now: float, *,
               failure: Failure | None, expired_url: bool) -> Task:
        wall = self._latency(submission) / self.time_scale
        task = Task(task_id, submission, api_key, submitted=now,
                    scheduled=now + wall * PENDING_SHARE, ends=now + wall, failure=failure,
                    expired_url=expired_url)
        self._tasks[task_id] = task
        return task

    def get(self, task_id: str, now: float) -> Task | None:
        """The task, or None if it never existed or has expired."""
        task = self._tasks.get(task_id)
        if task is None or now - task.submitted > self.ttl:
            return None
        return task

    def stored(self, task_id: str) -> Task | None:
        """The task even if its id has expired: a signed video URL carries its own expiry."""
        return self._tasks.get(task_id)

    def cancel(self, task_id: str, now: float) -> None:
        task = self.get(task_id, now)
        if task is None:
            raise _cannot_cancel(task_id, "task does not exist.")
        status = task.status(now)
        if status != "PENDING":
            raise _cannot_cancel(task_id, f"only PENDING tasks can be canceled, the task is "
                                 f"{status}.")
        self._tasks[task_id] = replace(task, canceled_at=now)

    def in_flight(self, family: str, now: float) -> int:
        return sum(1 for t in self._tasks.values()
                   if t.family == family and t.status(now) in ("PENDING", "RUNNING"))

    def page(self, query: ListQuery, now: float, region: str) -> dict:
        """A `GET /tasks` answer: newest first (§4.4 is unverified; this shape is our pick)."""
        rows = [t.list_row(now, region)
                for t in sorted(self._tasks.values(), key=lambda t: t.submitted, reverse=True)
                if now - t.submitted <= self.ttl and query.matches(t, now)]
        total, size = len(rows), query.page_size
        start = (query.page_no - 1) * size
        return {"data": rows[start:start + size], "total": total,
                "total_page": math.ceil(total / size) if total else 0,
                "page_no": query.page_no, "page_size": size}

    def all(self) -> list[Task]:
        return list(self._tasks.values())


def _cannot_cancel(task_id: str, reason: str) -> ApiError:
    # The reference leaves this code unverified (§3.1 ⚠); UnsupportedOperation is its guess.
    return ApiError(400, "UnsupportedOperation", f"Failed to cancel the task {task_id}: {reason}")
