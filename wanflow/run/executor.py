"""Run a plan: exactly the tasks whose keys are not in the store, concurrently, within quotas.

A thin asyncio loop around the Scheduler (ninja's FindWork/EdgeFinished). Each task is made
concrete once — by the assessment, or here when its inputs become known — and that
`Prepared` is what is looked up, submitted and recorded. Generations go through
`Generations` (quotas, journal, backend); local work (assets, frames, assembly) runs in a
bounded thread pool. With a team's remote, `RemoteTier` downloads what it has instead and
uploads what the run makes. The executor never prints: it emits events to a reporter.
"""
from __future__ import annotations

import asyncio
import errno
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..backends.base import Backend, Finished
from ..errors import (
    AuthError,
    ConfigError,
    Interrupted,
    MediaError,
    StoreError,
    WanflowError,
)
from ..plan.assess import CACHED, IN_FLIGHT, RUN, TaskState
from ..plan.planner import Plan
from ..plan.prepare import Prepared
from ..plan.tasks import AssetTask, GenTask, Output, Task, TaskId, render_path
from ..store import Result, Store
from ..store.fs import storage_error, unlink_quiet
from ..store.journal import Journal, NullJournal
from ..store.lockfile import LockBook, entry_from_result
from .events import ASSEMBLING, EXTRACTING, STORING, WAITING, Event, Reporter
from .generate import Generations
from .local import run_local, verified_input
from .options import RunOptions
from .scheduler import Scheduler

if TYPE_CHECKING:
    from .remote import RemoteTier

# Errors writing the cache that every later task would hit too: stop the run on them.
_CACHE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


@dataclass(frozen=True)
class RunSummary:
    generated: int
    cached: int
    failed: int
    skipped: int
    billed_seconds: float
    cost: float
    interrupted: bool
    failures: tuple[tuple[str, str], ...] = ()     # (task id, message)
    states: dict = field(default_factory=dict, compare=False)
    films: tuple[str, ...] = ()                    # paths of the films written
    downloaded: int = 0                            # results taken from the remote

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.interrupted


