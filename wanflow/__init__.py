"""wanflow: declarative, cached, concurrent pipelines for Alibaba's Wan video models.

The Python API, for notebooks and other tools (the CLI is built on the same functions)::

    import wanflow

    spec = wanflow.load("film/wanflow.yaml")        # validate (SpecError lists every problem)
    plan = wanflow.plan("film/wanflow.yaml")        # what a run would do, why, what it costs
    done = wanflow.run("film/wanflow.yaml")         # run it: preview unless asked otherwise
    lock = wanflow.read_lock("film/wanflow.lock")   # what each task produced

`Settings` carries what is not in the spec (backend, key, base URL, cache, ...); build it
with `Settings.resolve(os.environ, backend="dashscope")` or field by field.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["Settings", "__version__", "load", "plan", "read_lock", "run"]

if TYPE_CHECKING:
    from .run.executor import RunSummary
    from .settings import Settings
    from .spec.nodes import Spec
    from .store.lockfile import LockEntry


def load(path: str) -> Spec:
    """Load and validate a spec; raises `wanflow.errors.SpecError` with every diagnostic."""
    from .spec import loader

    return loader.load(path)


def plan(path: str, settings: Settings | None = None, *, only: tuple[str, ...] = ()) -> dict:
    """What `wanflow plan --json` prints: each task's status, reason, key and cost."""
    from .run import session as sessions

    with sessions.Session.open(path, settings, only=only) as session:
        return sessions.plan_report(session)


def run(path: str, settings: Settings | None = None, *, only: tuple[str, ...] = (),
        jobs: int | None = None, max_cost: float | None = None, no_spend: bool = False,
        reporter=None) -> RunSummary:
    """Run a spec; `reporter(event, **data)` receives progress events (default: none)."""
    from .run import session as sessions

    with sessions.Session.open(path, settings, only=only) as session:
        return sessions.run(session, jobs=jobs, max_cost=max_cost, no_spend=no_spend,
                            reporter=reporter or _quiet, install_signals=False)


def read_lock(path: str) -> dict[str, LockEntry]:
    """The entries of a lock file, by task id ({} when it does not exist)."""
    from .store import lockfile

    return lockfile.read(path)


def __getattr__(name: str):
    if name == "Settings":   # imported lazily: `import wanflow` stays cheap
        from .settings import Settings

        return Settings
    raise AttributeError(f"module 'wanflow' has no attribute {name!r}")


def _quiet(event, **data) -> None:
    pass
