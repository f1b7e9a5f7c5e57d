"""One generation, from journal to stored result: the part of a run that costs money.

submit → journal the remote id → wait → download → probe → store. The remote task id is
journaled before the first poll, so a killed run re-attaches instead of paying twice; a
submit that was in the air when a run died is reconciled through the provider's task list.
Quotas: a model's slot (tasks in flight) is taken before the run-wide permit, and one submit
per model is in the air at a time, paced to the model's submission rate. A backend without
a provider's quotas (preview, rendered here) is held only by the run-wide permit.

With a team's remote and claims (`wanflow.store.claims`), a fleet pays once per key: a
runner claims a key before submitting it, names the provider task beside the claim as soon
as it has one, waits (outside every slot) while another runner holds the key, and adopts
the task of a runner whose claim went stale — journaling it here first, as its own.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

from .. import models
from ..backends.base import Backend, Finished
from ..errors import (
    BackendError,
    DownloadError,
    Interrupted,
    RateLimited,
    SubmitUncertain,
    TaskFailed,
    WanflowError,
)
from ..plan.prepare import Prepared
from ..plan.request import GenRequest
from ..plan.tasks import GenTask, TaskId
from ..store import Result, Store
from ..store.journal import Journal, NullJournal
from .events import DOWNLOADING, RUNNING, UPLOADING, WAITING, Event, Reporter
from .options import RunOptions
from .pacing import Pacer, backoff
from .quotas import Limits, default_limits

if TYPE_CHECKING:
    from ..store.claims import Claim, Claims, ProviderTask
    from .remote import RemoteTier


class _ClaimLost(Exception):
    """Another runner took our claim over (our heartbeats did not reach the remote)."""


class Generations:
    """Runs generation tasks against one backend within per-model quotas."""

    def __init__(self, options: RunOptions, *, store: Store, journal: Journal | NullJournal,
                 backend: Backend, report: Reporter, task_models: Callable[[str], str | None],
                 remote: RemoteTier | None = None):
        self.options = options   # quotas, retries, back-off and resubmission
        self.store = store
        self.journal = journal
        self.backend = backend
        self.report = report
        self.task_models = task_models     # task id -> its model (for reconciling)
        self.stopping = False              # first SIGINT: submit nothing new
        self.generated = 0
        self.billed = 0.0
        self.cost = 0.0
        self._jobs = asyncio.Semaphore(options.jobs)
        # A backend without quotas (preview) is held only by the run-wide permit.
        self._unlimited = Limits(options.jobs, 0.0)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._rate: dict[str, Pacer] = {}
        # One submit per model in the air at a time, from the rate token to the journaled
        # task id: a kill leaves at most one submit per model in doubt, and a reconcile
        # never sees a sibling's task that is created but not yet journaled.
        self._submit_lock: dict[str, asyncio.Lock] = {}
        self._queued: dict[str, int] = {}     # model -> tasks waiting for one of its slots
        self.polling: dict[TaskId, tuple[str, str]] = {}   # task -> (key, remote id)
        self.remote = remote               # the team's remote tier (reads, writes, claims)

    def _quota(self, model: str) -> tuple[asyncio.Semaphore, Pacer, asyncio.Lock]:
        if model not in self._slots:
            limits = ((self.options.limits.get(model) or default_limits(model))
                      if self.backend.quotas else self._unlimited)
            self._slots[model] = asyncio.Semaphore(max(1, limits.concurrency))
            self._rate[model] = Pacer(limits.submit_rps, margin=1.05)
            self._submit_lock[model] = asyncio.Lock()
        return self._slots[model], self._rate[model], self._submit_lock[model]

    async def run(self, task: GenTask, prepared: Prepared, files: dict[str, str],
                  collect: Callable) -> Result:
        """Generate `task` (re-attaching to a journaled remote task when there is one) and
        hand the finished task to `collect(task, prepared, finished)`, which stores it."""
        req = prepared.request
        assert req is not None
        key = prepared.key
        _, _, submit_lock = self._quota(req.model)
        entry = self.journal.get(key)
        if entry is not None and task.id in self.options.resubmit:
            self.journal.forget(key)   # asked for in so many words: pay for it again
            entry = None
        finished: Finished | None = None
        if entry is not None and entry.backend == self.backend.identity:
            if entry.state == "uncertain" and not self.options.resubmit_uncertain:
                raise SubmitUncertain(
                    f"an earlier run submitted {task.id} but never learned whether the task was "
                    f"created ({entry.error or 'outcome unknown'}); it may be running and billed. "
                    "Check the provider's task list (or the console); to pay for it again, run: "
                    f"{self.options.resubmit_command(task.id)}", code="SubmitUncertain")
            if entry.state == "expired":
                raise DownloadError(
                    f"{task.id}: task {entry.remote_id} finished but its video expired before "
                    f"it was downloaded ({entry.error}); to generate it again (paid), run: "
                    f"{self.options.resubmit_command(task.id)}", code="URLExpired")
            fresh = time.time() - entry.submitted_at < models.TASK_TTL_SECONDS
            if entry.state == "submitting" and fresh and not self.options.resubmit_uncertain:
                async with submit_lock:
                    adopted = await self._reconcile(task, key, entry, req)
                if adopted:
                    entry = self.journal.get(key)
            if entry is not None and entry.state == "finished" and entry.finished and fresh:
                finished = Finished(**entry.finished)
                self.report(Event.REATTACH, task=task.id, remote_id=entry.remote_id,
                            state="finished", elapsed=_since(entry.submitted_at),
                            expected=self._expected(req))
            elif entry is not None and entry.state == "submitted" and fresh:
                self.report(Event.REATTACH, task=task.id, remote_id=entry.remote_id,
                            state="submitted", elapsed=_since(entry.submitted_at),
                            expected=self._expected(req))
                self._wait_permit(task)
                async with self._jobs:
                    finished = await self._wait(task, key, entry.remote_id, req,
                                                elapsed=time.time() - entry.submitted_at)
        if finished is None:
            outcome = await self._fresh(task, prepared, files)
            if isinstance(outcome, Result):
                return outcome   # another runner made it: downloaded from the remote
            finished = outcome
        self.report(Event.STATE, task=task.id, state=DOWNLOADING)
        try:
            result = await collect(task, prepared, finished)
        except DownloadError as err:
            self._let_go(key)
            if err.code != "URLExpired":
                raise   # retried by the next run from the journaled task, never regenerated
            # It can never be downloaded now: remember that, and say how to pay again.
            self.journal.mark_expired(key, str(err))
            again = self.options.resubmit_command(task.id)
            raise DownloadError(f"{err}; to generate it again (paid), run: {again}",
                                code="URLExpired") from None
        except BaseException:
            self._let_go(key)
            raise
        self.journal.mark_done(key)
        self.generated += 1
        self.billed += result.meta.get("billed_seconds") or 0.0
        self.cost += result.meta.get("cost") or 0.0
        return result

    @property
    def claims(self) -> Claims | None:
        """The remote's claims, for paid work only (a preview is free: no one waits)."""
        return self.remote.claims if self.remote is not None and self.backend.paid else None

    def _let_go(self, key: str) -> None:
        """Stop heartbeating the claim of a task this run could not store, so that another
        runner adopts the finished provider task once the claim goes stale."""
        if self.claims is not None:
            self.claims.done(key)

    async def _fresh(self, task: GenTask, prepared: Prepared,
                     files: dict[str, str]) -> Finished | Result:
        """A generation with no journaled task: submit it and wait, submitting again when
        the provider fails the task. With claims, first settle who generates the key: wait
        while another runner holds it, take its result once it is on the remote, adopt the
        provider task of a runner that died. Returns a downloaded Result when another
        runner made it."""
        key, req = prepared.key, prepared.request
        assert req is not None
        claims = self.claims
        attempts_left = self.options.failed_task_retries
        use_result = True
        while True:
            claim: Claim | None = None
            adopt: ProviderTask | None = None
            if claims is not None and self.remote is not None:
                settled = await claims.settle(key, task.id, use_result=use_result,
                                              stop=lambda: self.stopping)
                if settled.record is not None:
                    known_bad = settled.record.digest in self.remote.corrupt
                    result = None if known_bad else await self.remote.fetch(task,
                                                                            settled.record)
                    if result is not None:
                        return result
                    use_result = False   # corrupt there: make it again (claimed)
                    continue
                claim, adopt = settled.claim, settled.adopt
            try:
                return await self._attempt(task, key, req, files, claim, adopt)
            except _ClaimLost:
                continue
            except TaskFailed as err:
                self.journal.mark_failed(key, str(err))
                if claims is not None and claim is not None:
                    await claims.release(claim, f"its task failed: {err}")
                if not err.retryable or attempts_left <= 0 or self.stopping:
                    raise
                attempts_left -= 1
                self.report(Event.RETRY, task=task.id, why=f"task failed: {err}")

    async def _attempt(self, task: GenTask, key: str, req: GenRequest, files: dict[str, str],
                       claim: Claim | None, adopt: ProviderTask | None) -> Finished:
        """One provider task for `task`: the adopted one of a dead runner, or a new submit
        within the model's slot. A claim is released if nothing was submitted under it."""
        claims = self.claims
        identity = self.backend.identity
        if claims is not None and claim is not None and adopt is not None:
            remote_id = await self._adopt(task, key, claim, adopt)
            if remote_id is not None:
                async with self._jobs:
                    return await self._wait(task, key, remote_id, req, elapsed=adopt.age)
        if files and self.backend.paid:   # a free backend uploads nothing
            self.report(Event.STATE, task=task.id, state=UPLOADING)
        # Uploads first, outside the model's slot (submit reuses them). A failure here is
        # left to submit, which uploads again and reports the error with its retries.
        with suppress(BackendError):
            await self.backend.prepare(req, files)
        slots, rate, submit_lock = self._quota(req.model)
        # The model's slot before the global permit: a task waiting for its model must
        # not hold a permit that a task of another, idle model could use.
        await self._take_slot(task, req.model, slots)
        noted = False
        try:
            self._wait_permit(task)
            async with self._jobs:
                if self.stopping:
                    raise Interrupted("interrupted before submitting")
                try:
                    remote_id = await self._submit(task, key, req, files, rate, submit_lock,
                                                   claim)
                except SubmitUncertain as err:
                    if claims is not None and claim is not None:
                        noted = True   # others must not pay again blindly either
                        await claims.note_task(claim, "", identity, uncertain=str(err))
                    raise
                if claims is not None and claim is not None:
                    noted = True
                    claims.note_task_soon(claim, remote_id, identity)
                return await self._wait(task, key, remote_id, req)
        except (TaskFailed, _ClaimLost):
            raise
        except Exception:
            if claims is not None and claim is not None and not noted:
                await claims.release(claim, "stopped before submitting")
            raise
        finally:
            slots.release()

    async def _adopt(self, task: GenTask, key: str, claim: Claim,
                     adopt: ProviderTask) -> str | None:
        """Take over the provider task of the runner whose claim went stale: journal it
        here first (as if this run had submitted it), then name it beside our claim.
        None when it cannot be adopted and a new submit is the way on."""
        claims = self.claims
        assert claims is not None
        identity = self.backend.identity
        if adopt.uncertain is not None and task.id not in self.options.resubmit:
            await claims.note_task(claim, "", identity, uncertain=adopt.uncertain)
            raise SubmitUncertain(
                f"the runner that held {task.id} never learned whether its submit created a "
                f"task ({adopt.uncertain}); it may be running and billed. Check the "
                "provider's task list (or the console); to pay for it again, run: "
                f"{self.options.resubmit_command(task.id)}", code="SubmitUncertain")
        if adopt.uncertain is not None or adopt.backend != identity:
            return None
        if adopt.age >= models.TASK_TTL_SECONDS:
            self.report(Event.NOTICE, message=f"{task.id}: the task {adopt.remote_id} of the "
                        "runner that held it is too old to fetch; submitting it again")
            return None
        self.journal.record_submit(key, task.id, identity, adopt.remote_id, None,
                                   time.time() - adopt.age)
        await claims.note_task(claim, adopt.remote_id, identity)
        self.report(Event.REATTACH, task=task.id, remote_id=adopt.remote_id, state="adopted")
        return adopt.remote_id

    async def _reconcile(self, task: GenTask, key: str, entry, req: GenRequest) -> bool:
        """A run died while submitting: find out whether the provider created the task.

        Lists the model's tasks around the moment of the submit. None that wanflow has not
        journaled: the submit never landed, so submitting again is safe. Exactly one, and
        only one submit of this model was in doubt: that is ours, adopt it. Otherwise a
        person has to decide (--resubmit-uncertain).
        """
        if not self.backend.paid:
            return False
        doubt = (f"an earlier run was killed while submitting {task.id}; the provider may "
                 "have created (and be billing) a task wanflow has no id for")
        start = models.provider_time(entry.submitted_at - 300)
        end = models.provider_time(entry.submitted_at + 300)
        try:
            listed = await self.backend.list_tasks(model_name=req.model, start_time=start,
                                                   end_time=end, page_size=100)
        except BackendError as err:
            raise SubmitUncertain(f"{doubt}, and listing tasks to check failed: {err}",
                                  code="SubmitUncertain") from None
        if listed is None:
            raise SubmitUncertain(doubt, code="SubmitUncertain")
        identity = self.backend.identity
        journaled = {e.remote_id for e in self.journal.entries(backend=identity)}
        listed_ids = [t.get("task_id") for t in listed]
        candidates = [i for i in listed_ids if isinstance(i, str) and i not in journaled]
        in_doubt = [e for e in self.journal.entries(backend=identity, states=("submitting",))
                    if self.task_models(e.task) == req.model]
        if not candidates:
            self.report(Event.NOTICE, message=f"{task.id}: the interrupted submit never "
                        "reached the provider; submitting it now")
            return False
        if len(candidates) == 1 and len(in_doubt) == 1:
            self.journal.record_submit(key, task.id, identity, candidates[0], None,
                                       entry.submitted_at)
            self.report(Event.NOTICE, message=f"{task.id}: adopted {candidates[0]}, created "
                        "by the interrupted submit")
            return True
        raise SubmitUncertain(f"{doubt}; unjournaled tasks of {req.model} from that time: "
                              f"{', '.join(map(str, candidates[:5]))}. Check them; to pay for "
                              f"it again, run: {self.options.resubmit_command(task.id)}",
                              code="SubmitUncertain")

    async def _submit(self, task: GenTask, key: str, req: GenRequest, files: dict[str, str],
                      rate: Pacer, lock: asyncio.Lock, claim: Claim | None = None) -> str:
        attempt = 0
        identity = self.backend.identity
        claims = self.claims
        while True:
            held = False

            async def before_send() -> None:
                # Called by the backend after uploads, right before the POST: take the
                # model's submit slot and rate token, make sure no other runner took the
                # key over meanwhile, then journal the intent, so a kill during the
                # request leaves a trace to reconcile.
                nonlocal held
                await lock.acquire()
                held = True
                await rate.acquire()
                if claims is not None and claim is not None and \
                        not await claims.still_held(claim):
                    raise _ClaimLost()
                self.journal.record_intent(key, task.id, identity)

            delay = None
            try:
                submitted = await self.backend.submit(req, files, before_send=before_send)
                self.journal.record_submit(key, task.id, identity, submitted.remote_id,
                                           submitted.request_id)
            except SubmitUncertain as err:
                self.journal.record_uncertain(key, task.id, identity, str(err))
                raise
            except BackendError as err:
                self.journal.forget(key)  # the provider refused it: definitely not created
                # A 429 never creates a task, so it is waited out for as long as the run
                # goes on (runners sharing one account share its quota this way); other
                # refusals have a budget of attempts.
                spent = attempt >= self.options.submit_retries and not isinstance(err, RateLimited)
                if not err.retryable or spent or self.stopping:
                    raise
                delay = err.retry_after if err.retry_after else backoff(
                    attempt, self.options.backoff_base, self.options.backoff_cap)
                attempt += 1
                self.report(Event.RETRY, task=task.id, why=str(err), delay=round(delay, 2))
            finally:
                if held:
                    lock.release()
            if delay is not None:   # back off without holding the model's submit slot
                await asyncio.sleep(delay)
                continue
            # Journaled before the first poll: a killed run resumes this id, never resubmits.
            self.report(Event.SUBMITTED, task=task.id, remote_id=submitted.remote_id,
                        expected=self._expected(req))
            return submitted.remote_id

    def _expected(self, req: GenRequest) -> float | None:
        """Seconds from submit to success the backend expects (for the time left shown)."""
        expected = self.backend.expected_seconds(req)
        return None if expected is None else round(expected, 1)

    def _wait_permit(self, task: GenTask) -> None:
        """Say so when the task is about to wait for a run-wide permit (--jobs)."""
        if self._jobs.locked():
            self.report(Event.STATE, task=task.id, state=WAITING)

    async def _take_slot(self, task: GenTask, model: str, slots: asyncio.Semaphore) -> None:
        """Wait for one of the model's slots, counted so that pollers know work is queued."""
        if slots.locked():
            self.report(Event.STATE, task=task.id, state=WAITING)
        self._queued[model] = self._queued.get(model, 0) + 1
        try:
            await slots.acquire()
        finally:
            self._queued[model] -= 1

    async def _wait(self, task: GenTask, key: str, remote_id: str, req: GenRequest,
                    elapsed: float = 0.0) -> Finished:
        self.polling[task.id] = (key, remote_id)
        model = req.model

        def on_status(status: str) -> None:
            if status == "RUNNING":
                self.report(Event.STATE, task=task.id, state=RUNNING)

        try:
            finished = await self.backend.wait(
                remote_id, req, elapsed=elapsed,
                urgent=lambda: self._queued.get(model, 0) > 0, on_status=on_status)
        finally:
            self.polling.pop(task.id, None)
        self.journal.mark_finished(key, finished.to_dict())
        return finished

    async def cancel_pending(self, polling: dict[TaskId, tuple[str, str]]) -> None:
        """On abort: cancel remote tasks still queued (unbilled); the rest stay journaled."""
        for tid, (key, remote_id) in polling.items():
            try:
                if await self.backend.cancel(remote_id):
                    self.journal.mark_failed(key, "canceled on abort")
                    self.report(Event.CANCELED, task=tid, remote_id=remote_id)
            except WanflowError:
                pass


def _since(epoch: float) -> float:
    return round(max(0.0, time.time() - epoch), 3)
