"""Claims: a fleet of runners sharing a remote pays once per key.

Built only on create-if-absent writes, which S3, GCS, Azure and local files all honour
(conditional *updates* are not available everywhere). Under the remote's
`claims/<key>/`::

    <n>           generation n of the claim (n from 1), naming the runner that holds it
    <n>.task      the provider task it submitted: created once, as soon as it is known
    <n>.beat      its heartbeat, overwritten every `heartbeat` seconds while it holds n
    <n>.released  it gave up (its task failed, or it stopped before submitting)

Of runners racing to create the same generation exactly one succeeds. A claim is stale
when its newest object is older than `stale` seconds by the store's own Last-Modified
clock — runners' clocks are never compared. Whoever creates the next generation of a stale
or released claim holds the key; if the stale generation names a provider task, the new
holder adopts that task (polls and downloads it) instead of paying for another.

Everything read here is untrusted: names are parsed strictly, and a provider task id is
used only if it looks like one.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Interrupted, RemoteError
from .actions import Result
from .remote import RemoteStore

_NAME = re.compile(r"(?P<n>[1-9][0-9]{0,17})(?:\.(?P<part>task|beat|released))?\Z")
_PROVIDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_SMALL = 4096          # bytes: a claim's objects are tiny; anything larger is refused
FIRST_WAIT = 0.25      # seconds before looking again at a key another runner holds
BEATS = 16             # heartbeats written at once
LOOKS = 8              # keys held by others that one runner looks at at once
LOOK_ATTEMPTS = 5      # remote errors in a row before waiting for a key gives up


@dataclass(frozen=True)
class Runner:
    """Who holds a claim: host, process and a random part (a restarted process is another
    runner, even with the same pid)."""

    id: str

    @classmethod
    def here(cls) -> Runner:
        host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64] or "host"
        return cls(f"{host}:{os.getpid()}:{secrets.token_hex(4)}")


@dataclass(frozen=True)
class Claim:
    key: str
    generation: int


@dataclass(frozen=True)
class ProviderTask:
    """The provider task a claim names. `age` is by the store's clock."""

    remote_id: str
    backend: str
    age: float
    uncertain: str | None = None   # a submit whose outcome was unknown: there is no id


@dataclass(frozen=True)
class Settled:
    """How waiting for a key ended: its result is on the remote, or we hold its claim
    (adopting the provider task of a stale predecessor when there is one)."""

    record: Result | None = None
    claim: Claim | None = None
    adopt: ProviderTask | None = None


@dataclass
class _Wait:
    """How far waiting for a key that another runner holds has got."""

    generation: int = 0        # the generation waited for (0: not waiting)
    look_again: float = 0.0    # monotonic time of the next look at the claim
    delay: float = FIRST_WAIT  # before the next look at the result
    failures: int = 0          # remote errors in a row


@dataclass(frozen=True)
class _Standing:
    """What the remote says about a key's claims right now."""

    generation: int            # the newest generation (0: never claimed)
    released: bool
    task_time: float | None    # when its provider task was recorded, if it was
    active: float              # newest Last-Modified of the generation's objects

    @property
    def free(self) -> bool:
        return self.generation == 0 or self.released