class Executor:
    def __init__(self, plan: Plan, states: dict[TaskId, TaskState], *, store: Store,
                 journal: Journal | NullJournal, backend: Backend, reporter: Reporter,
                 spec_dir: str, lock: LockBook, options: RunOptions | None = None,
                 targets: frozenset[TaskId] | None = None, remote: RemoteTier | None = None):
        self.plan = plan
        self.states = states
        self.store = store
        self.backend = backend
        self.report = reporter
        self.spec_dir = spec_dir
        self.lock = lock
        self.targets = targets if targets is not None else frozenset(plan.tasks)
        self.options = options or RunOptions()
        self.remote = remote
        self.outputs: dict[TaskId, Output] = {}
        self.prepared: dict[TaskId, Prepared] = {}
        self.films: list[str] = []
        self.unpriced = 0   # paid generations made with no known price: their cost is unknown
        self._local = asyncio.Semaphore(self.options.local_jobs)
        backend.learn(journal)   # run times of earlier tasks shape the poll schedule
        self.generations = Generations(self.options, store=store, journal=journal,
                                       backend=backend, report=reporter,
                                       task_models=self._model_of, remote=remote)

    @property
    def stopping(self) -> bool:
        return self.generations.stopping

    def interrupt(self) -> None:
        self.generations.stopping = True
        self.report(Event.INTERRUPT, message="stopping: no new submissions; waiting for tasks "
                    "in flight (press Ctrl-C again to abort; journaled tasks resume next run)")

    def _model_of(self, task_id: str) -> str | None:
        """The model of a journaled task (the journal keeps ids as text)."""
        tid = TaskId.parse(task_id)
        task = self.plan.tasks.get(tid) if tid is not None else None
        return task.shot.model if isinstance(task, GenTask) else None

    async def run(self) -> RunSummary:
        plan, states = self.plan, self.states
        mine = [states[t] for t in plan.tasks if t in self.targets]
        cached_now = sum(1 for s in mine if s.status == CACHED)
        self.report(Event.PLAN, tasks=len(mine), to_run=len(mine) - cached_now,
                    cost=sum(s.cost for s in mine), backend=self.backend.identity,
                    backend_reason=self.options.backend_reason, cached=cached_now,
                    currency=self.options.currency, max_cost=self.options.max_cost)
        if self.options.generate and any(s.status in (RUN, IN_FLIGHT) and s.task.kind == "gen"
                                         for s in mine):
            await self.backend.check()   # unreachable or refused: exit 4 before any work
        if self.remote is not None:
            await self.remote.start()
        sched = Scheduler({tid: t.deps for tid, t in plan.tasks.items()
                           if tid in self.targets})
        running: dict[asyncio.Task, TaskId] = {}
        failures: list[tuple[str, str]] = []
        fatal: WanflowError | None = None
        not_started: set[TaskId] = set()
        cached = 0
        try:
            while True:
                for tid in sched.drain():
                    task = plan.tasks[tid]
                    if self._reuse(task):
                        cached += 1
                        sched.done(tid)
                        continue
                    if self.stopping and task.remote and states[tid].status != IN_FLIGHT:
                        sched.drop([tid])
                        continue
                    job = asyncio.create_task(self._execute(task))
                    running[job] = tid
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for job in done:
                    tid = running.pop(job)
                    err = job.exception()
                    if err is None:
                        sched.done(tid)
                        continue
                    if isinstance(err, Interrupted):   # never submitted: left for next run
                        not_started.add(tid)
                        sched.failed(tid)
                        continue
                    if isinstance(err, OSError) and err.errno in _CACHE_ERRNOS:
                        err = storage_error(err, "writing into the cache", self.store.root)
                    if isinstance(err, (AuthError, ConfigError, StoreError)) and fatal is None:
                        fatal = err   # the same for every task: stop submitting, report once
                        self.generations.stopping = True
                    message = _describe(err)
                    failures.append((tid, message))
                    self.report(Event.FAILED, task=tid, error=message,
                                code=getattr(err, "code", None))
                    for dependent in sched.failed(tid):
                        self.report(Event.SKIPPED, task=dependent, because=tid)
        except asyncio.CancelledError:
            polling = dict(self.generations.polling)   # cancelling the jobs empties it
            for job in running:
                job.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await self.generations.cancel_pending(polling)
            self.lock.flush(force=True)
            raise
        if self.remote is not None:
            await self.remote.finish()
        self.lock.flush(force=True)
        if fatal is not None:
            raise fatal
        g = self.generations
        interrupted = self.stopping and bool(sched.open or not_started)
        skipped = [t for t, cause in sched.skipped.items() if cause not in not_started]
        summary = RunSummary(generated=g.generated, cached=cached, failed=len(failures),
                             skipped=len(skipped), billed_seconds=g.billed, cost=g.cost,
                             interrupted=interrupted, failures=tuple(failures), states=states,
                             films=tuple(self.films),
                             downloaded=self.remote.downloaded if self.remote else 0)
        self.report(Event.DONE, generated=summary.generated, cached=summary.cached,
                    downloaded=summary.downloaded, failed=summary.failed,
                    skipped=summary.skipped,
                    billed_seconds=round(summary.billed_seconds, 3),
                    cost=round(summary.cost, 4), unpriced=self.unpriced,
                    interrupted=summary.interrupted, films=list(summary.films))
        return summary

    # -- per task -------------------------------------------------------------------------

    def _prepare(self, task: Task) -> Prepared:
        """The task made concrete: the assessment's, or made now that its inputs are known
        (once: the scheduler starts a task only after all its inputs finished)."""
        if task.id not in self.prepared:
            p = self.states[task.id].prepared or self.plan.prepare(task, self.outputs)
            assert p is not None, f"{task.id} started before its inputs were known"
            self.prepared[task.id] = p
        return self.prepared[task.id]

    def _reuse(self, task: Task) -> bool:
        """Whether the task's output is already stored (known up front, or found now that
        upstream outputs are known); if so, record it and materialise it."""
        state = self.states[task.id]
        if state.status == CACHED and state.output is not None:
            self.outputs[task.id] = state.output
        else:
            p = self._prepare(task)
            result = self.store.get_result(p.key)
            if result is None or not self.store.has(result.digest):
                return False
            self.outputs[task.id] = Output(result.digest, task.output_mime,
                                           result.meta.get("duration"), _url(task))
            self.lock.note(entry_from_result(task.id, result, self._identity(task)))
            self.report(Event.CACHED, task=task.id)
        self._materialize(task)
        return True

    async def _execute(self, task: Task) -> None:
        prepared = self._prepare(task)
        state = self.states[task.id]
        self.report(Event.START, task=task.id, reason=state.reason)
        started = time.monotonic()
        # Read-through: what the remote has is downloaded, not made (nor paid for).
        result = await self.remote.reuse(task, prepared, state) if self.remote else None
        if result is not None:
            pass
        elif isinstance(task, GenTask):
            if not self.options.generate:
                raise WanflowError(f"{task.id} is not on the remote ({state.reason}); "
                                   "`wanflow run` would generate it")
            result = await self.generations.run(task, prepared, self._upload_files(task),
                                                self._collect)
        else:
            if self._local.locked():
                self.report(Event.STATE, task=task.id, state=WAITING)
            async with self._local:
                self.report(Event.STATE, task=task.id, state=_LOCAL_STATES[task.kind])
                result = await asyncio.to_thread(run_local, task, prepared, self.store,
                                                 self.outputs)
        self.outputs[task.id] = Output(result.digest, task.output_mime,
                                       result.meta.get("duration"), _url(task))
        self._materialize(task)
        self.lock.note(entry_from_result(task.id, result, self._identity(task)))
        fetched = self.remote is not None and self.remote.fetched(result)
        if self.remote is not None and not fetched:
            self.remote.publish(result)   # write-through, on the tier's own concurrency
        extra: dict[str, object] = {"source": "remote"} if fetched else {}
        if self.backend.paid and task.kind == "gen" and not fetched and not state.priced:
            self.unpriced += 1
            extra["priced"] = False   # its cost is not known (recorded as none)
        self.report(Event.FINISHED, task=task.id, seconds=round(time.monotonic() - started, 3),
                    output=result.digest, cost=result.meta.get("cost"),
                    billed_seconds=result.meta.get("billed_seconds"), **extra)

    def _upload_files(self, task: Task) -> dict[str, str]:
        """Local files the backend may upload for a generation, checked against their digest."""
        files = {}
        for source in task.inputs:
            out = self.outputs[source]
            if out.url is None:
                files[out.digest] = verified_input(self.store, task, out)
        return files

    def _materialize(self, task: Task) -> None:
        if task.path:
            path = os.path.join(self.spec_dir, render_path(task.path, self.backend.paid))
            self.store.objects.materialize(self.outputs[task.id].digest, path)
            if task.kind == "film":
                self.films.append(_as_given(path))

    def _identity(self, task: Task) -> str:
        return lock_identity(task.id, self.backend.identity)

    async def _collect(self, task: GenTask, prepared: Prepared, finished: Finished) -> Result:
        from .. import media

        req = prepared.request
        assert req is not None
        tmp = self.store.objects.temp_path(".mp4")
        try:
            await self.backend.download(finished, tmp)
            probe = await asyncio.to_thread(media.probe, tmp)
            digest, size = await asyncio.to_thread(self.store.objects.put_file, tmp,
                                                   move=True)
        except MediaError as err:
            raise MediaError(f"{task.id}: the downloaded video is unusable and was not "
                             f"stored: {err}") from None
        finally:
            unlink_quiet(tmp)
        paid = self.backend.paid
        price = self.states[task.id].price if paid else None
        # A paid generation at no known price has an unknown cost (None), never 0.
        cost = (round(finished.billed_seconds * price, 6) if price is not None
                else None if paid else 0.0)
        meta = {"material": prepared.material, "kind": "gen",
                "backend": self.backend.identity, "model": req.model,
                "task_id": finished.remote_id, "request_id": finished.request_id,
                "actual_prompt": finished.actual_prompt,
                "billed_seconds": finished.billed_seconds if paid else 0.0,
                "cost": cost, "currency": self.options.currency if paid else None,
                "duration": round(probe.duration, 3), "width": probe.width,
                "height": probe.height, "usage": finished.usage}
        result = Result(key=prepared.key, task=task.id, digest=digest, size=size, meta=meta,
                        created=time.time())
        self.store.actions.put(result)
        return result


_LOCAL_STATES = {"asset": STORING, "frame": EXTRACTING, "scene": ASSEMBLING,
                 "film": ASSEMBLING}


def _as_given(path: str) -> str:
    """A path as a person would open it: relative to here when it is below here."""
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def lock_identity(task: TaskId, backend: str) -> str:
    """The backend a lock entry names when its record does not: the run's for a
    generation, "local" for work done on this machine."""
    return backend if task.kind == "gen" else "local"


def _url(task: Task) -> str | None:
    return task.asset.url if isinstance(task, AssetTask) else None


def _describe(err: BaseException) -> str:
    if isinstance(err, WanflowError):
        return str(err)
    if isinstance(err, OSError):
        return f"{type(err).__name__}: {err}"
    return f"internal error: {type(err).__name__}: {err}"
