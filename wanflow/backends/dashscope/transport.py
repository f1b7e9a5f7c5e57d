"""The transport seam: the one module of wanflow that imports httpx.

Requests to the DashScope API carry the key; requests to other hosts (the OSS upload host,
signed result URLs) never do. The two kinds go through different methods, so no helper can
send the key to a foreign host by mistake. A request that gets no HTTP answer raises
`TransportFailure`, whose text is already scrubbed of the key.
"""
from __future__ import annotations

import enum
import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import BinaryIO

import httpx

from ...settings import Secret

Response = httpx.Response
AsyncTransport = httpx.AsyncBaseTransport

ASYNC_HEADER = "X-DashScope-Async"
RESOLVE_HEADER = "X-DashScope-OssResourceResolve"
WORKSPACE_HEADER = "X-DashScope-WorkSpace"
# A form upload may be a large video over a slow link: give the body time to go out.
UPLOAD_WRITE_TIMEOUT = 600.0


class Stage(enum.Enum):
    """How far a request got before its transport failed: what a resubmit would risk."""

    CONNECT = "connect"        # no connection: nothing was sent
    SEND = "send"              # broke off while sending: the server cannot have acted on it
    UNSENDABLE = "unsendable"  # the request cannot be sent at all (scheme, malformed request)
    NO_ANSWER = "no answer"    # sent, no answer within the timeout
    BROKEN = "broken"          # sent, then the connection failed


class TransportFailure(Exception):
    """A request got no (complete) HTTP answer. `text` names the cause, without the key."""

    def __init__(self, stage: Stage, text: str):
        super().__init__(text)
        self.stage = stage
        self.text = text


def _stage(exc: httpx.TransportError) -> Stage:
    # Order matters: ConnectTimeout and PoolTimeout are timeouts that happen before sending.
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return Stage.CONNECT
    if isinstance(exc, (httpx.WriteError, httpx.WriteTimeout)):
        return Stage.SEND
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return Stage.UNSENDABLE
    if isinstance(exc, httpx.TimeoutException):
        return Stage.NO_ANSWER
    return Stage.BROKEN


CONNECT_TIMEOUT = 5.0   # seconds: an unreachable host fails fast, a slow answer may take long


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings of every client in this process (httpx's defaults). Building them
    reads the whole CA bundle, tens of milliseconds that each new backend (a program
    running several specs) need not spend again."""
    return httpx.create_ssl_context()


class Http:
    """One pooled HTTP/1.1 client for a backend; closed with `aclose`."""

    def __init__(self, *, base_url: str, key: Secret, workspace: str | None, timeout: float,
                 transport: AsyncTransport | None = None):
        self.base_url = base_url
        self._key = key
        self._workspace = workspace
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            transport=transport, verify=_tls(), http1=True, http2=False,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16,
                                keepalive_expiry=30.0),
            headers={"User-Agent": "wanflow-dashscope/1"})

    async def aclose(self) -> None:
        await self._client.aclose()

    def scrub(self, text) -> str:
        return self._key.scrub(text)

    # ---------------------------------------------------------------- the DashScope API

    async def get(self, path: str, *, params: dict[str, str] | None = None) -> Response:
        """`GET {base_url}/{path}` with the key."""
        return await self._send("GET", path, params=params, headers=self._headers())

    async def post(self, path: str) -> Response:
        """`POST {base_url}/{path}` without a body, with the key."""
        return await self._send("POST", path, headers=self._headers())

    async def post_task(self, path: str, body: bytes, *, resolve_oss: bool) -> Response:
        """The asynchronous task submit. `resolve_oss`: the body holds oss:// temp URLs."""
        headers = self._headers(submit=True)
        if resolve_oss:
            headers[RESOLVE_HEADER] = "enable"
        return await self._send("POST", path, content=body, headers=headers)

    def _headers(self, *, submit: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._key.reveal()}", "Accept": "application/json"}
        if submit:
            headers["Content-Type"] = "application/json"
            headers[ASYNC_HEADER] = "enable"
        if self._workspace:
            headers[WORKSPACE_HEADER] = self._workspace
        return headers

    async def _send(self, method: str, path: str, **kw) -> Response:
        try:
            return await self._client.request(method, f"{self.base_url}/{path.lstrip('/')}",
                                              **kw)
        except httpx.TransportError as exc:
            raise self._failure(exc) from exc

    # ---------------------------------------------------------------- other hosts, never the key

    async def post_form(self, url: str, fields: dict[str, str],
                        file: tuple[str, BinaryIO, str]) -> Response:
        """A multipart form POST (the OSS upload): `file` is (name, open file, mime type)."""
        timeout = httpx.Timeout(self._timeout, connect=min(10.0, self._timeout),
                                write=max(self._timeout, UPLOAD_WRITE_TIMEOUT))
        try:
            return await self._client.post(url, data=fields, files={"file": file},
                                           timeout=timeout)
        except httpx.TransportError as exc:
            raise self._failure(exc) from exc

    @asynccontextmanager
    async def stream(self, url: str, *, headers: dict[str, str]) -> AsyncIterator[Response]:
        """A streamed GET of a signed URL, following redirects. Transport errors while the
        body is read (inside the `async with`) come out as `TransportFailure` too."""
        try:
            async with self._client.stream("GET", url, headers=headers,
                                           follow_redirects=True) as resp:
                yield resp
        except httpx.TransportError as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: httpx.TransportError) -> TransportFailure:
        detail = str(exc) or exc.__class__.__name__
        return TransportFailure(_stage(exc), self.scrub(f"{exc.__class__.__name__}: {detail}"))
