"""Run a plan: exactly the tasks whose keys are not in the store, concurrently, within quotas.

A thin asyncio loop around the Scheduler. Generations go submit → journal → wait →
download → probe → store; the remote task id is journaled before the first poll, so a
killed run re-attaches instead of paying twice. Media work (frames, assembly) runs in a
bounded thread pool. The executor never prints: it emits events to a reporter.
"""
from __future__ import annotations

import asyncio
import errno
import os
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field

from ..plan import keys
from ..store import lockfile
from .. import models
from ..backends.base import Finished
from ..errors import (AuthError, BackendError, BudgetError, ConfigError, Interrupted,
                     MediaError, StoreError, SubmitUncertain, TaskFailed, WanflowError)
from ..plan.planner import Output, Plan, Task
from .pacing import Pacer, backoff
from .scheduler import Scheduler
from ..plan.assess import CACHED, IN_FLIGHT, TaskState, assess
from ..store.objects import Result, Store, storage_error

LOCK_WRITE_INTERVAL = 0.5   # seconds between lock-file rewrites during a run
# Errors writing the cache that every later task would hit too: stop the run on them.
_CACHE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


@dataclass(frozen=True)
class Limits:
    concurrency: int
    submit_rps: float


@dataclass
class RunOptions:
    jobs: int = 16                         # concurrent generations, all models together
    local_jobs: int = max(1, os.cpu_count() or 1)
    max_cost: float | None = None
    no_spend: bool = False
    resubmit_uncertain: bool = False
    limits: dict = field(default_factory=dict)   # model -> Limits (already merged)
    submit_retries: int = 6
    failed_task_retries: int = 2
    backoff_base: float = 1.0
    backoff_cap: float = 60.0


@dataclass(frozen=True)
class RunSummary:
    generated: int
    cached: int
    failed: int
    skipped: int
    billed_seconds: float
    cost: float
    interrupted: bool
    failures: tuple = ()     # (task id, message)
    states: dict = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.interrupted


