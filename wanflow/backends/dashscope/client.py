"""DashScopeBackend: the backend protocol (`backends/base.py`) over DashScope's HTTP API.

A submit is never retried here. Its errors say whether a retry is safe: nothing sent
(connect failure, 429, 503) → `retryable=True`; sent but no answer (read timeout, reset,
500/502/504) → `SubmitUncertain`, because the API has no idempotency key and a blind
resubmit can pay twice. Waiting, downloading and uploading live in their own modules; this
one holds the configuration, the key and the calls that are one request each.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self
from urllib.parse import urlsplit

from ... import models
from ...errors import BackendError, ConfigError, SubmitUncertain
from ...plan.request import GenRequest, substitute
from ...run.pacing import Pacer
from ...settings import Secret
from ..base import BaseBackend, Finished, Medium, RunHistory, Submitted
from .download import DOWNLOAD_ATTEMPTS, download_video
from .errors import RETRY_BACKOFF, UNCERTAIN_ADVICE, api_error
from .polling import LEARN_FROM, QPS_HEADROOM, Expectation, PollSchedule, wait_for_task
from .transport import AsyncTransport, Http, Response, Stage, TransportFailure
from .uploads import UploadCache, Uploader

log = logging.getLogger(__name__)

POLL_MAX = 30.0   # seconds: the longest pause between two polls, unless configured
# wanflow's emulator says how much faster than real generation its clock runs; honoured
# only from a server on this machine, so no remote host can make wanflow poll faster.
TIME_SCALE_HEADER = "X-Wanflow-Time-Scale"


@dataclass(frozen=True)
class Endpoint:
    """Where a backend sends its requests, and what the server there offers."""

    base_url: str
    region: str | None      # None: a custom server named by its URL only
    identity: str           # part of every generation key: official host or a custom one
    supports_upload: bool   # temporary storage for local files (getPolicy + OSS form)
    host: str = "classic"   # classic | workspace: built here; given: the user's base URL


def resolve_endpoint(region: str | None, base_url: str | None,
                     workspace: str | None = None) -> Endpoint:
    """The endpoint for a region name or alias, a workspace id and/or a base URL (reference
    §1.1, §8; Wan 3.0 reference §4). The key only ever goes to an official host — a region's
    classic host or a workspace host, both built here — or to the base URL the user named."""
    region_name = None
    if region:
        region_name = models.REGION_ALIASES.get(region.lower(), region.lower())
        if region_name not in models.REGIONS:
            valid = ", ".join(sorted(models.REGIONS) + sorted(models.REGION_ALIASES))
            raise ConfigError(f"unknown DashScope region {region!r}; valid: {valid}")
    if workspace is not None and not models.WORKSPACE_ID.match(workspace):
        raise ConfigError(f"workspace id {workspace!r} is not a Model Studio workspace id "
                          "(letters, digits and hyphens, as the console shows it)")
    if not base_url:
        info = models.REGIONS[region_name or models.DEFAULT_REGION]  # the SDK's default host
        if workspace:
            return Endpoint(info.workspace_url(workspace), info.name, "dashscope", info.uploads,
                            host="workspace")
        if info.classic_url is None:
            raise ConfigError(f"region {info.name} has no shared DashScope host, only workspace "
                              "hosts: pass --workspace ID (or set WANFLOW_WORKSPACE, or "
                              "`workspace` in the user config file)")
        return Endpoint(info.classic_url, info.name, "dashscope", info.uploads)
    base = base_url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"DashScope base URL {base_url!r} must be an http(s) URL "
                          "such as https://dashscope.aliyuncs.com/api/v1")
    if parts.path in ("", "/"):
        base += "/api/v1"
    official = models.region_of_url(base)
    region_name = region_name or official
    # A custom server without a region is assumed to offer temporary storage;
    # an explicit region says what the server behind base_url supports.
    supports_upload = region_name in models.UPLOAD_REGIONS if region_name else True
    return Endpoint(base, region_name, "dashscope" if official else "dashscope:custom",
                    supports_upload, host="given")


class DashScopeBackend(BaseBackend):
    """Alibaba DashScope (Model Studio) Wan video backend over HTTP."""

    name = "dashscope"
    paid = True

    def __init__(self, *, api_key: str, region: str | None = None, base_url: str | None = None,
                 workspace: str | None = None, poll_first: float | None = None,
                 poll_max: float | None = None, wait_timeout: float = 1800.0,
                 query_qps: float = models.QUERY_QPS,
                 transport: AsyncTransport | None = None,
                 upload_cache_dir: str | None = None, timeout: float = 60.0,
                 download_attempts: int = DOWNLOAD_ATTEMPTS, retry_backoff: float = RETRY_BACKOFF):
        if not api_key or not str(api_key).strip():
            raise ConfigError("no DashScope API key: set DASHSCOPE_API_KEY")
        self._key = Secret(str(api_key).strip())
        if query_qps <= 0:
            raise ConfigError(f"query_qps must be positive, not {query_qps}")
        if (poll_max is not None and poll_max <= 0) or wait_timeout <= 0 or timeout <= 0:
            raise ConfigError("poll_max, wait_timeout and timeout must be positive")
        endpoint = resolve_endpoint(region, base_url, workspace or None)
        self.endpoint = endpoint
        self.base_url = endpoint.base_url
        self.region = endpoint.region
        self.identity = endpoint.identity
        self.supports_upload = endpoint.supports_upload
        self.workspace = workspace or None
        self.poll_first = poll_first     # None: learned, or from the table's estimate
        self.poll_max = poll_max         # None: POLL_MAX on the server's clock
        self.time_scale = 1.0            # a loopback emulator's advertised clock speed
        self._loopback = is_loopback(self.base_url)
        self._history: RunHistory | None = None
        self.wait_timeout = float(wait_timeout)
        self.query_qps = float(query_qps)
        self.timeout = float(timeout)
        self.download_attempts = max(1, int(download_attempts))
        self.retry_backoff = float(retry_backoff)
        self.upload_cache_dir = upload_cache_dir
        self._poll_pacer = Pacer(self.query_qps * QPS_HEADROOM)
        self._list_pacer = Pacer(self.query_qps * QPS_HEADROOM)
        self._http = Http(base_url=self.base_url, key=self._key, workspace=self.workspace,
                          timeout=self.timeout, transport=transport)
        # Uploads belong to an account: the cache keeps them apart by key and host.
        account = hashlib.sha256(
            b"wanflow-dashscope-account\0" + self._key.reveal().encode() + b"\0"
            + self.base_url.encode()).hexdigest()[:16]
        self._uploader = Uploader(self._http, supports_upload=self.supports_upload,
                                  region=self.region,
                                  cache=UploadCache(upload_cache_dir, account),
                                  retry_backoff=self.retry_backoff)

    def __repr__(self) -> str:
        return (f"DashScopeBackend(base_url={self.base_url!r}, region={self.region!r}, "
                f"identity={self.identity!r}, workspace={self.workspace!r}, api_key=<hidden>)")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _error(self, resp: Response, *, op: str) -> BackendError:
        return api_error(resp, op=op, scrub=self._key.scrub, base_url=self.base_url)

    # ------------------------------------------------------------------ submit

    def refusal(self, model: str, inputs: Sequence[Medium]) -> str | None:
        """A model documented on workspace hosts only, on a classic host; a local input the
        server could not receive (no temporary storage, and not an image to send inline)."""
        info = models.lookup(model)
        if info is not None and info.workspace_only and self.endpoint.host == "classic":
            return (f"{model} is documented on workspace hosts only, and {self.base_url} is "
                    "the region's shared host (whether it accepts the model is unknown): pass "
                    "--workspace ID (or set WANFLOW_WORKSPACE, or `workspace` in the user "
                    "config file), or name the host with --base-url")
        if self.supports_upload:
            return None
        where = f"region {self.region}" if self.region else self.base_url
        for medium in inputs:
            if medium.url is None and not medium.mime.startswith("image/"):
                return (f"input {medium.name} ({medium.mime}) is a local file and {where} has "
                        f"no temporary storage for it (only "
                        f"{', '.join(models.UPLOAD_REGIONS)} has; images alone go inline): "
                        "host it at an https URL and declare the asset as {url: https://...}")
        return None

    async def prepare(self, request: GenRequest, files: dict[str, str]) -> None:
        """Upload the request's local inputs now (cached), so `submit` only POSTs."""
        await self._uploader.resolve(request, files)

    async def submit(self, request: GenRequest, files: dict[str, str], *,
                     before_send: Callable[[], Awaitable[object]] | None = None) -> Submitted:
        """Upload what needs uploading, then POST the task. `before_send`, if given, is
        awaited just before the POST (the caller's submission-rate limiter)."""
        urls, resolve = await self._uploader.resolve(request, files)
        if before_send is not None:
            await before_send()
        body = substitute(request.body, urls)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        sent_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        try:
            resp = await self._http.post_task(request.endpoint, content, resolve_oss=resolve)
        except TransportFailure as exc:
            raise self._unsent_or_uncertain(exc, request.model, sent_at) from None
        if not resp.is_success:
            raise self._error(resp, op="submit")
        self._note_time_scale(resp)
        try:
            data = resp.json()
            output = data.get("output") or {}
            task_id = output.get("task_id")
            rid = data.get("request_id") or resp.headers.get("x-request-id")
        except (ValueError, AttributeError):
            task_id = rid = None
        if not task_id:
            raise SubmitUncertain(f"submit of a {request.model} task at {sent_at} answered HTTP "
                                  f"{resp.status_code} without a task id "
                                  f"({self._key.scrub(resp.text[:300])!r}); {UNCERTAIN_ADVICE}",
                                  code="SubmitUncertain", request_id=rid,
                                  status=resp.status_code, retryable=False)
        log.debug("submitted %s task %s (request %s)", request.model, task_id, rid)
        return Submitted(remote_id=str(task_id), request_id=rid)

    def _unsent_or_uncertain(self, exc: TransportFailure, model: str,
                             sent_at: str) -> BackendError:
        """The error for a submit without an answer: safe to retry only if nothing was sent."""
        if exc.stage is Stage.CONNECT:
            return BackendError(f"could not reach {self.base_url} ({exc.text}); "
                                "the submit was not sent, so it is safe to retry",
                                code="ConnectError", retryable=True)
        if exc.stage is Stage.SEND:  # the server cannot have acted on half a body
            return BackendError(f"the submit to {self.base_url} broke off while sending "
                                f"({exc.text}); no task was created, safe to retry",
                                code="SendError", retryable=True)
        if exc.stage is Stage.UNSENDABLE:
            return BackendError(f"cannot send to {self.base_url}: {exc.text}",
                                code="ProtocolError", retryable=False)
        what = ("no answer within the timeout" if exc.stage is Stage.NO_ANSWER
                else "the connection failed after the request was sent")
        return SubmitUncertain(f"submit of a {model} task at {sent_at}: {what} "
                               f"({exc.text}); {UNCERTAIN_ADVICE}",
                               code="SubmitUncertain", retryable=False)

    # ------------------------------------------------------------------ wait, download

    def learn(self, history: RunHistory) -> None:
        """Shape poll schedules by how long earlier tasks of the same kind ran, and
        record how long each task waited for here ran."""
        self._history = history

    def kind(self, request: GenRequest) -> str:
        """Tasks that take about as long as each other: same model, resolution, clip
        length, and the same service (region, host and, for an emulator, its clock)."""
        scale = f" x{self.time_scale:g}" if self.time_scale != 1.0 else ""
        return (f"{request.model} {request.resolution} {request.duration:g}s "
                f"{self.region or '-'} {self.base_url}{scale}")

    def expectation(self, request: GenRequest) -> Expectation:
        runs = (self._history.run_seconds(self.kind(request), LEARN_FROM)
                if self._history is not None else [])
        return Expectation.learn(request, runs, self.time_scale)

    def expected_seconds(self, request: GenRequest) -> float:
        return self.expectation(request).typical

    async def wait(self, remote_id: str, request: GenRequest, *, elapsed: float = 0.0,
                   urgent: Callable[[], bool] | None = None,
                   on_status: Callable[[str], None] | None = None) -> Finished:
        """Poll until the task ends. `elapsed`: seconds since it was submitted (a resumed
        wait polls sooner). `urgent()`, if given, says whether other work is waiting for
        this task's slot: then it is polled at least every `poll_max / 6` seconds, since a
        late notice now delays that work too. `on_status` hears each new task status."""
        expect = self.expectation(request)
        poll_max = self.poll_max if self.poll_max is not None else POLL_MAX / self.time_scale
        schedule = PollSchedule(
            first=self.poll_first if self.poll_first is not None else expect.first,
            poll_max=poll_max, timeout=self.wait_timeout, due_until=expect.due_until)
        finished = await wait_for_task(self._http, self._poll_pacer, remote_id, request,
                                       schedule, elapsed=elapsed, urgent=urgent,
                                       on_status=on_status)
        if self._history is not None and finished.ran_seconds:
            self._history.record_run(self.kind(request), finished.ran_seconds)
        return finished

    def _note_time_scale(self, resp: Response) -> None:
        """Adopt a loopback emulator's clock speed (ignored from any other host)."""
        text = resp.headers.get(TIME_SCALE_HEADER)
        if text is None or not self._loopback:
            return
        try:
            scale = float(text)
        except ValueError:
            return
        if math.isfinite(scale) and 1e-3 <= scale <= 1e6:
            self.time_scale = scale

    async def download(self, finished: Finished, dest: str) -> str:
        """Write the finished video to `dest` (atomically); returns its sha256."""
        return await download_video(self._http, finished, dest, attempts=self.download_attempts,
                                    retry_backoff=self.retry_backoff)

    # ------------------------------------------------------------------ cancel, list

    async def cancel(self, remote_id: str) -> bool:
        """Cancel a PENDING task. False when the task cannot be cancelled (already running,
        finished or unknown)."""
        await self._poll_pacer.acquire()
        try:
            resp = await self._http.post(f"tasks/{remote_id}/cancel")
        except TransportFailure as exc:
            raise BackendError(f"cancel of task {remote_id} failed: {exc.text}",
                               code="TransportError", retryable=True) from None
        if resp.is_success:
            return True
        if resp.status_code in (401, 429) or resp.status_code >= 500:
            raise self._error(resp, op="cancel")
        return False

    async def check(self) -> None:
        """Fail fast, before any work, when the service cannot be reached or refuses the
        key: one query for a task id that cannot exist (answered UNKNOWN, never billed)."""
        await self._poll_pacer.acquire()
        try:
            resp = await self._http.get("tasks/wanflow-connection-check")
        except TransportFailure as exc:
            raise ConfigError(f"cannot reach DashScope at {self.base_url}: {exc.text}; check "
                              "--base-url, WANFLOW_BASE_URL or the network") from None
        if resp.status_code in (401, 403):
            raise self._error(resp, op="check")
        self._note_time_scale(resp)

    async def list_tasks(self, **filters) -> list[dict]:
        """`GET /tasks` (reference §4.4). Filters: page_no, page_size, start_time, end_time
        (datetime or YYYYMMDDhhmmss), model_name, api_key_id, region, status."""
        params: dict[str, str] = {"page_no": "1", "page_size": "10"}
        for key, value in filters.items():
            if value is None:
                continue
            if isinstance(value, datetime):
                value = value.strftime("%Y%m%d%H%M%S")
            params[key] = str(value)
        await self._list_pacer.acquire()
        try:
            resp = await self._http.get("tasks", params=params)
        except TransportFailure as exc:
            raise BackendError(f"listing tasks failed: {exc.text}",
                               code="TransportError", retryable=True) from None
        if not resp.is_success:
            raise self._error(resp, op="list")
        try:
            data = resp.json()
        except ValueError:
            raise BackendError("listing tasks returned a non-JSON body", code="BadResponse",
                               status=resp.status_code, retryable=True) from None
        for key in ("data", "tasks"):
            if isinstance(data.get(key), list):
                return [t for t in data[key] if isinstance(t, dict)]
        output = data.get("output")
        if isinstance(output, dict):
            for key in ("data", "tasks"):
                if isinstance(output.get(key), list):
                    return [t for t in output[key] if isinstance(t, dict)]
        return []


def is_loopback(base_url: str) -> bool:
    """Whether `base_url` names this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
