"""The backend protocol the executor drives, and the values it passes around.

A generation is submit → (journal the remote id) → wait → download. `preview` implements it
offline; `dashscope` over HTTP. Backends never print and never touch the store.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

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

    def to_dict(self) -> dict:
        return asdict(self)


class Backend(Protocol):
    name: str
    identity: str      # part of every generation key; preview and real outputs never mix
    paid: bool         # whether generations cost money

    async def submit(self, request: GenRequest, files: dict[str, str], *,
                     before_send=None) -> Submitted: ...
    async def wait(self, remote_id: str, request: GenRequest, *, elapsed: float = 0.0,
                   urgent=None) -> Finished: ...
    async def download(self, finished: Finished, dest: str) -> str: ...
    async def cancel(self, remote_id: str) -> bool: ...
    async def aclose(self) -> None: ...
