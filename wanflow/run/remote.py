"""The team's remote tier as commands use it: read-through, write-through, push and pull.

* `RemoteResults` is what the assessment reads: records of many keys in one batch, so that
  `plan` and `status` say which tasks the remote has ("remote" beside "cached" and "run").
* `RemoteTier` is what a run uses: a task whose result is on the remote is downloaded
  (digest verified) instead of made; every task the run finishes is uploaded, object then
  record, on the tier's own concurrency (never holding a model's generation slot); its
  `claims` let a fleet of runners pay once per key (`wanflow.store.claims`).
* `push_pinned` uploads what a spec's lock files pin.

A remote that cannot be reached is reported and worked around: the run goes on from the
local cache, except that claims, which keep a fleet from paying twice, are not given up.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, TypeVar

from ..errors import RemoteError, UsageError
from ..plan.assess import REMOTE, StoredResult, TaskState
from ..plan.prepare import Prepared
from ..plan.tasks import AssetTask, Task
from ..settings import Settings
from ..store import Result, Store, lockfile
from .events import Event

if TYPE_CHECKING:
    from ..store.claims import Claims
    from ..store.remote import RemoteStore

T = TypeVar("T")
TRANSFERS = 8         # objects moving to or from the remote at once
_SHOWN_REFUSED = 5    # refused records named one by one; the rest are counted


def open_remote(settings: Settings) -> RemoteStore | None:
    """The remote the settings name (flag, environment or user config file), if any."""
    if not settings.remote:
        return None
    from ..store.remote import RemoteStore  # obstore loads only when a remote is used

    return RemoteStore.open(settings.remote, endpoint=settings.remote_endpoint,
                            anonymous=settings.remote_anonymous)


def make_claims(remote: RemoteStore, settings: Settings, notice: Callable[[str], None]
                ) -> Claims | None:
    """Claims on `remote`, unless they are turned off or the remote is read-only."""
    if not settings.remote_claims or not remote.writable:
        return None
    from ..store.claims import Claims

    return Claims(remote, heartbeat=settings.claim_heartbeat, stale=settings.claim_stale,
                  notice=notice)


def run_sync(coro: Coroutine[object, object, T]) -> T:
    """Run a coroutine to completion from synchronous code (on a thread of its own when
    the caller already runs an event loop, as a notebook does)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro)).result()


class RemoteResults:
    """The remote's result records for the assessment: many keys per call, each
    validated; refused ones are reported and treated as absent."""

    def __init__(self, remote: RemoteStore, notice: Callable[[str], None]):
        self.remote = remote
        self.notice = notice
        self.checked: set[str] = set()   # keys looked up (the run need not look again)
        self.reachable = True

    def get_results(self, keys: list[str]) -> dict[str, Result]:
        if not keys or not self.reachable:
            return {}
        try:
            found, refused = run_sync(self.remote.get_results(keys))
        except RemoteError as err:
            self.reachable = False
            self.notice(f"{err}; going on without it")
            return {}
        self.checked.update(keys)
        report_refused(refused, self.notice)
        return found


def report_refused(refused: dict[str, str], notice: Callable[[str], None]) -> None:
    for key, why in list(refused.items())[:_SHOWN_REFUSED]:
        notice(f"the remote's record for key {key[:12]}… is not valid ({why}); ignored: "
               "the task runs here and replaces it")
    if len(refused) > _SHOWN_REFUSED:
        notice(f"… and {len(refused) - _SHOWN_REFUSED} more invalid records on the remote")


