"""One command over one spec: open it, plan, assess, run, report, tidy.

A `Session` owns the things with a lifecycle for one command (store, journal, backend). It
reads the lock file and assesses the plan exactly once; `plan`, `run`, `status` and `report`
all work from that one assessment.
"""
from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from ..backends import choose
from ..backends.base import Backend
from ..errors import Interrupted, StoreError, UsageError
from ..plan import planner
from ..plan.assess import CACHED, TaskState, assess
from ..plan.tasks import TaskId
from ..settings import Settings
from ..store import Store, lockfile
from ..store.journal import Journal
from . import budget, project, quotas, reporters
from .executor import Executor, RunOptions, RunSummary, lock_identity


@dataclass
class Session:
    project: project.Project
    settings: Settings
    store: Store
    journal: Journal
    backend: Backend
    plan: planner.Plan
    asset_digests: dict[str, str]
    lock: dict[str, lockfile.LockEntry]
    _states: dict[TaskId, TaskState] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, spec_file: str, settings: Settings | None = None, *,
             only: tuple[str, ...] = (), notice: Callable[[str], None] | None = None,
             backend_options: dict | None = None) -> Session:
        settings = settings or Settings()
        proj = project.open_project(spec_file, settings.cache)
        spec_settings = proj.spec.settings
        chosen = choose(settings.backend or spec_settings.backend or "auto", settings,
                        region=settings.region or spec_settings.region,
                        base_url=settings.base_url or spec_settings.base_url,
                        cache_dir=proj.cache_dir, notice=notice, **(backend_options or {}))
        store = Store(proj.cache_dir)
        journal = Journal(os.path.join(proj.cache_dir, "journal.db"))
        plan = planner.build(proj.spec, chosen.identity, tuple(only))
        return cls(proj, settings, store, journal, chosen, plan, project.hash_assets(proj.spec),
                   lockfile.read(proj.lock_path))

    @property
    def states(self) -> dict[TaskId, TaskState]:
        """The plan assessed against the store, lock file and journal (once per session)."""
        if self._states is None:
            self._states = assess(self.plan, self.store, self.lock,
                                  self.journal.live(self.backend.identity),
                                  self.asset_digests, paid=self.backend.paid)
        return self._states

    def close(self) -> None:
        try:
            asyncio.run(self.backend.aclose())
        except RuntimeError:
            pass
        self.journal.close()
        self.store.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- plan ------------------------------------------------------------------------------------

def plan_report(session: Session) -> dict:
    """The documented JSON shape of `wanflow plan --json`."""
    from ..models import PRICE_CURRENCY, PRICE_NOTE, PRICE_REGION

    states = session.states
    return {
        "spec": session.project.spec.name, "backend": session.backend.identity,
        "totals": budget.totals(states),
        "currency": PRICE_CURRENCY, "price_basis": f"{PRICE_REGION}; {PRICE_NOTE}",
        "tasks": [{"task": s.task, "status": s.status, "reason": s.reason, "key": s.key,
                   "billed_seconds": s.billed_seconds if s.status != CACHED else 0,
                   "cost": s.cost, "remote_id": s.remote_id} for s in states.values()],
    }


def check_budget(session: Session, *, max_cost: float | None = None,
                 no_spend: bool = False) -> None:
    budget.check(session.states, paid=session.backend.paid, max_cost=max_cost,
                 no_spend=no_spend)


# -- run ---------------------------------------------------------------------------------

def run(session: Session, *, as_json: bool = False, jobs: int | None = None,
        max_cost: float | None = None, no_spend: bool = False,
        resubmit_uncertain: bool = False, reporter=None,
        install_signals: bool = True) -> RunSummary:
    spec = session.project.spec
    options = RunOptions(resubmit_uncertain=resubmit_uncertain,
                         limits=quotas.merge(spec, session.settings.limits))
    if jobs:
        options.jobs = jobs
    report = reporter or reporters.make(as_json)
    try:
        with session.store.run_lock(wait=session.settings.lock_wait):
            # Read the state only once the cache is ours: a run that waited for another
            # one must see what that one finished.
            session.lock = lockfile.read(session.project.lock_path)
            session._states = None
            states = session.states
            budget.check(states, paid=session.backend.paid,
                         max_cost=max_cost if max_cost is not None else spec.settings.max_cost,
                         no_spend=no_spend)
            book = _lock_book(session, states)
            executor = Executor(session.plan, states, store=session.store,
                                journal=session.journal, backend=session.backend,
                                reporter=report, spec_dir=session.project.spec_dir,
                                lock=book, options=options)
            return asyncio.run(_run_with_signals(executor, install_signals))
    finally:
        close = getattr(report, "close", None)   # a plain function may report too
        if close is not None:
            close()


def _lock_book(session: Session, states: dict[TaskId, TaskState]) -> lockfile.LockBook:
    """The run's lock file, starting from what is current: every cached task of the plan.
    Entries of tasks outside a plan restricted with --only are kept as they were."""
    identity = session.backend.identity
    entries = {tid: lockfile.entry_from_result(tid, s.record, lock_identity(tid, identity))
               for tid, s in states.items() if s.record is not None}
    if session.plan.only:
        entries.update({t: e for t, e in session.lock.items() if t not in session.plan.tasks})
    return lockfile.LockBook(session.project.lock_path, entries, on_disk=session.lock)


async def _run_with_signals(executor: Executor, install: bool) -> RunSummary:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    presses = 0

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            executor.interrupt()
        elif main is not None:
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


# -- status, cache ---------------------------------------------------------------------------

def status_report(session: Session) -> dict:
    states = session.states
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
            "totals": budget.totals(states),
            "stale": [{"task": s.task, "reason": s.reason} for s in states.values()
                      if s.status != CACHED],
            "in_flight": [{"task": e.task, "remote_id": e.remote_id, "state": e.state}
                          for e in live.values()],
            "outputs": outputs}


def cache_verify(spec_file: str, settings: Settings | None = None) -> dict:
    settings = settings or Settings()
    proj = project.open_project(spec_file, settings.cache)
    with Store(proj.cache_dir) as store, store.run_lock():
        return store.verify()


def cache_gc(spec_files, settings: Settings | None = None, *, apply: bool = False) -> dict:
    """Objects that no lock file pins; deleted only with `apply`."""
    settings = settings or Settings()
    projects = [project.open_project(f, settings.cache) for f in spec_files]
    cache_dirs = {p.cache_dir for p in projects}
    if len(cache_dirs) != 1:
        raise UsageError("the specs given use different cache directories; run gc once per cache")
    keep: set[str] = set()
    for directory in {p.spec_dir for p in projects}:  # every lock file there pins its outputs
        for name in os.listdir(directory):
            if name.endswith(".lock"):
                try:
                    keep.update(e.output for e in lockfile.read(os.path.join(directory, name))
                                .values())
                except StoreError:  # some other tool's lock file
                    continue
    with Store(cache_dirs.pop()) as store, store.run_lock():
        victims = store.gc(keep, dry_run=not apply)
    return {"count": len(victims), "bytes": sum(size for _, size in victims),
            "kept": len(keep), "applied": apply, "objects": [d for d, _ in victims]}
