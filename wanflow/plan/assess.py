"""Why each task would run: compare a plan with the store, the lock file and the journal.

Walks the plan one topological generation at a time, so the keys of tasks downstream of
cached work are known and looked up in one batch per generation. The answer for each task
is a `TaskState` with a reason, like ninja's `-d explain`.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import keys
from .planner import Output, Plan, Task

CACHED, RUN, IN_FLIGHT = "cached", "run", "in-flight"


@dataclass(frozen=True)
class TaskState:
    task: str
    status: str                 # cached | run | in-flight
    reason: str                 # why it runs (or "cached")
    key: str | None = None      # None while an upstream output is unknown
    output: Output | None = None
    billed_seconds: float = 0.0
    cost: float = 0.0               # what this run would pay (0 on a free backend)
    list_cost: float = 0.0          # what the generation costs on the paid API
    remote_id: str | None = None


def assess(plan: Plan, store, lock: dict, journal=None, asset_digests: dict | None = None,
           paid: bool = True) -> dict[str, TaskState]:
    """TaskState for every task in `plan`. Reads the store and journal; writes nothing."""
    asset_digests = asset_digests or {}
    outputs: dict[str, Output] = {}
    states: dict[str, TaskState] = {}
    live = journal.live(plan.backend) if journal is not None else {}

    for generation in plan.generations():
        wanted: dict[str, str] = {}
        for tid in generation:
            task = plan.tasks[tid]
            if task.kind == "asset" and task.asset.is_local:
                digest = asset_digests.get(task.asset.name)
                if digest is not None:
                    outputs[tid] = Output(digest, plan.output_mime(task))
            if task.kind == "asset" and task.asset.url and tid in lock:
                outputs[tid] = Output(lock[tid].output, plan.output_mime(task))
            key = plan.key(task, outputs)
            if key is not None:
                wanted[tid] = key
        found = store.get_results(list(wanted.values())) if wanted else {}
        for tid in generation:
            task = plan.tasks[tid]
            key = wanted.get(tid)
            result = found.get(key) if key else None
            if task.kind == "asset" and task.asset.is_local and tid in outputs:
                present = store.has(outputs[tid].digest)
                states[tid] = TaskState(tid, CACHED if present else RUN,
                                        "cached" if present else "new input", key, outputs[tid])
                continue
            if result is not None and store.has(result.digest):
                out = Output(result.digest, plan.output_mime(task), result.meta.get("duration"))
                outputs[tid] = out
                states[tid] = TaskState(tid, CACHED, "cached", key, out)
                continue
            seconds, price = plan.estimate(task)
            list_cost = seconds * price if price else 0.0
            cost = list_cost if paid else 0.0
            if key is not None and key in live:
                entry = live[key]
                states[tid] = TaskState(tid, IN_FLIGHT, f"in flight as {entry.remote_id}", key,
                                        billed_seconds=seconds, cost=0.0,
                                        remote_id=entry.remote_id)
                continue
            reason = _reason(plan, task, key, result, lock.get(tid), store, states)
            states[tid] = TaskState(tid, RUN, reason, key, billed_seconds=seconds, cost=cost,
                                    list_cost=list_cost)
    return states


def _reason(plan, task: Task, key, result, entry, store, states) -> str:
    if key is None:
        if entry is None:
            return "new"
        changed = [d for d in task.deps if d in states and states[d].status != CACHED]
        return "upstream changed: " + ", ".join(changed[:3]) if changed else "upstream pending"
    if result is not None:
        return "output missing from the store"
    if entry is None:
        return "new"
    if entry.key == key:
        return "output missing from the store"
    old = store.get_result(entry.key)
    new = plan.material(task, {t: s.output for t, s in states.items() if s.output})
    if old is None or "material" not in old.meta or new is None:
        return "request changed"
    fields = keys.diff(old.meta["material"], new)
    inputs = [f for f in fields if _is_input(old.meta["material"], new, f)]
    if inputs and len(inputs) == len(fields):
        return "input changed: " + ", ".join(inputs[:3])
    return "request changed: " + ", ".join(fields[:3])


def _is_input(old: dict, new: dict, path: str) -> bool:
    """Whether a changed field holds a content hash (an input medium), not a setting."""
    leaf = path.split(".")[-1]
    return leaf in ("clips", "clip", "digest", "audio") or "url" in leaf or "media" in path \
        or path.startswith("clips")