class RemoteTier:
    """The remote, for one run: downloads instead of work, uploads after it, and claims."""

    def __init__(self, remote: RemoteStore, store: Store, report, *,
                 claims: Claims | None = None, checked: Iterable[str] = (),
                 transfers: int = TRANSFERS):
        self.remote = remote
        self.store = store
        self.report = report
        self.claims = claims
        self.checked = set(checked)
        self.downloaded = 0
        self.uploaded = 0
        self.corrupt: set[str] = set()   # digests found corrupt there: replaced on upload
        self._fetched: set[str] = set()  # keys of the results downloaded by this run
        self._transfers = transfers
        self._gate: asyncio.Semaphore | None = None
        self._uploads: set[asyncio.Task] = set()

    def _say(self, message: str) -> None:
        self.report(Event.NOTICE, message=message)

    async def start(self) -> None:
        """On the run's event loop, before any task: check, once, that the store refuses a
        second create of the same object — where it does not, claims cannot work."""
        self._gate = asyncio.Semaphore(self._transfers)
        if self.claims is not None and not await self.remote.refuses_second_create():
            self._say(f"warning: {self.remote.url} does not refuse a second create of the same "
                      "object, so runners cannot claim work there: claims are off (results "
                      "are still read from and written to it)")
            self.claims = None

    # -- read-through -------------------------------------------------------------------

    async def reuse(self, task: Task, prepared: Prepared, state: TaskState) -> Result | None:
        """The task's result from the remote, downloaded and recorded here; None when the
        remote does not have it (or has it corrupt: then the task runs and replaces it)."""
        if isinstance(task, AssetTask) and task.asset.is_local:
            return None   # the file is right here: hashing it beats downloading it
        record: StoredResult | None
        if state.status == REMOTE and state.record is not None and state.key == prepared.key:
            record = state.record
        elif prepared.key in self.checked:
            return None   # looked up when the run was assessed, moments ago
        else:
            try:
                found, why = await self.remote.get_result(prepared.key)
            except RemoteError as err:
                self._say(f"{task.id}: {err}")
                return None
            if why is not None:
                report_refused({prepared.key: why}, self._say)
            record = found
        return await self.fetch(task, record) if record is not None else None

    async def fetch(self, task: Task, record: StoredResult) -> Result | None:
        """Download `record`'s object (unless it is here already) and record it locally."""
        assert self._gate is not None, "start() first"
        objects = self.store.objects
        here = objects.has(record.digest) and await asyncio.to_thread(
            objects.verified_path, record.digest) is not None
        if not here:
            from ..store.remote import CorruptObject

            try:
                async with self._gate:
                    found = await self.remote.download(record.digest, objects, record.size)
            except CorruptObject as err:
                self.corrupt.add(record.digest)
                self._say(f"{task.id}: {err}; making it again (the good object replaces it)")
                return None
            except RemoteError as err:
                self._say(f"{task.id}: {err}; making it here instead")
                return None
            if not found:
                self._say(f"{task.id}: the remote has its record but not its object "
                          f"{record.digest[:12]}…; making it again")
                self.corrupt.add(record.digest)
                return None
        result = Result(key=record.key, task=task.id, digest=record.digest, size=record.size,
                        meta=dict(record.meta), created=time.time())
        self.store.actions.put(result)
        self.downloaded += 1
        self._fetched.add(record.key)
        return result

    def fetched(self, result: Result) -> bool:
        """Whether the run took `result` from the remote (so it is not uploaded back)."""
        return result.key in self._fetched

    # -- write-through ------------------------------------------------------------------

    def publish(self, result: Result) -> None:
        """Upload a finished task's object, then its record, in the background."""
        if not self.remote.writable:
            return
        job = asyncio.get_running_loop().create_task(self._publish(result))
        self._uploads.add(job)
        job.add_done_callback(self._uploads.discard)

    async def _publish(self, result: Result) -> None:
        assert self._gate is not None, "start() first"
        try:
            async with self._gate:
                path = self.store.objects.path(result.digest)
                if await self.remote.upload(result.digest, path,
                                            replace=result.digest in self.corrupt):
                    self.uploaded += 1
                await self.remote.put_result(result)   # after its object: never dangling
        except (RemoteError, OSError) as err:
            self._say(f"{result.task}: not uploaded to the remote: {err}")
        finally:
            if self.claims is not None:   # the record answers everyone now
                self.claims.done(result.key)

    async def finish(self) -> None:
        """Wait for the uploads, stop the heartbeats, say what moved."""
        while self._uploads:
            await asyncio.gather(*list(self._uploads), return_exceptions=True)
        if self.claims is not None:
            await self.claims.close()
        if self.downloaded or self.uploaded:
            self._say(f"remote {self.remote.url}: {self.downloaded} result(s) downloaded, "
                      f"{self.uploaded} object(s) uploaded")


# -- push -----------------------------------------------------------------------------------

def push_pinned(remote: RemoteStore, store: Store, lock_paths: Iterable[str]) -> dict:
    """Upload to `remote` every object and result record that the lock files pin.

    Returns {"entries", "uploaded", "present", "missing": [{"task", "lock", "why"}]}:
    objects sent, objects the remote had already, and entries that could not be pushed."""
    if not remote.writable:
        raise UsageError(f"the remote {remote.url} is read anonymously: push needs "
                         "credentials that may write to it")
    pinned = [(os.path.basename(path), entry) for path in lock_paths
              for entry in lockfile.read(path).values()]
    return run_sync(_push(remote, store, pinned))


async def _push(remote: RemoteStore, store: Store,
                pinned: list[tuple[str, lockfile.LockEntry]]) -> dict:
    gate = asyncio.Semaphore(TRANSFERS)
    uploaded, present, missing = [0], [0], []

    async def one(lock: str, entry: lockfile.LockEntry) -> None:
        record = store.get_result(entry.key)
        if record is None or record.digest != entry.output:
            missing.append({"task": entry.task, "lock": lock,
                            "why": "no result record for it in the local cache"})
            return
        path = await asyncio.to_thread(store.objects.verified_path, entry.output)
        if path is None:
            missing.append({"task": entry.task, "lock": lock,
                            "why": "its output is missing or corrupt in the local cache"})
            return
        async with gate:
            if await remote.upload(entry.output, path):
                uploaded[0] += 1
            else:
                present[0] += 1
            await remote.put_result(record)

    await asyncio.gather(*(one(lock, entry) for lock, entry in pinned))
    return {"entries": len(pinned), "uploaded": uploaded[0], "present": present[0],
            "missing": sorted(missing, key=lambda m: (m["lock"], m["task"]))}
