"""Shared by the DashScope client tests: the key, a backend aimed at an emulator, and checks
that the key never shows in an error."""
from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest

from wanflow.backends.dashscope import DashScopeBackend
from wanflow.backends.emulator import Emulator
from wanflow.plan.request import build
from wanflow.spec.nodes import Shot, Where

KEY = "sk-secret-XYZ-7f3a9c1e5b2d4680"
W = Where("t.yaml")
SEEN_ERRORS: list[BaseException] = []


def run(coro):
    return asyncio.run(coro)


def shot(model, **kw) -> Shot:
    kw.setdefault("prompt", "a cheetah runs across the grassland")
    return Shot("s", "a", model, W, **kw)


def expect(exc_type, coro):
    """Run `coro`, require `exc_type`, and check the key appears nowhere in the error chain."""
    with pytest.raises(exc_type) as info:
        run(coro)
    no_secret(info.value)
    return info.value


def no_secret(exc: BaseException) -> None:
    SEEN_ERRORS.append(exc)
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for text in (str(exc), repr(exc), repr(exc.args), repr(vars(exc))):
            assert KEY not in text and KEY[3:] not in text, text
        exc = exc.__cause__ or exc.__context__


def emulator() -> Emulator:
    """The emulator most tests use: fast tasks, no concurrency or submit-rate limits."""
    return Emulator(api_keys=(KEY,), latency=(0.2, 0.5), render_scale=0.25, concurrency=100,
                    submit_rps=1000)


def make(base_url, tmp_path=None, **kw) -> DashScopeBackend:
    kw.setdefault("poll_first", 0.05)
    kw.setdefault("poll_max", 0.3)
    kw.setdefault("retry_backoff", 0.02)
    kw.setdefault("api_key", KEY)
    if tmp_path is not None:
        kw.setdefault("upload_cache_dir", str(tmp_path / "uploads"))
    return DashScopeBackend(base_url=base_url, **kw)


def api_calls(emu, sub: str, method: str | None = None) -> list[dict]:
    return [r for r in emu.requests() if r["path"].startswith("/api/v1/" + sub)
            and (method is None or r["method"] == method)]


def submits(emu) -> list[dict]:
    return [r for r in emu.requests() if "/services/aigc/" in r["path"]]


def write(path, data: bytes) -> tuple[str, str]:
    path.write_bytes(data)
    return str(path), hashlib.sha256(data).hexdigest()


class Recorder(httpx.AsyncBaseTransport):
    """Real loopback HTTP, remembering every request with its body."""

    def __init__(self):
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[httpx.Request, bytes]] = []

    async def handle_async_request(self, request):
        body = await request.aread()
        self.seen.append((request, body))
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


T2V = build(shot("wan2.7-t2v", resolution="720P", duration=5), 1, {}, {})
