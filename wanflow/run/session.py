"""What the commands do, over one spec: open it, plan, explain, run, report, tidy.

A `Session` owns the things with a lifecycle (store, journal, backend) for one command;
the functions below are what the CLI calls and what tests drive directly.
"""
from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass

from ..store import lockfile
from ..plan import planner
from . import project, reporters
from ..backends import choose
from ..errors import BudgetError, Interrupted, StoreError, UsageError
from .executor import Executor, RunOptions, RunSummary
from ..store.journal import Journal
from ..plan.assess import CACHED, IN_FLIGHT, assess
from ..store.objects import Store


@dataclass
class Session:
    project: project.Project
    store: Store
    journal: Journal
    backend: object
    plan: planner.Plan
    asset_digests: dict
    lock: dict

    @classmethod
    def open(cls, spec_file, *, cache=None, backend=None, base_url=None, region=None, only=(),
             notice=None, backend_options=None) -> "Session":
        proj = project.open_project(spec_file, cache)
        settings = proj.spec.settings
        name = backend or settings.backend or "auto"
        chosen = choose(name, region=region or settings.region,
                        base_url=base_url or settings.base_url, cache_dir=proj.cache_dir,
                        notice=notice, **(backend_options or {}))
        store = Store(proj.cache_dir)
        journal = Journal(os.path.join(proj.cache_dir, "journal.db"))
        plan = planner.build(proj.spec, chosen.identity, tuple(only))
        return cls(proj, store, journal, chosen, plan, project.hash_assets(proj.spec),
                   project.read_lock(proj))

    def assess(self) -> dict:
        return assess(self.plan, self.store, self.lock, self.journal, self.asset_digests,
                      paid=self.backend.paid)

    def close(self) -> None:
        try:
            asyncio.run(self.backend.aclose())
        except RuntimeError:
            pass
        self.journal.close()
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- plan ------------------------------------------------------------------------------------

def totals(states: dict) -> dict:
    run = [s for s in states.values() if s.status != CACHED]
    return {"tasks": len(states), "cached": len(states) - len(run),
            "to_run": sum(1 for s in run if s.status != IN_FLIGHT),
            "in_flight": sum(1 for s in run if s.status == IN_FLIGHT),
            "billed_seconds": round(sum(s.billed_seconds for s in run
                                        if s.status != IN_FLIGHT), 3),
            "cost": round(sum(s.cost for s in run), 4),
            "list_cost": round(sum(s.list_cost for s in run if s.status != IN_FLIGHT), 4)}


def check_budget(session: Session, states: dict, *, max_cost=None, no_spend=False) -> None:
    if not session.backend.paid:
        return
    t = totals(states)
    paid = [s for s in states.values() if s.status == "run" and s.task.startswith("gen:")]
    if no_spend and paid:
        raise BudgetError(f"--no-spend: {len(paid)} generation(s) would be paid for "
                          f"(estimated {t['cost']:.2f} {_currency()})")
    if max_cost is not None and t["cost"] > max_cost:
        raise BudgetError(f"estimated cost {t['cost']:.2f} {_currency()} exceeds --max-cost "
                          f"{max_cost:.2f}")


def _currency() -> str:
    from ..models import PRICE_CURRENCY

    return PRICE_CURRENCY


def plan_report(session: Session, states: dict) -> dict:
    """The documented JSON shape of `wanflow plan --json`."""
    from ..models import PRICE_CURRENCY, PRICE_NOTE, PRICE_REGION

    return {
        "spec": session.project.spec.name, "backend": session.backend.identity,
        "totals": totals(states),
        "currency": PRICE_CURRENCY, "price_basis": f"{PRICE_REGION}; {PRICE_NOTE}",
        "tasks": [{"task": s.task, "status": s.status, "reason": s.reason, "key": s.key,
                   "billed_seconds": s.billed_seconds if s.status != CACHED else 0,
                   "cost": s.cost, "remote_id": s.remote_id} for s in states.values()],
    }


def plan_table(session: Session, states: dict, *, explain: bool = False) -> str:
    from ..models import PRICE_CURRENCY, PRICE_NOTE

    rows = []
    width = max((len(t) for t in states), default=4)
    for s in states.values():
        if s.status == CACHED and not explain:
            continue
        cost = f"{s.cost:8.2f}" if s.cost else "       -"
        secs = f"{s.billed_seconds:6.1f}" if s.status != CACHED and s.billed_seconds else "     -"
        if not session.backend.paid:
            cost = "       -"
        line = f"{s.task:<{width}}  {s.status:<9}  {secs}  {cost}  {s.reason}"
        if explain and s.key:
            line += f"\n{'':<{width}}  key {s.key}"
        rows.append(line)
    t = totals(states)
    head = f"{'task':<{width}}  {'status':<9}  {'bill s':>6}  {'cost':>8}  reason"
    if session.backend.paid:
        money = (f"{t['billed_seconds']:.1f} billed s, estimated cost {t['cost']:.2f} "
                 f"{PRICE_CURRENCY} ({PRICE_NOTE})")
    else:
        money = (f"preview: free (on DashScope: {t['billed_seconds']:.1f} billed s, about "
                 f"{t['list_cost']:.2f} {PRICE_CURRENCY})")
    foot = (f"{t['tasks']} tasks: {t['cached']} cached, {t['to_run']} to run, "
            f"{t['in_flight']} in flight; {money}")
    return "\n".join([head] + rows + [foot]) if rows else foot


# -- run ---------------------------------------------------------------------------------

