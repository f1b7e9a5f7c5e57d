"""wanflow: declarative, cached, concurrent pipelines for Alibaba's Wan video models.

The Python API, for notebooks and other tools (the CLI is built on the same objects)::

    import wanflow

    spec = wanflow.load("film/wanflow.yaml")        # validate (SpecError lists every problem)
    with wanflow.open("film/wanflow.yaml") as flow:
        flow.plan()                                 # what a run would do, why, what it costs
        flow.run()                                  # run it: preview unless asked otherwise
    lock = wanflow.read_lock("film/wanflow.preview.lock")   # what each task produced

`Settings` carries what is not in the spec (backend, key, base URL, cache, prices...); build
it with `Settings.resolve(os.environ, backend="dashscope")` or field by field.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["Pipeline", "Settings", "__version__", "load", "open", "read_lock"]

if TYPE_CHECKING:
    from .run.executor import RunSummary
    from .run.session import Session
    from .settings import Settings
    from .spec.nodes import Spec
    from .store.lockfile import LockEntry


def load(path: str) -> Spec:
    """Load and validate a spec; raises `wanflow.errors.SpecError` with every diagnostic."""
    from .spec import load as load_spec

    return load_spec(path)


def open(path: str, settings: Settings | None = None, *,   # noqa: A001 - like gzip.open
         only: tuple[str, ...] = ()) -> Pipeline:
    """Open a spec to plan and run it: validates, picks the backend, assesses nothing yet."""
    from .run.session import Session

    return Pipeline(Session.open(path, settings, only=only))


class Pipeline:
    """A spec opened for planning and running; close it (or use `with`)."""

    def __init__(self, session: Session):
        self.session = session

    def plan(self) -> dict:
        """What `wanflow plan --json` prints: each task's status, reason, key and cost."""
        from .run import session as sessions

        return sessions.plan_report(self.session)

    def status(self) -> dict:
        """What `wanflow status --json` prints."""
        from .run import session as sessions

        return sessions.status_report(self.session)

    def run(self, *, jobs: int | None = None, max_cost: str | None = None,
            no_spend: bool = False, reporter=None) -> RunSummary:
        """Run the spec; `reporter(event, **data)` receives progress events (default: none).
        `max_cost` is an amount with an optional currency (`"5"`, `"30CNY"`)."""
        from .run import session as sessions
        from .run.budget import parse_money

        return sessions.run(self.session, jobs=jobs, no_spend=no_spend,
                            max_cost=parse_money(max_cost) if max_cost is not None else None,
                            reporter=reporter or _quiet, install_signals=False)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

