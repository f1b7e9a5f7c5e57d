"""Why each task would run: compare a plan with stored results, the lock file and the journal.

Walks the plan one dependency level at a time, so the keys of tasks downstream of cached
work are known and looked up in one batch per level. The answer for each task is a
`TaskState` with a reason, like ninja's `-d explain`, and — where its inputs are known —
the task made concrete (`Prepared`), which the executor then uses as it is.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .. import models
from . import cost, keys
from .cost import Pricing
from .planner import Plan
from .prepare import Prepared
from .tasks import AssetTask, GenTask, Output, Task, TaskId

CACHED, REMOTE, RUN, IN_FLIGHT = "cached", "remote", "run", "in-flight"


# The protocols name what the assessment reads; properties, so that frozen dataclasses
# (the store's records, journal and lock entries) satisfy them.

class StoredResult(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def meta(self) -> Mapping[str, Any]: ...   # provenance (JSON)


class ResultReader(Protocol):
    """What the assessment reads from the store (results by key, object presence)."""

    def get_results(self, keys: list[str]) -> Mapping[str, StoredResult]: ...
    def get_result(self, key: str) -> StoredResult | None: ...
    def has(self, digest: str) -> bool: ...


class RemoteReader(Protocol):
    """A further tier (a team's remote store): results by key, many at once."""

    def get_results(self, keys: list[str]) -> Mapping[str, StoredResult]: ...


class LiveTask(Protocol):
    @property
    def remote_id(self) -> str: ...


class LockRecord(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def output(self) -> str: ...


@dataclass(frozen=True)
class TaskState:
    task: TaskId
    status: str                 # cached | remote | run | in-flight
    reason: str                 # why it runs (or "cached")
    prepared: Prepared | None = None   # None while an upstream output is unknown
    output: Output | None = None
    billed_seconds: float = 0.0
    up_to: bool = False         # billed_seconds is a ceiling: the model chooses the length
    price: float | None = None  # per billed second on the paid API (None: unknown)
    cost: float = 0.0           # what this run would pay (0 on a free backend)
    list_cost: float = 0.0      # what the generation costs on the paid API
    remote_id: str | None = None
    record: StoredResult | None = None   # the stored result of a cached or remote task

    @property
    def key(self) -> str | None:
        return self.prepared.key if self.prepared else None

    @property
    def priced(self) -> bool:
        """Whether its cost is known (work that is not a generation costs nothing)."""
        return self.price is not None or self.task.kind != "gen"


def assess(plan: Plan, store: ResultReader, lock: Mapping[str, LockRecord],
           live: Mapping[str, LiveTask] | None = None,
           asset_digests: Mapping[str, str] | None = None,
           paid: bool = True, pricing: Pricing | None = None,
           asset_seconds: Mapping[str, float] | None = None,
           remote: RemoteReader | None = None) -> dict[TaskId, TaskState]:
    """TaskState for every task in `plan`. Reads results through `store`, and — for the
    keys whose output is not stored here — through `remote`; writes nothing.

    `asset_seconds` gives the length of media assets (reference videos are billed)."""
    asset_digests = asset_digests or {}
    asset_seconds = asset_seconds or {}
    live = live or {}
    pricing = pricing or Pricing.for_region(None)
    clip_seconds = {t.shot.qid: float(_model(t).longest_clip(t.shot.duration))
                    for t in plan.gen_tasks()}
    chosen = {t.shot.qid for t in plan.gen_tasks()
              if _model(t).clip_seconds(t.shot.duration, 0.0) is None}
    outputs: dict[TaskId, Output] = {}
    states: dict[TaskId, TaskState] = {}

    for level in plan.levels():
        prepared: dict[TaskId, Prepared] = {}
        for tid in level:
            task = plan.tasks[tid]
            if isinstance(task, AssetTask):
                known = _asset_output(task, asset_digests, asset_seconds, lock)
                if known is not None:
                    outputs[tid] = known
            p = plan.prepare(task, outputs)
            if p is not None:
                prepared[tid] = p
        found = store.get_results([p.key for p in prepared.values()]) if prepared else {}
        far: Mapping[str, StoredResult] = {}
        if remote is not None:
            # One batch per level; downstream keys then follow the remote outputs' digests.
            far = remote.get_results([p.key for tid, p in prepared.items()
                                      if not _stored(found.get(p.key), store)
                                      and not _local_asset(plan.tasks[tid])])
        for tid in level:
            task = plan.tasks[tid]
            p = prepared.get(tid)
            result = found.get(p.key) if p else None
            if isinstance(task, AssetTask) and task.asset.is_local and tid in outputs:
                present = store.has(outputs[tid].digest)
                states[tid] = TaskState(tid, CACHED if present else RUN,
                                        "cached" if present else "new input", p, outputs[tid],
                                        record=result if present else None)
                continue
            if result is not None and store.has(result.digest):
                out = Output(result.digest, task.output_mime, result.meta.get("duration"),
                             _url_of(task))
                outputs[tid] = out
                states[tid] = TaskState(tid, CACHED, "cached", p, out, record=result)
                continue
            if p is not None and p.key in far:
                result = far[p.key]
                out = Output(result.digest, task.output_mime, result.meta.get("duration"),
                             _url_of(task))
                outputs[tid] = out
                states[tid] = TaskState(tid, REMOTE, "on the remote", p, out, record=result)
                continue
            seconds, price, up_to = 0.0, None, False
            if isinstance(task, GenTask):
                seconds = p.billed_seconds if p else cost.billed_seconds(
                    task, outputs, plan.picks, clip_seconds)
                price = pricing.per_second(task.shot.model, *cost.tier_of(task))
                up_to = cost.upper_bound(task, outputs, plan.picks, chosen)
            list_cost = seconds * price if price is not None else 0.0
            if p is not None and p.key in live:
                remote_id = live[p.key].remote_id
                states[tid] = TaskState(tid, IN_FLIGHT, f"in flight as {remote_id}", p,
                                        billed_seconds=seconds, up_to=up_to, price=price,
                                        remote_id=remote_id)
                continue
            reason = _reason(plan, task, p, result, lock.get(tid), store, states)
            states[tid] = TaskState(tid, RUN, reason, p, billed_seconds=seconds, up_to=up_to,
                                    price=price, cost=list_cost if paid else 0.0,
                                    list_cost=list_cost)
    return states


def _asset_output(task: AssetTask, digests: Mapping[str, str], seconds: Mapping[str, float],
                  lock: Mapping[str, LockRecord]) -> Output | None:
    name = task.asset.name
    if task.asset.is_local:
        digest = digests.get(name)
        return (Output(digest, task.output_mime, seconds.get(name))
                if digest is not None else None)
    entry = lock.get(task.id)   # a URL asset is pinned by the digest it had when fetched
    return (Output(entry.output, task.output_mime, seconds.get(name), url=task.asset.url)
            if entry else None)


def _stored(result: StoredResult | None, store: ResultReader) -> bool:
    return result is not None and store.has(result.digest)


def _local_asset(task: Task) -> bool:
    return isinstance(task, AssetTask) and task.asset.is_local


def _model(task: GenTask) -> models.Model:
    info = models.lookup(task.shot.model)
    assert info is not None   # the checker refuses unknown models
    return info


def _url_of(task: Task) -> str | None:
    return task.asset.url if isinstance(task, AssetTask) else None


def _reason(plan: Plan, task: Task, p: Prepared | None, result: StoredResult | None,
            entry: LockRecord | None, store: ResultReader,
            states: dict[TaskId, TaskState]) -> str:
    if p is None:
        if entry is None:
            return "new"
        changed = [d for d in task.deps if d in states and states[d].status != CACHED]
        return "upstream changed: " + ", ".join(changed[:3]) if changed else "upstream pending"
    if result is not None:
        return "output missing from the store"
    if entry is None:
        return "new"
    if entry.key == p.key:
        return "output missing from the store"
    old = store.get_result(entry.key)
    if old is None or "material" not in old.meta:
        return "request changed"
    fields = keys.diff(old.meta["material"], p.material)
    inputs = [f for f in fields if _is_input(f)]
    if inputs and len(inputs) == len(fields):
        return "input changed: " + ", ".join(inputs[:3])
    return "request changed: " + ", ".join(fields[:3])


def _is_input(path: str) -> bool:
    """Whether a changed field holds a content hash (an input medium), not a setting."""
    leaf = path.split(".")[-1]
    return leaf in ("clips", "clip", "digest", "audio") or "url" in leaf or "media" in path \
        or path.startswith("clips")
