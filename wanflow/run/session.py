"""One command over one spec: open it, plan, assess, run, report, tidy.

A `Session` owns the things with a lifecycle for one command (store, journal, backend). It
reads the lock file and assesses the plan exactly once; `plan`, `run`, `status` and `report`
all work from that one assessment.
"""
from __future__ import annotations

import asyncio
import os
import shlex
import signal
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Self

from .. import backends
from ..backends import Choice
from ..backends.base import Backend, Medium
from ..backends.preview import scaled
from ..errors import ConfigError, Interrupted, StoreError, UsageError
from ..plan import planner
from ..plan.assess import CACHED, REMOTE, RUN, TaskState, assess
from ..plan.cost import Pricing
from ..plan.tasks import AssembleTask, AssetTask, GenTask, TaskId, render_path
from ..settings import Settings
from ..store import Store, lockfile
from ..store.fs import hash_file, storage_error
from ..store.journal import Journal, NullJournal
from ..text import shown
from . import budget, project, quotas, reporters
from .budget import Money
from .events import Event
from .executor import Executor, RunSummary, lock_identity
from .options import RunOptions
from .remote import RemoteResults, RemoteTier, make_claims, open_remote, push_pinned

if TYPE_CHECKING:
    from ..store.remote import RemoteStore


@dataclass
class Session:
    spec_file: str                  # as the user named it (for commands we print)
    project: project.Project
    settings: Settings
    choice: Choice
    store: Store
    journal: Journal | NullJournal
    backend: Backend
    plan: planner.Plan
    targets: frozenset[TaskId]      # the tasks this command is about (all, or --only's)
    pricing: Pricing
    asset_digests: dict[str, str]
    remote: RemoteStore | None = None          # the team's remote tier, if one is named
    notice: Callable[[str], None] = field(default=lambda message: None, repr=False)
    _lock: dict[str, lockfile.LockEntry] | None = field(default=None, repr=False)
    _states: dict[TaskId, TaskState] | None = field(default=None, repr=False)
    _remote_results: RemoteResults | None = field(default=None, repr=False)

    @classmethod
    def open(cls, spec_file: str, settings: Settings | None = None, *,
             only: tuple[str, ...] = (), notice: Callable[[str], None] | None = None,
             backend_options: dict | None = None, generate: bool = True,
             fetch: bool = False) -> Session:
        """`generate=False` (plan, status, report, diff, pull): the backend only names the
        outputs it would make, so a paid plan can be shown, and paid renders fetched from the
        remote, without an API key. `fetch` (pull): a spec's `backend: dashscope` chooses
        the paid renders even with no key set, as there is nothing to pay for."""
        settings = settings or Settings()
        proj = project.open_project(spec_file, settings.cache, settings.state_dir)
        spec_settings = proj.spec.settings
        choice = backends.select(settings.backend, spec_settings.backend,
                                 settings.api_key is not None or fetch,
                                 key_required=generate)
        if notice is not None:   # before anything else the command prints
            notice(f"backend: {choice.name} ({choice.reason})")
        region = settings.region or spec_settings.region
        if generate:
            chosen = backends.make(choice, settings, region=region, cache_dir=proj.cache_dir,
                                   **(backend_options or {}))
        else:
            chosen = backends.naming_only(choice, settings, region=region)
        far = open_remote(settings)
        store = Store(proj.cache_dir)
        # Only paid work is journaled: a free task is simply done again (never stuck).
        journal: Journal | NullJournal = (
            Journal(os.path.join(proj.cache_dir, "journal.db")) if chosen.paid
            else NullJournal())
        plan = _at_preview_scale(planner.build(proj.spec, chosen.identity),
                                 1.0 if chosen.paid else settings.preview_scale)
        targets = planner.select(plan, tuple(only))
        pricing = Pricing.for_region(settings.region or spec_settings.region, settings.prices)
        return cls(spec_file, proj, settings, choice, store, journal, chosen, plan, targets,
                   pricing, project.hash_assets(proj.spec), far,
                   notice or (lambda message: None))

    @property
    def lock_path(self) -> str:
        return self.project.lock_for(self.backend.paid)

    @property
    def lock(self) -> dict[str, lockfile.LockEntry]:
        """The lock file of the kind this session makes, read when first needed (a run
        reads it once the cache is its own: see `reread_lock`)."""
        if self._lock is None:
            self._lock = lockfile.read(self.lock_path)
        return self._lock

    def reread_lock(self) -> None:
        """Forget what was read of the lock file and the assessment made from it."""
        self._lock = None
        self._states = None

    @property
    def states(self) -> dict[TaskId, TaskState]:
        """The whole plan assessed against the store, lock file and journal (once)."""
        if self._states is None:
            if self.remote is not None:
                self._remote_results = RemoteResults(self.remote, self.notice)
            self._states = assess(self.plan, self.store, self.lock,
                                  self.journal.live(self.backend.identity),
                                  self.asset_digests, paid=self.backend.paid,
                                  pricing=self.pricing,
                                  asset_seconds=project.asset_seconds(self.project.spec),
                                  remote=self._remote_results)
        return self._states

    @property
    def target_states(self) -> dict[TaskId, TaskState]:
        """The states of the tasks this command is about, in plan order."""
        return {t: s for t, s in self.states.items() if t in self.targets}

    def close(self) -> None:
        with suppress(RuntimeError):
            asyncio.run(self.backend.aclose())
        self.journal.close()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _at_preview_scale(plan: planner.Plan, scale: float) -> planner.Plan:
    """Scenes and films assembled at the size of scaled preview clips (the same rounding),
    so that nothing is resized. Width and height are key material: a scaled assembly is
    keyed apart from a full-size one."""
    if scale == 1:
        return plan
    tasks = dict(plan.tasks)
    for tid, task in plan.tasks.items():
        if isinstance(task, AssembleTask):
            width, height = scaled(task.width, task.height, scale)
            tasks[tid] = replace(task, width=width, height=height)
    return replace(plan, tasks=tasks)


