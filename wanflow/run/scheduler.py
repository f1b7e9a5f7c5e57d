"""A ready queue over the task DAG, free of asyncio so it can be tested on its own.

Like ninja's FindWork/EdgeFinished: tasks become ready when all their deps have finished;
a failed task marks every dependent as skipped (with the reason) while independent work
goes on.
"""
from __future__ import annotations

from collections import deque


class Scheduler:
    def __init__(self, deps: dict[str, tuple[str, ...]]):
        self._waiting = {t: len(d) for t, d in deps.items()}
        self._dependents: dict[str, list[str]] = {t: [] for t in deps}
        for task, task_deps in deps.items():
            for dep in task_deps:
                self._dependents[dep].append(task)
        self._ready = deque(t for t, n in self._waiting.items() if n == 0)
        self._open = set(deps)   # not yet finished, failed or skipped
        self.skipped: dict[str, str] = {}

    def take(self) -> list[str]:
        """Every task that is ready now (each returned once)."""
        out = list(self._ready)
        self._ready.clear()
        return out

    def has_ready(self) -> bool:
        return bool(self._ready)

    def done(self, task: str) -> None:
        self._open.discard(task)
        for nxt in self._dependents[task]:
            self._waiting[nxt] -= 1
            if self._waiting[nxt] == 0 and nxt in self._open:
                self._ready.append(nxt)

    def failed(self, task: str) -> list[str]:
        """Mark `task` failed; returns the dependents skipped because of it."""
        self._open.discard(task)
        skipped = []
        stack = list(self._dependents[task])
        while stack:
            nxt = stack.pop()
            if nxt in self._open:
                self._open.discard(nxt)
                self.skipped[nxt] = task
                skipped.append(nxt)
                stack.extend(self._dependents[nxt])
        return skipped

    def drop(self, tasks) -> None:
        """Forget tasks that will not be started (e.g. after an interrupt)."""
        for task in tasks:
            self._open.discard(task)

    @property
    def finished(self) -> bool:
        return not self._open

    @property
    def open(self) -> set[str]:
        return set(self._open)