class Claims:
    """The claims of one runner on one remote. Heartbeats run on the event loop of the
    run that holds the claims; `close` stops them."""

    def __init__(self, remote: RemoteStore, runner: Runner | None = None, *,
                 heartbeat: float = 30.0, stale: float = 120.0,
                 notice: Callable[[str], None] | None = None):
        if not 0 < heartbeat < stale:
            raise ValueError("a claim's heartbeat must be shorter than its staleness")
        self.remote = remote
        self.runner = runner or Runner.here()
        self.heartbeat = heartbeat
        self.stale = stale
        self._notice = notice or (lambda message: None)
        self._held: dict[str, Claim] = {}
        self._confirmed: dict[str, float] = {}   # key -> when our last write to it began
        self._doubtful: set[str] = set()         # keys whose writes once landed late
        self._beating: dict[str, asyncio.Task[None]] = {}
        self._notes: set[asyncio.Task[None]] = set()   # task ids being written beside claims
        self._beats: asyncio.Task[None] | None = None
        self._looks: asyncio.Semaphore | None = None   # made on the run's event loop
        self._clock_lock: asyncio.Lock | None = None
        self._clock: tuple[float, float] | None = None   # (store time, monotonic) read

    # -- taking a key -----------------------------------------------------------------------

    async def settle(self, key: str, task: str, *, use_result: bool = True,
                     stop: Callable[[], bool] = lambda: False) -> Settled:
        """Wait until this runner may generate `key`, or until its result is on the
        remote. While another runner holds a live claim, poll the remote for the result
        with back-off, and look at the claim itself once per heartbeat (it cannot go
        stale faster than that)."""
        wait = _Wait()
        while True:
            try:
                if wait.generation:   # a runner waiting on many keys looks at a few at once
                    self._looks = self._looks or asyncio.Semaphore(LOOKS)
                    async with self._looks:
                        settled = await self._look(key, task, use_result, wait)
                else:
                    settled = await self._look(key, task, use_result, wait)
                wait.failures = 0
            except RemoteError as err:
                # Safe to look again: a create that landed unseen is our own claim, which
                # we take over once it is stale. Too many failures in a row: give up.
                wait.failures += 1
                if wait.failures >= LOOK_ATTEMPTS:
                    raise
                self._notice(f"{task}: {err}; trying again")
                await asyncio.sleep(wait.delay * random.uniform(0.5, 1.0))
                wait.delay = min(wait.delay * 2, self.heartbeat)
                continue
            if settled is not None:
                return settled
            if not wait.generation:
                continue   # another runner created it first: look again at once
            if stop():
                raise Interrupted(f"{task}: stopped while another runner generates it")
            # Jittered, so that the many keys a runner waits for are not looked at in bursts.
            await asyncio.sleep(wait.delay * random.uniform(0.5, 1.0))
            wait.delay = min(wait.delay * 2, self.heartbeat)

    async def _look(self, key: str, task: str, use_result: bool,
                    wait: _Wait) -> Settled | None:
        """One look at a key: its result, and (at most once per heartbeat) its claim."""
        if use_result:
            record, _ = await self.remote.get_result(key)
            if record is not None:
                return Settled(record=record)
        if time.monotonic() < wait.look_again:
            return None
        standing = await self._standing(key)
        if standing.free or await self._stale(standing):
            wait.generation = 0
            return await self._take(key, task, standing)
        if wait.generation != standing.generation:
            wait.generation = standing.generation
            holder = await self._holder(key, standing.generation)
            self._notice(f"{task}: {holder} is generating it; waiting for its result")
        wait.look_again = time.monotonic() + self.heartbeat
        return None

    async def _take(self, key: str, task: str, standing: _Standing) -> Settled | None:
        """Create the next generation of a free or stale claim; None if another runner
        created it first."""
        claim = await self._create(key, standing.generation + 1, task)
        if claim is None:
            return None
        if standing.free:
            return Settled(claim=claim)
        holder = await self._holder(key, standing.generation)
        self._notice(f"{task}: took over the claim of {holder}, silent for more than "
                     f"{self.stale:g} s")
        return Settled(claim=claim, adopt=await self._provider_task(key, standing))

    async def still_held(self, claim: Claim) -> bool:
        """Whether nobody took the claim over; asked right before paying.

        Another runner judges the claim by the Last-Modified of our newest write it can
        see, which the store stamps no earlier than the write began and shows once it
        has completed. So while each write of ours completed less than half the
        staleness after the previous one began, and the newest began less than half the
        staleness ago, nobody can have seen the claim stale: no need to look. Otherwise
        (a slow or failing store) the remote is asked."""
        began = self._confirmed.get(claim.key)
        if (began is not None and claim.key not in self._doubtful
                and time.monotonic() - began < self.stale / 2):
            return True
        standing = await self._standing(claim.key)
        return standing.generation == claim.generation and not standing.released

    # -- while holding it -------------------------------------------------------------------

    async def note_task(self, claim: Claim, remote_id: str, backend: str, *,
                        uncertain: str | None = None) -> None:
        """Record beside the claim the provider task it paid for, so that another runner
        can adopt it if this one dies (or, when the submit's outcome is unknown, knows
        not to pay again blindly)."""
        body = {"remote_id": remote_id, "backend": backend, "uncertain": uncertain,
                "runner": self.runner.id}
        try:
            await self.remote.create(f"{_prefix(claim)}.task", _json(body))
        except RemoteError as err:
            self._notice(f"could not record task {remote_id} beside its claim: {err}")

    def note_task_soon(self, claim: Claim, remote_id: str, backend: str) -> None:
        """`note_task` without waiting for it: the provider is already generating, and
        the write need not hold the model's slot meanwhile."""
        job = asyncio.get_running_loop().create_task(self.note_task(claim, remote_id,
                                                                    backend))
        self._notes.add(job)
        job.add_done_callback(self._notes.discard)

    async def release(self, claim: Claim, why: str) -> None:
        """Give the key up so that another runner may try (our task failed, or we
        stopped before submitting)."""
        self._held.pop(claim.key, None)
        try:
            await self.remote.create(f"{_prefix(claim)}.released",
                                     _json({"runner": self.runner.id, "why": why[:500]}))
        except RemoteError as err:
            self._notice(f"could not release the claim on {claim.key[:12]}…: {err}")

    def done(self, key: str) -> None:
        """Stop heartbeating a claim whose result is on the remote (the record now
        answers everyone; the claim is left to go stale)."""
        self._held.pop(key, None)

    async def close(self) -> None:
        if self._notes:
            await asyncio.gather(*list(self._notes), return_exceptions=True)
        self._held.clear()
        jobs = [*self._beating.values(), *([self._beats] if self._beats else [])]
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        self._beating.clear()
        self._beats = None

    # -- the remote's view ------------------------------------------------------------------

    async def _create(self, key: str, generation: int, task: str) -> Claim | None:
        claim = Claim(key, generation)
        body = {"runner": self.runner.id, "task": task}
        began = time.monotonic()
        if not await self.remote.create(_prefix(claim), _json(body)):
            return None
        self._held[key] = claim
        self._confirmed[key] = began
        if self._beats is None or self._beats.done():
            self._beats = asyncio.get_running_loop().create_task(self._beat_forever())
        return claim

    async def _standing(self, key: str) -> _Standing:
        names = await self.remote.listing(f"claims/{key}")
        generations: dict[int, dict[str, float]] = {}
        for name, (_, modified) in names.items():
            m = _NAME.match(name)
            if m:
                parts = generations.setdefault(int(m.group("n")), {})
                parts[m.group("part") or "claim"] = modified
        claimed = [n for n, parts in generations.items() if "claim" in parts]
        if not claimed:
            return _Standing(0, False, None, 0.0)
        newest = max(claimed)
        parts = generations[newest]
        return _Standing(newest, "released" in parts, parts.get("task"),
                         max(t for part, t in parts.items() if part != "released"))

    async def _stale(self, standing: _Standing) -> bool:
        return await self._now() - standing.active > self.stale

    async def _now(self) -> float:
        """The store's time, read at most once per heartbeat and carried forward by this
        machine's monotonic clock in between (an interval, never a date, of our own: the
        reading is dated by when its answer arrived, so the estimate errs young)."""
        self._clock_lock = self._clock_lock or asyncio.Lock()
        async with self._clock_lock:
            if self._clock is None or time.monotonic() - self._clock[1] >= self.heartbeat:
                self._clock = (await self.remote.now(), time.monotonic())
        store_time, read_at = self._clock
        return store_time + (time.monotonic() - read_at)

    async def _holder(self, key: str, generation: int) -> str:
        body = await self._read_json(f"claims/{key}/{generation}")
        runner = body.get("runner") if body else None
        if isinstance(runner, str) and 0 < len(runner) <= 200:
            return f"runner {runner}"
        return "another runner"

    async def _provider_task(self, key: str, standing: _Standing) -> ProviderTask | None:
        if standing.task_time is None:
            return None
        body = await self._read_json(f"claims/{key}/{standing.generation}.task")
        if body is None:
            return None
        remote_id, backend = body.get("remote_id"), body.get("backend")
        uncertain = body.get("uncertain")
        if not (isinstance(backend, str) and len(backend) <= 100):
            return None
        if isinstance(uncertain, str):
            return ProviderTask("", backend, 0.0, uncertain[:500])
        if not (isinstance(remote_id, str) and _PROVIDER_ID.match(remote_id)):
            self._notice(f"the claim on {key[:12]}… names a malformed provider task; "
                         "ignored")
            return None
        age = await self._now() - standing.task_time
        return ProviderTask(remote_id, backend, max(0.0, age))

    async def _read_json(self, name: str) -> dict[str, Any] | None:
        try:
            data = await self.remote.read(name, _SMALL)
            value = json.loads(data) if data is not None else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    # -- heartbeats -------------------------------------------------------------------------

    async def _beat_forever(self) -> None:
        """Every `heartbeat` seconds, a beat for each claim held. A beat that is slow to
        land delays no other: each runs on its own, and a claim whose last beat is still
        under way skips a turn."""
        gate = asyncio.Semaphore(BEATS)
        while self._held:
            await asyncio.sleep(self.heartbeat)
            for key in [k for k, job in self._beating.items() if job.done()]:
                del self._beating[key]
            for claim in list(self._held.values()):
                if claim.key not in self._beating:
                    self._beating[claim.key] = asyncio.create_task(self._beat(claim, gate))

    async def _beat(self, claim: Claim, gate: asyncio.Semaphore) -> None:
        async with gate:
            if self._held.get(claim.key) != claim:
                return   # done or released meanwhile
            began = time.monotonic()
            try:
                await self.remote.write(f"{_prefix(claim)}.beat", self.runner.id.encode())
            except RemoteError as err:
                self._notice(f"heartbeat of the claim on {claim.key[:12]}… failed: {err}")
                return
        previous = self._confirmed.get(claim.key, began)
        if time.monotonic() - previous >= self.stale / 2:
            self._doubtful.add(claim.key)   # someone may have seen the claim stale
        self._confirmed[claim.key] = max(began, previous)


def _prefix(claim: Claim) -> str:
    return f"claims/{claim.key}/{claim.generation}"


def _json(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()
