"""A ready queue over the task DAG, free of asyncio so it can be tested on its own.

Like ninja's FindWork/EdgeFinished: a task becomes ready when all its dependencies have
finished; a failed task marks every dependent as skipped (with the reason) while
independent work goes on. The dependency bookkeeping is the plan's one graph routine.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from ..plan.graph import Graph

N = TypeVar("N", bound=Hashable)


class Scheduler(Generic[N]):
    def __init__(self, deps: Mapping[N, Iterable[N]]):
        self._graph = Graph(deps)
        self._waiting = self._graph.in_degrees()
        self._ready = deque(t for t, n in self._waiting.items() if n == 0)
        self._open = set(self._graph.deps)   # not yet finished, failed or skipped
        self.skipped: dict[N, N] = {}

    def take(self) -> list[N]:
        """Every task that is ready now (each returned once)."""
        out = list(self._ready)
        self._ready.clear()
        return out

    def drain(self) -> Iterator[N]:
        """Ready tasks, including those that become ready while the caller handles them
        (a cached task is `done` at once, which can make its dependents ready)."""
        while self._ready:
            yield self._ready.popleft()

    def done(self, task: N) -> None:
        self._open.discard(task)
        for nxt in self._graph.dependents[task]:
            self._waiting[nxt] -= 1
            if self._waiting[nxt] == 0 and nxt in self._open:
                self._ready.append(nxt)

    def failed(self, task: N) -> list[N]:
        """Mark `task` failed; returns the dependents skipped because of it."""
        self._open.discard(task)
        skipped = []
        stack = list(self._graph.dependents[task])
        while stack:
            nxt = stack.pop()
            if nxt in self._open:
                self._open.discard(nxt)
                self.skipped[nxt] = task
                skipped.append(nxt)
                stack.extend(self._graph.dependents[nxt])
        return skipped

    def drop(self, tasks: Iterable[N]) -> None:
        """Forget tasks that will not be started (e.g. after an interrupt)."""
        for task in tasks:
            self._open.discard(task)

    @property
    def finished(self) -> bool:
        return not self._open

    @property
    def open(self) -> set[N]:
        return set(self._open)
