"""The DashScope backend: Alibaba's Wan task protocol over async HTTP (reference §1–§7).

submit → (the caller journals the task id) → wait → download, plus cancel and list. Every
request goes through `transport.Http`, wanflow's only httpx import. Policies, in short:

* submit is never retried here. Errors say whether a retry is safe: nothing sent (connect
  failure, 429, 503) → `retryable=True`; sent but no answer (read timeout, reset, 500/502/504)
  → `SubmitUncertain`, because the API has no idempotency key and a blind resubmit can pay
  twice.
* wait polls `GET /tasks/{id}`: first poll near the expected generation time, then every
  20 % of the time since submit (so a task is noticed within ~20 % of its duration, ~8 % on
  average), capped at `poll_max`, ±10 % jitter; every poll of this instance goes through
  one pacer that keeps
  them under `query_qps` (account limit 20 QPS). 429/5xx/transport errors on a poll are
  transient; the overall deadline is `wait_timeout`.
* download streams the signed result URL (never with our Authorization header) into a temp
  file beside `dest`, hashing as it goes, resumes with `Range` when the server supports it,
  and never accepts a short body.
* local inputs: Beijing (and custom base URLs) upload to temporary storage (getPolicy + OSS
  form) and send `oss://` URLs, cached per (digest, model) for 47 h of the 48 h lifetime;
  elsewhere images go inline as data URIs and anything else needs an https asset URL.

The API key lives in a wrapper whose repr hides it; it is only put into request headers for
the DashScope host, and scrubbed from every message this module builds.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import mimetypes
import os
import tempfile
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ... import models
from ..base import Finished, Submitted
from ...errors import BackendError, ConfigError, SubmitUncertain
from ...plan.request import Blob, GenRequest, substitute
from ...run.pacing import Pacer, backoff
from .download import DOWNLOAD_ATTEMPTS, download_video
from .errors import (RETRY_BACKOFF, RETRY_BACKOFF_CAP, UNCERTAIN_ADVICE, api_error,
                     parse_error)
from .polling import (QPS_HEADROOM, PollSchedule, default_poll_first, estimate_seconds,
                      wait_for_task)
from .transport import AsyncTransport, Http, Response, Secret, Stage, TransportFailure

__all__ = ["DashScopeBackend", "Submitted", "Finished", "estimate_seconds", "UPLOAD_REUSE_SECONDS"]

log = logging.getLogger(__name__)

# An oss:// upload lives 48 h; reuse it for at most 47 h so a queued task still finds it.
UPLOAD_REUSE_SECONDS = models.UPLOAD_TTL_SECONDS - 3600
UPLOAD_CACHE_FILE = "dashscope-uploads.json"

POLICY_ATTEMPTS = 3
OSS_ATTEMPTS = 3


class DashScopeBackend:
    """Alibaba DashScope (Model Studio) Wan video backend over HTTP."""

    name = "dashscope"
    paid = True

    def __init__(self, *, api_key: str, region: str | None = None, base_url: str | None = None,
                 workspace: str | None = None, poll_first: float | None = None,
                 poll_max: float = 30.0, wait_timeout: float = 1800.0,
                 query_qps: float = models.QUERY_QPS,
                 transport: AsyncTransport | None = None,
                 upload_cache_dir: str | None = None, timeout: float = 60.0,
                 download_attempts: int = DOWNLOAD_ATTEMPTS, retry_backoff: float = RETRY_BACKOFF):
        if not api_key or not str(api_key).strip():
            raise ConfigError("no DashScope API key: set DASHSCOPE_API_KEY")
        self._key = Secret(str(api_key).strip())
        if query_qps <= 0:
            raise ConfigError(f"query_qps must be positive, not {query_qps}")
        if poll_max <= 0 or wait_timeout <= 0 or timeout <= 0:
            raise ConfigError("poll_max, wait_timeout and timeout must be positive")

        region_name = None
        if region:
            region_name = models.REGION_ALIASES.get(region.lower(), region.lower())
            if region_name not in models.REGIONS:
                valid = ", ".join(sorted(models.REGIONS) + sorted(models.REGION_ALIASES))
                raise ConfigError(f"unknown DashScope region {region!r}; valid: {valid}")
        if base_url:
            base = base_url.strip().rstrip("/")
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"DashScope base URL {base_url!r} must be an http(s) URL "
                                  "such as https://dashscope.aliyuncs.com/api/v1")
            if parts.path in ("", "/"):
                base += "/api/v1"
            self.base_url = base
            known = base in models.REGIONS.values()
            self.identity = "dashscope" if known else "dashscope:custom"
            if region_name is None and known:
                region_name = next(r for r, u in models.REGIONS.items() if u == base)
            # A custom server without a region is assumed to offer temporary storage;
            # an explicit region says what the server behind base_url supports.
            self.supports_upload = (region_name in models.UPLOAD_REGIONS if region_name
                                    else True)
        else:
            region_name = region_name or "beijing"  # the SDK's default host
            self.base_url = models.REGIONS[region_name]
            self.identity = "dashscope"
            self.supports_upload = region_name in models.UPLOAD_REGIONS
        self.region = region_name
        self.workspace = workspace or None
        self.poll_first = poll_first
        self.poll_max = float(poll_max)
        self.wait_timeout = float(wait_timeout)
        self.query_qps = float(query_qps)
        self.timeout = float(timeout)
        self.download_attempts = max(1, int(download_attempts))
        self.retry_backoff = float(retry_backoff)
        self.upload_cache_dir = upload_cache_dir
        self._poll_pacer = Pacer(self.query_qps * QPS_HEADROOM)
        self._list_pacer = Pacer(self.query_qps * QPS_HEADROOM)
        self._upload_locks: dict[str, asyncio.Lock] = {}
        self._memory_cache: dict[str, dict] = {}
        self._account = hashlib.sha256(
            b"wanflow-dashscope-account\0" + self._key.reveal().encode() + b"\0"
            + self.base_url.encode()).hexdigest()[:16]
        self._http = Http(base_url=self.base_url, key=self._key, workspace=self.workspace,
                          timeout=self.timeout, transport=transport)

    def __repr__(self) -> str:
        return (f"DashScopeBackend(base_url={self.base_url!r}, region={self.region!r}, "
                f"identity={self.identity!r}, workspace={self.workspace!r}, api_key=<hidden>)")

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ helpers

    def _scrub(self, text) -> str:
        return self._key.scrub(text)

    def _error(self, resp: Response, *, op: str) -> BackendError:
        return api_error(resp, op=op, scrub=self._scrub, base_url=self.base_url)

    # ------------------------------------------------------------------ submit

    async def prepare(self, request: GenRequest, files: dict[str, str]) -> None:
        """Upload the request's local inputs now (cached), so `submit` only POSTs."""
        await self._resolve_inputs(request, files)

    async def submit(self, request: GenRequest, files: dict[str, str], *,
                     before_send=None) -> Submitted:
        """Upload what needs uploading, then POST the task. `before_send`, if given, is
        awaited just before the POST (the caller's submission-rate limiter)."""
        urls, resolve = await self._resolve_inputs(request, files)
        if before_send is not None:
            await before_send()
        body = substitute(request.body, urls)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        sent_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        try:
            resp = await self._http.post_task(request.endpoint, content, resolve_oss=resolve)
        except TransportFailure as exc:
            raise self._unsent_or_uncertain(exc, request.model, sent_at) from None
        if not resp.is_success:
            raise self._error(resp, op="submit")
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
                                  f"({self._scrub(resp.text[:300])!r}); {UNCERTAIN_ADVICE}",
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

    # ------------------------------------------------------------------ inputs

    async def _resolve_inputs(self, request: GenRequest,
                              files: dict[str, str]) -> tuple[dict[str, str], bool]:
        """URL for every blob of the request, and whether any is an oss:// temp URL."""
        urls: dict[str, str] = {}
        resolve = False
        uploads: list[tuple[Blob, str]] = []
        for blob in request.blobs:
            url = blob.url or ""
            if url.startswith(("https://", "http://")):
                urls[blob.digest] = url
                continue
            if url.startswith("oss://"):
                urls[blob.digest] = url
                resolve = True
                continue
            path = files.get(blob.digest)
            name = self._input_name(blob, path)
            if not path or not os.path.isfile(path):
                raise ConfigError(f"input {name} has no https URL and no local file"
                                  + (f" ({path} does not exist)" if path else ""))
            if self.supports_upload:
                uploads.append((blob, path))
            else:
                urls[blob.digest] = self._data_uri(blob, path, name)
        if uploads:
            policy = _PolicySource(self, request.model)
            tasks = [asyncio.create_task(self._upload(blob, path, request.model, policy))
                     for blob, path in uploads]
            try:
                results = await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            for (blob, _), oss_url in zip(uploads, results):
                urls[blob.digest] = oss_url
            resolve = True
        return urls, resolve

    @staticmethod
    def _input_name(blob: Blob, path: str | None) -> str:
        where = os.path.basename(path) if path else "no file"
        return f"{where} ({blob.mime}, sha256 {blob.digest[:12]})"

    def _data_uri(self, blob: Blob, path: str, name: str) -> str:
        where = f"region {self.region}" if self.region else self.base_url
        if not blob.mime.startswith("image/"):
            raise ConfigError(
                f"input {name}: {where} has no temporary storage for local files (only "
                f"{', '.join(models.UPLOAD_REGIONS)} has), and only images can be sent inline; "
                "host the file at an https URL and declare the asset as {url: https://...}")
        size = os.path.getsize(path)
        if size > models.DATA_URI_MAX_BYTES:
            raise ConfigError(
                f"input {name} is {size} bytes, over the {models.DATA_URI_MAX_BYTES} bytes "
                f"that can be sent inline in {where} (no temporary storage there); host it at an "
                "https URL and declare the asset as {url: https://...}")
        with open(path, "rb") as fh:
            data = base64.b64encode(fh.read()).decode("ascii")
        return f"data:{blob.mime};base64,{data}"

    async def _upload(self, blob: Blob, path: str, model: str, policy: "_PolicySource") -> str:
        key = f"{blob.digest}:{model}"
        lock = self._upload_locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache_get(key)
            if hit:
                log.debug("reusing upload of %s for %s", blob.digest[:12], model)
                return hit
            started = time.time()
            url = await self._upload_file(blob, path, policy)
            self._cache_put(key, url, started)
            return url

    async def _get_policy(self, model: str) -> dict:
        """`GET /uploads?action=getPolicy&model=…` (safe to retry: it creates nothing)."""
        last: BackendError | None = None
        for attempt in range(1, POLICY_ATTEMPTS + 1):
            if attempt > 1:
                await asyncio.sleep(max(backoff(attempt - 1, self.retry_backoff, RETRY_BACKOFF_CAP),
                                        (last.retry_after or 0) if last else 0))
            try:
                resp = await self._http.get("uploads",
                                            params={"action": "getPolicy", "model": model})
            except TransportFailure as exc:
                last = BackendError(f"getPolicy for {model} failed: {exc.text}",
                                    code="UploadPolicyError", retryable=True)
                continue
            if resp.is_success:
                try:
                    data = resp.json().get("data") or {}
                except (ValueError, AttributeError):
                    data = {}
                missing = [k for k in ("policy", "upload_dir", "upload_host") if not data.get(k)]
                if not (data.get("signature") or data.get("x_oss_signature")):
                    missing.append("signature")
                if missing:
                    raise BackendError(f"getPolicy for {model} answered without "
                                       f"{', '.join(missing)}", code="UploadPolicyError",
                                       retryable=False)
                return data
            last = self._error(resp, op="policy")
            if not last.retryable:
                raise last
        assert last is not None
        raise last

    async def _upload_file(self, blob: Blob, path: str, policy: "_PolicySource") -> str:
        """POST the file to OSS with the policy's form fields; returns its oss:// URL."""
        size = os.path.getsize(path)
        ext = os.path.splitext(path)[1].lower() or mimetypes.guess_extension(blob.mime) or ""
        name = self._input_name(blob, path)
        last: BackendError | None = None
        fresh = False
        for attempt in range(1, OSS_ATTEMPTS + 1):
            if attempt > 1 and not fresh:
                await asyncio.sleep(backoff(attempt - 1, self.retry_backoff, RETRY_BACKOFF_CAP))
            p = await policy.get(fresh=fresh)
            fresh = False
            limit = p.get("max_file_size_mb")
            if isinstance(limit, (int, float)) and size > limit * 1024 * 1024:
                raise ConfigError(f"input {name} is {size} bytes, over the {limit} MB temporary "
                                  "storage limit; host it at an https URL instead")
            # Named by content: two uploads of one key carry the same bytes.
            object_key = f"{str(p['upload_dir']).rstrip('/')}/{blob.digest}{ext}"
            fields: dict[str, str] = {}
            if p.get("oss_access_key_id"):
                fields["OSSAccessKeyId"] = str(p["oss_access_key_id"])
            if p.get("signature"):
                fields["Signature"] = str(p["signature"])
            fields["policy"] = str(p["policy"])
            fields["key"] = object_key
            fields["x-oss-object-acl"] = str(p.get("x_oss_object_acl") or "private")
            fields["x-oss-forbid-overwrite"] = str(p.get("x_oss_forbid_overwrite") or "true")
            fields["success_action_status"] = "200"
            fields["x-oss-content-type"] = blob.mime
            for v4 in ("x_oss_signature_version", "x_oss_credential", "x_oss_date",
                       "x_oss_signature", "x_oss_security_token"):
                if p.get(v4):
                    fields[v4.replace("_", "-")] = str(p[v4])
            try:
                with open(path, "rb") as fh:
                    resp = await self._http.post_form(
                        str(p["upload_host"]), fields,
                        (os.path.basename(object_key), fh, blob.mime))
            except TransportFailure as exc:
                last = BackendError(f"upload of {name} failed: {exc.text}",
                                    code="UploadError", retryable=True)
                continue
            if resp.is_success:
                return f"oss://{object_key}"
            code, message, rid = parse_error(resp, self._scrub)
            if resp.status_code in (403, 409) and code == "FileAlreadyExists":
                return f"oss://{object_key}"  # an earlier attempt landed
            if resp.status_code == 403 and "expire" in message.lower() and attempt < OSS_ATTEMPTS:
                fresh = True  # the policy ran out: fetch a new one
                continue
            last = BackendError(f"upload of {name} to temporary storage was refused: {message}",
                                code=code, request_id=rid, status=resp.status_code,
                                retryable=resp.status_code >= 500 or resp.status_code == 429)
            if not last.retryable:
                raise last
        assert last is not None
        raise last

    # upload cache: {"version": 1, "entries": {"<digest>:<model>": {url, uploaded_at, expires_at, account}}}

    def _cache_path(self) -> str | None:
        if not self.upload_cache_dir:
            return None
        return os.path.join(self.upload_cache_dir, UPLOAD_CACHE_FILE)

    def _cache_load(self) -> dict[str, dict]:
        path = self._cache_path()
        if path is None:
            return dict(self._memory_cache)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            entries = data.get("entries")
            return entries if isinstance(entries, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring unreadable upload cache %s: %s", path, exc)
            return {}

    def _entry_valid(self, entry, now: float) -> bool:
        if not isinstance(entry, dict) or entry.get("account") != self._account:
            return False
        at = entry.get("uploaded_at")
        if not isinstance(at, (int, float)) or not isinstance(entry.get("url"), str):
            return False
        return at - 60 <= now < at + UPLOAD_REUSE_SECONDS

    def _cache_get(self, key: str) -> str | None:
        entry = self._cache_load().get(key)
        return entry["url"] if self._entry_valid(entry, time.time()) else None

    def _cache_put(self, key: str, url: str, uploaded_at: float) -> None:
        entry = {"url": url, "uploaded_at": uploaded_at,
                 "expires_at": uploaded_at + models.UPLOAD_TTL_SECONDS, "account": self._account}
        path = self._cache_path()
        if path is None:
            self._memory_cache[key] = entry
            return
        now = time.time()
        entries = {k: v for k, v in self._cache_load().items()
                   if isinstance(v, dict) and isinstance(v.get("uploaded_at"), (int, float))
                   and now < v["uploaded_at"] + models.UPLOAD_TTL_SECONDS}
        entries[key] = entry
        text = json.dumps({"version": 1, "entries": entries}, indent=1, sort_keys=True)
        try:
            os.makedirs(self.upload_cache_dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.upload_cache_dir, prefix=".uploads.",
                                       suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:  # the upload itself is fine; only reuse is lost
            log.warning("could not write upload cache %s: %s", path, exc)
            self._memory_cache[key] = entry

    # ------------------------------------------------------------------ wait

    async def wait(self, remote_id: str, request: GenRequest, *, elapsed: float = 0.0,
                   urgent=None) -> Finished:
        """Poll until the task ends. `elapsed`: seconds since it was submitted (a resumed
        wait polls sooner). `urgent()`, if given, says whether other work is waiting for
        this task's slot: then it is polled at least every `poll_max / 6` seconds, since a
        late notice now delays that work too."""
        schedule = PollSchedule(
            first=self.poll_first if self.poll_first is not None else default_poll_first(request),
            poll_max=self.poll_max, timeout=self.wait_timeout)
        return await wait_for_task(self._http, self._poll_pacer, remote_id, request, schedule,
                                   elapsed=elapsed, urgent=urgent)

    # ------------------------------------------------------------------ download

    async def download(self, finished: Finished, dest: str) -> str:
        return await download_video(self._http, finished, dest, attempts=self.download_attempts,
                                    retry_backoff=self.retry_backoff)

    # ------------------------------------------------------------------ cancel / list

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


class _PolicySource:
    """One upload credential per model per submit, fetched on first need."""

    def __init__(self, backend: DashScopeBackend, model: str):
        self._backend = backend
        self._model = model
        self._policy: dict | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, fresh: bool = False) -> dict:
        async with self._lock:
            if self._policy is not None and not fresh:
                life = self._policy.get("expire_in_seconds")
                if not isinstance(life, (int, float)) or time.monotonic() - self._fetched < life - 30:
                    return self._policy
            self._policy = await self._backend._get_policy(self._model)
            self._fetched = time.monotonic()
            return self._policy