# -- plan ------------------------------------------------------------------------------------

def plan_report(session: Session) -> dict:
    """The documented JSON shape of `wanflow plan --json`."""
    states = session.target_states
    return {
        "spec": session.project.spec.name, "backend": session.backend.identity,
        "backend_reason": session.choice.reason,
        "totals": budget.totals(states),
        "region": session.pricing.region, "currency": session.pricing.currency,
        "price_basis": session.pricing.basis,
        "notes": list(session.plan.notes),
        "tasks": [{"task": s.task, "status": s.status, "reason": s.reason, "key": s.key,
                   "billed_seconds": s.billed_seconds if s.status != CACHED else 0,
                   "up_to": s.up_to and s.status != CACHED,
                   "price": s.price, "cost": s.cost if s.priced else None,
                   "remote_id": s.remote_id} for s in states.values()],
    }


def check_budget(session: Session, *, max_cost: Money | None = None,
                 no_spend: bool = False) -> None:
    budget.check(session.target_states, paid=session.backend.paid, pricing=session.pricing,
                 max_cost=max_cost, no_spend=no_spend)


def check_backend(session: Session) -> None:
    """Raise ConfigError (exit 4) before anything is submitted if the backend would refuse
    one of the generations to run (a model its host may not serve, an input it cannot
    receive): a run must not pay for half a plan and then stop."""
    problems = []
    for tid, state in session.target_states.items():
        task = session.plan.tasks[tid]
        if state.status != RUN or not isinstance(task, GenTask):
            continue
        why = session.backend.refusal(task.shot.model, _media(session.plan, task))
        if why is not None:
            problems.append(f"{tid}: {why}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ConfigError("; ".join(problems[:3]) + more + "; nothing was submitted")


def _media(plan: planner.Plan, task: GenTask) -> list[Medium]:
    out = []
    for source in task.inputs:
        made = plan.tasks.get(source)
        if isinstance(made, AssetTask):
            out.append(Medium(f"asset '{made.asset.name}'", made.output_mime, made.asset.url))
        elif made is not None:
            out.append(Medium(str(source), made.output_mime))
    return out


# -- run ---------------------------------------------------------------------------------

def run(session: Session, *, as_json: bool = False, jobs: int | None = None,
        max_cost: Money | None = None, no_spend: bool = False,
        resubmit_uncertain: bool = False, resubmit: tuple[str, ...] = (), reporter=None,
        install_signals: bool = True, generate: bool = True) -> RunSummary:
    """Run the session's plan. `generate=False` (pull): whatever the remote has is
    downloaded and local work is done, but nothing is generated — a generation the remote
    lacks fails, saying so."""
    spec = session.project.spec
    options = RunOptions(generate=generate, resubmit_uncertain=resubmit_uncertain,
                         resubmit=resubmit_targets(session.plan, resubmit),
                         resubmit_command=lambda t: resubmit_command(session.spec_file, t),
                         limits=quotas.merge(spec, session.settings.limits),
                         backend_reason=session.choice.reason,
                         currency=session.pricing.currency)
    if jobs:
        options = replace(options, jobs=jobs)
    if session.settings.retry_backoff is not None:
        options = replace(options, backoff_base=session.settings.retry_backoff)
    report = reporter or reporters.make(as_json, plain=session.settings.github_actions)
    try:
        with session.store.run_lock(wait=session.settings.lock_wait):
            # Read the state only once the cache is ours: a run that waited for another
            # one must see what that one finished.
            session.reread_lock()
            states = session.states
            if max_cost is None and spec.settings.max_cost is not None:
                max_cost = Money(spec.settings.max_cost)
            if generate:
                check_budget(session, max_cost=max_cost, no_spend=no_spend)
                check_backend(session)
            options = replace(options,
                              max_cost=max_cost.amount if max_cost is not None else None)
            book = _lock_book(session, states)
            executor = Executor(session.plan, states, store=session.store,
                                journal=session.journal, backend=session.backend,
                                reporter=report, spec_dir=session.project.spec_dir,
                                lock=book, options=options, targets=session.targets,
                                remote=_remote_tier(session, report))
            return asyncio.run(_run_with_signals(executor, install_signals))
    finally:
        close = getattr(report, "close", None)   # a plain function may report too
        if close is not None:
            close()


def pull(session: Session, **options) -> RunSummary:
    """Download the current plan's results that the remote has and materialise the
    renders; generate nothing (what the remote lacks fails, saying so)."""
    if session.remote is None:
        raise UsageError("pull needs a remote: --remote URL, WANFLOW_REMOTE or `remote` in "
                         "the user config file")
    return run(session, generate=False, **options)


def push(spec_file: str, settings: Settings) -> dict:
    """Upload what the spec's lock files (paid and preview) pin: objects and records."""
    proj = project.open_project(spec_file, settings.cache, settings.state_dir)
    far = open_remote(settings)
    if far is None:
        raise UsageError("push needs a remote: --remote URL, WANFLOW_REMOTE or `remote` in "
                         "the user config file")
    with Store(proj.cache_dir) as store:
        return push_pinned(far, store, (proj.lock_path, proj.preview_lock_path))


def _remote_tier(session: Session, report) -> RemoteTier | None:
    if session.remote is None:
        return None

    def notice(message: str) -> None:
        report(Event.NOTICE, message=message)

    claims = (make_claims(session.remote, session.settings, notice)
              if session.backend.paid else None)   # preview work is free: never claimed
    checked = session._remote_results.checked if session._remote_results else ()
    return RemoteTier(session.remote, session.store, report, claims=claims,
                             checked=checked)


def resubmit_targets(plan: planner.Plan, names: tuple[str, ...]) -> frozenset[TaskId]:
    """The generations `--resubmit` names: `SCENE.SHOT#TAKE`, `SCENE.SHOT` (every take) or
    a task id (`gen:SCENE.SHOT#TAKE`)."""
    chosen: set[TaskId] = set()
    gens = {t.id: t for t in plan.gen_tasks()}
    for name in names:
        tid = TaskId.parse(name) or TaskId.parse(f"gen:{name}")
        if tid is not None and tid in gens:
            chosen.add(tid)
            continue
        takes = [t for t in gens if t.name == name]
        if not takes:
            raise UsageError(f"--resubmit {shown(name)}: no generation of the spec is called "
                             "that (expected SCENE.SHOT#TAKE or SCENE.SHOT)")
        chosen.update(takes)
    return frozenset(chosen)


def resubmit_command(spec_file: str, task: TaskId) -> str:
    return f"wanflow run {shlex.quote(spec_file)} --resubmit {shlex.quote(task.label)}"


def _lock_book(session: Session, states: dict[TaskId, TaskState]) -> lockfile.LockBook:
    """The run's lock file, starting from what is current: every task of the whole plan
    whose current output is stored (whether or not --only selects it). Whenever it is
    written it holds exactly the plan's tasks with their current keys and outputs."""
    identity = session.backend.identity
    entries: dict[str, lockfile.LockEntry] = {
        tid: lockfile.entry_from_result(tid, s.record, lock_identity(tid, identity))
        for tid, s in states.items() if s.record is not None and s.status == CACHED}
    return lockfile.LockBook(session.lock_path, entries, on_disk=session.lock)


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
    states = session.target_states
    paid = session.backend.paid
    locks = {"paid": lockfile.read(session.project.lock_path),
             "preview": lockfile.read(session.project.preview_lock_path)}
    outputs = []
    for tid in states:
        task = session.plan.tasks[tid]
        if not task.path:
            continue
        path = render_path(task.path, paid)
        digest = _digest_of(os.path.join(session.project.spec_dir, path))
        state = states[tid]
        made_by = None
        if digest is not None:
            made_by = next((kind for kind, entries in locks.items()
                            if tid in entries and entries[tid].output == digest), "unknown")
        outputs.append({"task": tid, "path": path, "exists": digest is not None,
                        "up_to_date": state.output is not None and state.status == CACHED
                        and digest == state.output.digest,
                        "made_by": made_by})
    live = session.journal.live(session.backend.identity)
    return {"spec": session.project.spec.name, "backend": session.backend.identity,
            "backend_reason": session.choice.reason,
            "lock": os.path.basename(session.lock_path),
            "totals": budget.totals(states),
            "remote": [{"task": s.task} for s in states.values() if s.status == REMOTE],
            "stale": [{"task": s.task, "reason": s.reason} for s in states.values()
                      if s.status not in (CACHED, REMOTE)],
            "in_flight": [{"task": e.task, "remote_id": e.remote_id, "state": e.state}
                          for e in live.values()],
            "outputs": outputs}


def _digest_of(path: str) -> str | None:
    try:
        return hash_file(path)[0]
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error(exc, "reading a render", path, hint="or check the file") from exc


def cache_verify(spec_file: str, settings: Settings | None = None) -> dict:
    settings = settings or Settings()
    proj = project.open_project(spec_file, settings.cache, settings.state_dir)
    with Store(proj.cache_dir) as store, store.run_lock():
        return store.verify()


def cache_gc(spec_files, settings: Settings | None = None, *, apply: bool = False) -> dict:
    """Objects that no lock file pins; deleted only with `apply`."""
    settings = settings or Settings()
    projects = [project.open_project(f, settings.cache, settings.state_dir) for f in spec_files]
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