class Executor:
    def __init__(self, plan: Plan, *, store: Store, journal, backend, reporter, spec_dir: str,
                 lock_path: str | None, options: RunOptions | None = None,
                 asset_digests: dict | None = None, states: dict | None = None,
                 lock_entries: dict | None = None):
        self.plan = plan
        self.store = store
        self.journal = journal
        self.backend = backend
        self.report = reporter
        self.spec_dir = spec_dir
        self.lock_path = lock_path
        self.options = options or RunOptions()
        self.asset_digests = asset_digests or {}
        self.lock_entries = dict(lock_entries if lock_entries is not None else
                                 (lockfile.read(lock_path) if lock_path else {}))
        self.states = states
        self.outputs: dict[str, Output] = {}
        self.stopping = False       # first SIGINT: submit nothing new
        self._jobs = asyncio.Semaphore(self.options.jobs)
        self._local = asyncio.Semaphore(self.options.local_jobs)
        self._model_slots: dict[str, asyncio.Semaphore] = {}
        self._model_rate: dict[str, Pacer] = {}
        # One submit per model in the air at a time, from the rate token to the journaled
        # task id: a kill leaves at most one submit per model in doubt, and a reconcile
        # never sees a sibling's task that is created but not yet journaled.
        self._submit_lock: dict[str, asyncio.Lock] = {}
        self._queued: dict[str, int] = {}     # model -> tasks waiting for one of its slots
        self._lock_dirty = False
        self._lock_written = 0.0
        self._remote: dict[str, tuple[str, str]] = {}   # task id -> (key, remote id) while polling
        self._gen_count = 0
        self._billed = 0.0
        self._cost = 0.0

    # -- public -------------------------------------------------------------------------

    def interrupt(self) -> None:
        self.stopping = True
        self.report("interrupt", message="stopping: no new submissions; waiting for tasks "
                    "in flight (press Ctrl-C again to abort; journaled tasks resume next run)")

    async def run(self) -> RunSummary:
        plan = self.plan
        if self.states is None:
            self.states = assess(plan, self.store, self.lock_entries, self.journal,
                                 self.asset_digests, paid=self.backend.paid)
        states = self.states
        self._check_budget(states)
        self.report("plan", tasks=len(plan.tasks),
                    to_run=sum(1 for s in states.values() if s.status != CACHED),
                    cost=sum(s.cost for s in states.values()))
        if not plan.only:  # a full run forgets lock entries of tasks the spec no longer has
            stale = [t for t in self.lock_entries if t not in plan.tasks]
            for t in stale:
                del self.lock_entries[t]
            self._lock_dirty = bool(stale)
        sched = Scheduler({tid: tuple(d for d in t.deps if d in plan.tasks)
                           for tid, t in plan.tasks.items()})
        running: dict[asyncio.Task, str] = {}
        failures: list[tuple[str, str]] = []
        fatal: WanflowError | None = None
        not_started: set[str] = set()
        cached = 0
        try:
            while True:
                for tid in _drain(sched):
                    task = plan.tasks[tid]
                    state = states[tid]
                    if state.status == CACHED or self._lookup(task):
                        cached += 1
                        if state.status == CACHED:
                            self.outputs[tid] = state.output
                        self._finish_cached(task)
                        sched.done(tid)
                        continue
                    if self.stopping and task.remote and state.status != IN_FLIGHT:
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
                        self.stopping = True
                    message = _describe(err)
                    failures.append((tid, message))
                    self.report("failed", task=tid, error=message,
                                code=getattr(err, "code", None))
                    for skipped in sched.failed(tid):
                        self.report("skipped", task=skipped, because=tid)
        except asyncio.CancelledError:
            polling = dict(self._remote)   # cancelling the jobs empties it
            for job in running:
                job.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await self._cancel_pending(polling)
            self._write_lock(force=True)
            raise
        self._write_lock(force=True)
        if fatal is not None:
            raise fatal
        interrupted = self.stopping and bool(sched.open or not_started)
        skipped = [t for t, cause in sched.skipped.items() if cause not in not_started]
        summary = RunSummary(generated=self._gen_count, cached=cached, failed=len(failures),
                             skipped=len(skipped), billed_seconds=self._billed,
                             cost=self._cost, interrupted=interrupted,
                             failures=tuple(failures), states=states)
        self.report("done", generated=summary.generated, cached=summary.cached,
                    failed=summary.failed, skipped=summary.skipped,
                    billed_seconds=round(summary.billed_seconds, 3),
                    cost=round(summary.cost, 4), interrupted=summary.interrupted)
        return summary

    # -- budget ---------------------------------------------------------------------------

    def _check_budget(self, states: dict[str, TaskState]) -> None:
        if not self.backend.paid:
            return
        to_pay = [s for s in states.values() if s.status == "run" and s.task.startswith("gen:")]
        cost = sum(s.cost for s in to_pay)
        if self.options.no_spend and to_pay:
            raise BudgetError(f"--no-spend: {len(to_pay)} generation(s) would be submitted "
                              f"(estimated {cost:.2f}); nothing was spent")
        if self.options.max_cost is not None and cost > self.options.max_cost:
            raise BudgetError(f"estimated cost {cost:.2f} exceeds --max-cost "
                              f"{self.options.max_cost:.2f}; nothing was spent")

    # -- per task -------------------------------------------------------------------------

    def _lookup(self, task: Task) -> bool:
        """Now that upstream outputs are known, is this task's key already in the store?"""
        key = self.plan.key(task, self.outputs)
        if key is None:
            return False
        result = self.store.get_result(key)
        if result is None or not self.store.has(result.digest):
            return False
        self.outputs[task.id] = Output(result.digest, self.plan.output_mime(task),
                                       result.meta.get("duration"))
        self._note_lock(task, result)
        return True

    def _finish_cached(self, task: Task) -> None:
        out = self.outputs[task.id]
        if task.path:
            self.store.materialize(out.digest, os.path.join(self.spec_dir, task.path))
        if task.id not in self.lock_entries and task.kind != "asset":
            result = self.store.get_result(self.states[task.id].key or "")
            if result is not None:
                self._note_lock(task, result)

    async def _execute(self, task: Task) -> None:
        key = self.plan.key(task, self.outputs)
        material = self.plan.material(task, self.outputs)
        self.report("start", task=task.id, reason=self.states[task.id].reason)
        started = time.monotonic()
        if task.kind == "gen":
            result = await self._generate(task, key, material)
        else:
            async with self._local:
                result = await asyncio.to_thread(self._local_task, task, key, material)
        self.outputs[task.id] = Output(result.digest, self.plan.output_mime(task),
                                       result.meta.get("duration"))
        if task.path:
            self.store.materialize(result.digest, os.path.join(self.spec_dir, task.path))
        self._note_lock(task, result)
        self.report("finished", task=task.id, seconds=round(time.monotonic() - started, 3),
                    output=result.digest, cost=result.meta.get("cost"))

    def _tmp(self, suffix: str) -> str:
        tmpdir = os.path.join(self.store.root, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        fd, path = tempfile.mkstemp(suffix=suffix, dir=tmpdir)
        os.close(fd)
        return path

    def _local_task(self, task: Task, key: str, material: dict) -> Result:
        from .. import media  # PyAV and numpy load only when there is media work to do

        meta = {"material": material, "kind": task.kind}
        if task.kind == "asset":
            if task.asset.is_local:
                digest, size = self.store.put_file(task.asset.file)
            else:
                tmp = self._tmp(os.path.splitext(task.asset.url)[1][:8])
                try:
                    _fetch(task.asset.url, tmp)
                    digest, size = self.store.put_file(tmp, move=True)
                finally:
                    _unlink(tmp)
                material = {"kind": "asset", "digest": digest}
                key = keys.key_of(material)
                meta["material"] = material
            meta["source"] = task.asset.path or task.asset.url
            result = Result(key=key, task=task.id, digest=digest, size=size, meta=meta,
                            created=time.time())
            self.store.put_result(result)
            return result
        paths = [str(self.store.path(self.outputs[i].digest)) for i in task.inputs
                 if not i.startswith("asset:")]
        tmp = self._tmp(".png" if task.kind == "frame" else ".mp4")
        try:
            if task.kind == "frame":
                media.extract_frame(paths[0], tmp, task.frame)
            else:
                bed = None
                if task.bed is not None:
                    bed_digest = self.outputs[f"asset:{task.bed.asset}"].digest
                    bed = media.AudioBed(str(self.store.path(bed_digest)),
                                         volume=task.bed.volume, duck=task.bed.duck)
                joins = [(task.transition.type, task.transition.seconds)] * (len(paths) - 1)
                media.assemble(paths, tmp, transitions=joins, width=task.width,
                               height=task.height, fps=task.fps, bed=bed)
                probe = media.probe(tmp)
                meta.update(duration=round(probe.duration, 3), width=probe.width,
                            height=probe.height)
            digest, size = self.store.put_file(tmp, move=True)
        finally:
            _unlink(tmp)
        result = Result(key=key, task=task.id, digest=digest, size=size, meta=meta,
                        created=time.time())
        self.store.put_result(result)
        return result

    # -- generations ------------------------------------------------------------------------

    def _slots(self, model: str) -> tuple[asyncio.Semaphore, Pacer]:
        if model not in self._model_slots:
            limits = self.options.limits.get(model) or _default_limits(model)
            self._model_slots[model] = asyncio.Semaphore(max(1, limits.concurrency))
            self._model_rate[model] = Pacer(limits.submit_rps, margin=1.05)
            self._submit_lock[model] = asyncio.Lock()
        return self._model_slots[model], self._model_rate[model]

    async def _generate(self, task: Task, key: str, material: dict) -> Result:
        req = self.plan.request(task, self.outputs)
        files = {b.digest: str(self.store.path(b.digest)) for b in req.blobs if not b.url}
        slots, rate = self._slots(req.model)
        entry = self.journal.get(key) if self.journal is not None else None
        finished: Finished | None = None
        attempts_left = self.options.failed_task_retries
        if entry is not None and entry.backend == self.backend.identity:
            if entry.state == "uncertain" and not self.options.resubmit_uncertain:
                raise SubmitUncertain(
                    f"an earlier run submitted {task.id} but never learned whether the task was "
                    f"created ({entry.error or 'outcome unknown'}); it may be running and billed. "
                    "Check the provider's task list, then rerun with --resubmit-uncertain to "
                    "submit it again", code="SubmitUncertain")
            fresh = time.time() - entry.submitted_at < 24 * 3600
            if entry.state == "submitting" and fresh and not self.options.resubmit_uncertain:
                async with self._submit_lock[req.model]:
                    adopted = await self._reconcile(task, key, entry, req)
                if adopted:
                    entry = self.journal.get(key)
            if entry.state == "finished" and entry.finished and fresh:
                finished = Finished(**entry.finished)
                self.report("reattach", task=task.id, remote_id=entry.remote_id,
                            state="finished")
            elif entry.state == "submitted" and fresh:
                self.report("reattach", task=task.id, remote_id=entry.remote_id,
                            state="submitted")
                async with self._jobs:
                    finished = await self._wait(task, key, entry.remote_id, req,
                                                elapsed=time.time() - entry.submitted_at)
        if hasattr(self.backend, "prepare"):
            try:   # uploads first, outside the model's slot (submit reuses them)
                await self.backend.prepare(req, files)
            except BackendError:
                pass   # submit uploads again and reports the error with its retries
        while finished is None:
            # The model's slot before the global permit: a task waiting for its model must
            # not hold a permit that a task of another, idle model could use.
            await self._take_slot(req.model, slots)
            try:
                async with self._jobs:
                    if self.stopping:
                        raise Interrupted("interrupted before submitting")
                    submitted = await self._submit(task, key, req, files, rate)
                    try:
                        finished = await self._wait(task, key, submitted.remote_id, req)
                    except TaskFailed as err:
                        self.journal.mark_failed(key, str(err))
                        if not err.retryable or attempts_left <= 0 or self.stopping:
                            raise
                        attempts_left -= 1
                        self.report("retry", task=task.id, why=f"task failed: {err}")
            finally:
                slots.release()
        return await self._collect(task, key, material, req, finished)

    async def _reconcile(self, task, key, entry, req) -> bool:
        """A run died while submitting: find out whether the provider created the task.

        Lists the model's tasks around the moment of the submit. None that wanflow has not
        journaled: the submit never landed, so submitting again is safe. Exactly one, and
        only one submit of this model was in doubt: that is ours, adopt it. Otherwise a
        person has to decide (--resubmit-uncertain).
        """
        if not self.backend.paid:
            return False
        lister = getattr(self.backend, "list_tasks", None)
        doubt = (f"an earlier run was killed while submitting {task.id}; the provider may "
                 "have created (and be billing) a task wanflow has no id for")
        if lister is None:
            raise SubmitUncertain(doubt, code="SubmitUncertain")
        start, end = models.provider_time(entry.submitted_at - 300), \
            models.provider_time(entry.submitted_at + 300)
        try:
            listed = await lister(model_name=req.model, start_time=start, end_time=end,
                                  page_size=100)
        except BackendError as err:
            raise SubmitUncertain(f"{doubt}, and listing tasks to check failed: {err}",
                                  code="SubmitUncertain") from None
        journaled = {e.remote_id for e in self.journal.entries(backend=self.backend.identity)}
        candidates = [t.get("task_id") for t in listed if t.get("task_id") not in journaled]
        in_doubt = [e for e in self.journal.entries(backend=self.backend.identity,
                                                    states=("submitting",))
                    if (self.plan.tasks.get(e.task) and self.plan.tasks[e.task].shot
                        and self.plan.tasks[e.task].shot.model == req.model)]
        if not candidates:
            self.report("notice", message=f"{task.id}: the interrupted submit never reached "
                        "the provider; submitting it now")
            return False
        if len(candidates) == 1 and len(in_doubt) == 1:
            self.journal.record_submit(key, task.id, self.backend.identity, candidates[0],
                                       None, entry.submitted_at)
            self.report("notice", message=f"{task.id}: adopted {candidates[0]}, created by "
                        "the interrupted submit")
            return True
        raise SubmitUncertain(f"{doubt}; unjournaled tasks of {req.model} from that time: "
                              f"{', '.join(map(str, candidates[:5]))}. Check them, then rerun "
                              "with --resubmit-uncertain to submit again",
                              code="SubmitUncertain")

    async def _submit(self, task, key, req, files, rate):
        attempt = 0
        lock = self._submit_lock[req.model]
        while True:
            held = False

            async def before_send():
                # Called by the backend after uploads, right before the POST: take the
                # model's submit slot and rate token, then journal the intent, so a kill
                # during the request leaves a trace to reconcile.
                nonlocal held
                await lock.acquire()
                held = True
                await rate.acquire()
                self.journal.record_intent(key, task.id, self.backend.identity)

            delay = None
            try:
                submitted = await self.backend.submit(req, files, before_send=before_send)
                self.journal.record_submit(key, task.id, self.backend.identity,
                                           submitted.remote_id, submitted.request_id)
            except SubmitUncertain as err:
                self.journal.record_uncertain(key, task.id, self.backend.identity, str(err))
                raise
            except BackendError as err:
                self.journal.forget(key)  # the provider refused it: definitely not created
                if not err.retryable or attempt >= self.options.submit_retries or self.stopping:
                    raise
                delay = err.retry_after if err.retry_after else backoff(
                    attempt, self.options.backoff_base, self.options.backoff_cap)
                attempt += 1
                self.report("retry", task=task.id, why=str(err), delay=round(delay, 2))
            finally:
                if held:
                    lock.release()
            if delay is not None:   # back off without holding the model's submit slot
                await asyncio.sleep(delay)
                continue
            # Journaled before the first poll: a killed run resumes this id, never resubmits.
            self.report("submitted", task=task.id, remote_id=submitted.remote_id)
            return submitted

    async def _take_slot(self, model: str, slots: asyncio.Semaphore) -> None:
        """Wait for one of the model's slots, counted so that pollers know work is queued."""
        self._queued[model] = self._queued.get(model, 0) + 1
        try:
            await slots.acquire()
        finally:
            self._queued[model] -= 1

    async def _wait(self, task, key, remote_id, req, elapsed: float = 0.0) -> Finished:
        self._remote[task.id] = (key, remote_id)
        model = req.model
        try:
            finished = await self.backend.wait(
                remote_id, req, elapsed=elapsed,
                urgent=lambda: self._queued.get(model, 0) > 0)
        finally:
            self._remote.pop(task.id, None)
        self.journal.mark_finished(key, finished.to_dict())
        return finished

    async def _collect(self, task, key, material, req, finished: Finished) -> Result:
        from .. import media

        tmp = self._tmp(".mp4")
        try:
            await self.backend.download(finished, tmp)
            probe = await asyncio.to_thread(media.probe, tmp)
            digest, size = await asyncio.to_thread(self.store.put_file, tmp, move=True)
        except MediaError as err:
            raise MediaError(f"{task.id}: the downloaded video is unusable and was not "
                             f"stored: {err}") from None
        finally:
            _unlink(tmp)
        price = self.plan.estimate(task)[1] if self.backend.paid else None
        cost = round(finished.billed_seconds * price, 6) if price else 0.0
        meta = {"material": material, "kind": "gen", "backend": self.backend.identity,
                "model": req.model, "task_id": finished.remote_id,
                "request_id": finished.request_id, "actual_prompt": finished.actual_prompt,
                "billed_seconds": finished.billed_seconds if self.backend.paid else 0.0,
                "cost": cost, "duration": round(probe.duration, 3), "width": probe.width,
                "height": probe.height, "usage": finished.usage}
        result = Result(key=key, task=task.id, digest=digest, size=size, meta=meta,
                        created=time.time())
        self.store.put_result(result)
        self.journal.mark_done(key)
        self._gen_count += 1
        self._billed += meta["billed_seconds"]
        self._cost += cost
        return result

    async def _cancel_pending(self, polling: dict) -> None:
        """On abort: cancel remote tasks still queued (unbilled); the rest stay journaled."""
        for tid, (key, remote_id) in polling.items():
            try:
                if await self.backend.cancel(remote_id):
                    self.journal.mark_failed(key, "canceled on abort")
                    self.report("canceled", task=tid, remote_id=remote_id)
            except WanflowError:
                pass

    # -- lock file --------------------------------------------------------------------------

    def _note_lock(self, task: Task, result: Result) -> None:
        meta = result.meta
        entry = lockfile.LockEntry(
            task=task.id, key=result.key, output=result.digest, size=result.size,
            backend=meta.get("backend") or ("local" if task.kind != "gen" else
                                            self.backend.identity),
            model=meta.get("model"), duration=meta.get("duration"), width=meta.get("width"),
            height=meta.get("height"), task_id=meta.get("task_id"),
            request_id=meta.get("request_id"), actual_prompt=meta.get("actual_prompt"),
            billed_seconds=meta.get("billed_seconds"), cost=meta.get("cost"),
            currency=meta.get("currency"))
        if self.lock_entries.get(task.id) != entry:
            self.lock_entries[task.id] = entry
            self._lock_dirty = True
            self._write_lock()

    def _write_lock(self, force: bool = False) -> None:
        if not self.lock_path or not self._lock_dirty:
            return
        now = time.monotonic()
        if not force and now - self._lock_written < LOCK_WRITE_INTERVAL:
            return
        lockfile.write(self.lock_path, self.lock_entries)
        self._lock_dirty = False
        self._lock_written = now


def _drain(sched: Scheduler):
    """Ready tasks, including those that become ready while the caller finishes cached ones."""
    while sched.has_ready():
        yield from sched.take()


def _default_limits(model: str) -> Limits:
    info = models.lookup(model)
    return Limits(info.concurrency if info else 2, info.submit_rps if info else 1.0)


def _describe(err: BaseException) -> str:
    if isinstance(err, WanflowError):
        return str(err)
    if isinstance(err, OSError):
        return f"{type(err).__name__}: {err}"
    return f"internal error: {type(err).__name__}: {err}"


def _fetch(url: str, dest: str) -> None:
    """Download an https asset (remote assets are pinned by content in the lock file)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except OSError as err:
        raise MediaError(f"cannot fetch asset {url}: {err}") from None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
