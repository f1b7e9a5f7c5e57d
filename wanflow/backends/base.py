"""The backend protocol the executor drives, and the values it passes around.

A generation is submit → (journal the remote id) → wait → download. `preview` implements it
offline; `dashscope` over HTTP. Backends never print and never touch the store.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from ..errors import ConfigError
from ..plan.request import GenRequest


@dataclass(frozen=True)
class Submitted:
    remote_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class Finished:
    remote_id: str
    request_id: str | None
    video_url: str | None
    actual_prompt: str | None
    usage: dict | None
    billed_seconds: float
    status: str = "SUCCEEDED"
    ran_seconds: float | None = None   # submit to success (what later schedules learn from)

    def to_dict(self) -> dict:
        return asdict(self)


class RunHistory(Protocol):
    """How long finished generations of one kind ran, submit to success: what the journal
    remembers between runs. A backend learns its poll schedule from it; it names the
    kind (model, resolution, clip length, where it runs) and never sees the store."""

    def run_seconds(self, kind: str, limit: int = 10) -> list[float]:
        """The most recent run times of `kind`, newest first."""
    def record_run(self, kind: str, seconds: float) -> None: ...


@dataclass(frozen=True)
class Medium:
    """An input a generation will send, as much of it as is known before the run."""

    name: str              # for messages: the asset, or the task that makes it
    mime: str
    url: str | None = None  # where the provider can fetch it itself (an https asset)


class Backend(Protocol):
    """What the executor drives. `BaseBackend` gives the optional parts a default."""

    name: str
    identity: str      # part of every generation key; preview and real outputs never mix
    paid: bool         # whether generations cost money
    quotas: bool       # whether a provider's per-model quotas (in flight, per second) apply

    async def check(self) -> None:
        """Raise ConfigError/AuthError now if generating cannot work (unreachable, bad key)."""
    def refusal(self, model: str, inputs: Sequence[Medium]) -> str | None:
        """Why a generation of `model` from `inputs` cannot run here, or None. Asked for
        every generation of a run before the first is submitted."""
    async def prepare(self, request: GenRequest, files: dict[str, str]) -> None:
        """Do slow work that needs no submit slot (uploads) ahead of `submit`."""
    async def submit(self, request: GenRequest, files: dict[str, str], *,
                     before_send: Callable[[], Awaitable[None]] | None = None
                     ) -> Submitted: ...
    async def wait(self, remote_id: str, request: GenRequest, *, elapsed: float = 0.0,
                   urgent: Callable[[], bool] | None = None,
                   on_status: Callable[[str], None] | None = None) -> Finished:
        """Until the task ends. `on_status(status)` hears each new provider status
        (PENDING, RUNNING)."""
    def expected_seconds(self, request: GenRequest) -> float | None:
        """How long a task like this is expected to take from submit to success."""
    def learn(self, history: RunHistory) -> None:
        """Use (and add to) the run times of earlier tasks."""
    async def download(self, finished: Finished, dest: str) -> str: ...
    async def cancel(self, remote_id: str) -> bool: ...
    async def list_tasks(self, **filters: object) -> list[dict] | None:
        """The provider's recent tasks (for reconciling a submit that was interrupted), or
        None when the backend cannot list them."""
    async def aclose(self) -> None: ...


class BaseBackend:
    """Defaults for the optional parts of `Backend`."""

    quotas = True

    async def check(self) -> None:
        return None

    def refusal(self, model: str, inputs: Sequence[Medium]) -> str | None:
        return None

    async def prepare(self, request: GenRequest, files: dict[str, str]) -> None:
        return None

    async def cancel(self, remote_id: str) -> bool:
        return False

    async def list_tasks(self, **filters: object) -> list[dict] | None:
        return None

    def expected_seconds(self, request: GenRequest) -> float | None:
        return None

    def learn(self, history: RunHistory) -> None:
        return None

    async def aclose(self) -> None:
        return None


class NamingOnly(BaseBackend):
    """A paid backend's identity without the means to generate (`wanflow pull`)."""

    paid = True

    def __init__(self, name: str, identity: str):
        self.name = name
        self.identity = identity

    async def submit(self, request: GenRequest, files: dict[str, str], *,
                     before_send: Callable[[], Awaitable[None]] | None = None) -> Submitted:
        raise ConfigError("this command generates nothing")

    async def wait(self, remote_id: str, request: GenRequest, *, elapsed: float = 0.0,
                   urgent: Callable[[], bool] | None = None,
                   on_status: Callable[[str], None] | None = None) -> Finished:
        raise ConfigError("this command generates nothing")

    async def download(self, finished: Finished, dest: str) -> str:
        raise ConfigError("this command generates nothing")