def run(session: Session, *, as_json=False, jobs=None, limits=(), max_cost=None,
        no_spend=False, resubmit_uncertain=False, reporter=None,
        install_signals=True) -> RunSummary:
    spec = session.project.spec
    options = RunOptions(max_cost=max_cost if max_cost is not None else spec.settings.max_cost,
                         no_spend=no_spend, resubmit_uncertain=resubmit_uncertain,
                         limits=project.limits(spec, tuple(limits)))
    if jobs:
        options.jobs = jobs
    report = reporter or reporters.make(as_json)
    try:
        with session.store.run_lock(wait=float(os.environ.get("WANFLOW_LOCK_WAIT", "0"))):
            # Read the state only once the cache is ours: a run that waited for another
            # one must see what that one finished.
            session.lock = project.read_lock(session.project)
            executor = Executor(session.plan, store=session.store, journal=session.journal,
                                backend=session.backend, reporter=report,
                                spec_dir=session.project.spec_dir,
                                lock_path=session.project.lock_path, options=options,
                                asset_digests=session.asset_digests, states=session.assess(),
                                lock_entries=session.lock)
            return asyncio.run(_run_with_signals(executor, install_signals))
    finally:
        close = getattr(report, "close", None)
        if close:
            close()


async def _run_with_signals(executor: Executor, install: bool) -> RunSummary:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    presses = 0

    def on_sigint():
        nonlocal presses
        presses += 1
        if presses == 1:
            executor.interrupt()
        else:
            main.cancel()

    if install:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        return await executor.run()
    except asyncio.CancelledError:
        raise Interrupted("aborted; journaled tasks resume on the next run") from None
    finally:
        if install:
            loop.remove_signal_handler(signal.SIGINT)


# -- status, graph, cache ------------------------------------------------------------------

def status_report(session: Session) -> dict:
    states = session.assess()
    spec_dir = session.project.spec_dir
    outputs = []
    for task in session.plan.tasks.values():
        if task.path:
            state = states[task.id]
            present = os.path.exists(os.path.join(spec_dir, task.path))
            outputs.append({"task": task.id, "path": task.path, "exists": present,
                            "up_to_date": state.status == CACHED and present})
    live = session.journal.live(session.backend.identity)
    return {"spec": session.project.spec.name, "backend": session.backend.identity,
            "lock": os.path.basename(session.project.lock_path),
            "totals": totals(states),
            "stale": [{"task": s.task, "reason": s.reason} for s in states.values()
                      if s.status != CACHED],
            "in_flight": [{"task": e.task, "remote_id": e.remote_id, "state": e.state}
                          for e in live.values()],
            "outputs": outputs}


def status_text(report: dict) -> str:
    t = report["totals"]
    lines = [f"{report['spec']} ({report['backend']}): {t['cached']}/{t['tasks']} tasks up to "
             f"date, {t['to_run']} stale, {t['in_flight']} in flight"]
    for item in report["stale"][:50]:
        lines.append(f"  stale      {item['task']}  ({item['reason']})")
    if len(report["stale"]) > 50:
        lines.append(f"  ... and {len(report['stale']) - 50} more")
    for item in report["in_flight"]:
        lines.append(f"  in flight  {item['task']}  {item['remote_id']} ({item['state']})")
    for item in report["outputs"]:
        mark = "ok" if item["up_to_date"] else ("stale" if item["exists"] else "missing")
        lines.append(f"  {mark:<9}  {item['path']}")
    return "\n".join(lines)


def graph_text(spec_file: str, fmt: str, only=()) -> str:
    proj = project.open_project(spec_file)
    plan = planner.build(proj.spec, "graph", tuple(only))
    ids = {tid: f"t{i}" for i, tid in enumerate(plan.tasks)}
    if fmt == "dot":
        lines = ["digraph wanflow {", "  rankdir=LR;"]
        for tid, task in plan.tasks.items():
            shape = {"gen": "box", "asset": "note", "frame": "ellipse"}.get(task.kind, "box3d")
            lines.append(f'  {ids[tid]} [label="{tid}", shape={shape}];')
        for a, b in plan.graph.edges:
            lines.append(f"  {ids[a]} -> {ids[b]};")
        lines.append("}")
        return "\n".join(lines)
    lines = ["flowchart LR"]
    for tid, task in plan.tasks.items():
        open_, close = {"gen": ("[", "]"), "asset": ("[/", "/]"), "frame": ("(", ")")}.get(
            task.kind, ("[[", "]]"))
        lines.append(f'  {ids[tid]}{open_}"{tid}"{close}')
    for a, b in plan.graph.edges:
        lines.append(f"  {ids[a]} --> {ids[b]}")
    return "\n".join(lines)


def cache_verify(spec_file: str, cache=None) -> dict:
    proj = project.open_project(spec_file, cache)
    store = Store(proj.cache_dir)
    try:
        with store.run_lock():
            return store.verify()
    finally:
        store.close()


def cache_gc(spec_files, cache=None, *, apply=False) -> dict:
    """Objects that no lock file pins; deleted only with `apply`."""
    projects = [project.open_project(f, cache) for f in spec_files]
    cache_dirs = {p.cache_dir for p in projects}
    if len(cache_dirs) != 1:
        raise UsageError("the specs given use different cache directories; run gc once per cache")
    keep: set[str] = set()
    lock_dirs = {p.spec_dir for p in projects}
    for directory in lock_dirs:  # every lock file beside the specs pins its outputs
        for name in os.listdir(directory):
            if name.endswith(".lock"):
                try:
                    keep.update(e.output for e in lockfile.read(os.path.join(directory, name))
                                .values())
                except StoreError:  # some other tool's lock file
                    continue
    store = Store(cache_dirs.pop())
    try:
        with store.run_lock():
            victims = store.gc(keep, dry_run=not apply)
    finally:
        store.close()
    return {"count": len(victims), "bytes": sum(size for _, size in victims),
            "kept": len(keep), "applied": apply, "objects": [d for d, _ in victims]}
