"""Local inputs → URLs the API accepts (reference §7).

Beijing (and custom base URLs) offer temporary storage: ask `GET /uploads?action=getPolicy`
for a credential, POST the file to OSS as a form, and send the `oss://` URL with the resolve
header. An upload lives 48 h and is bound to a model; the cache file lets later runs reuse it
for 47 h. Elsewhere images go inline as data URIs and anything else needs an https URL.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ... import models
from ...errors import BackendError, ConfigError
from ...plan.request import Blob, GenRequest
from ...plan.tasks import extension_of
from ...run.pacing import backoff
from .errors import RETRY_BACKOFF_CAP, api_error, parse_error
from .transport import Http, TransportFailure

log = logging.getLogger(__name__)

# An oss:// upload lives 48 h; reuse it for at most 47 h so a queued task still finds it.
UPLOAD_REUSE_SECONDS = models.UPLOAD_TTL_SECONDS - 3600
UPLOAD_CACHE_FILE = "dashscope-uploads.json"
POLICY_ATTEMPTS = 3
OSS_ATTEMPTS = 3
# Fields of a getPolicy answer copied into the form under their dashed names (OSS V4 signing).
_V4_FIELDS = ("x_oss_signature_version", "x_oss_credential", "x_oss_date", "x_oss_signature",
              "x_oss_security_token")


def input_name(blob: Blob, path: str | None) -> str:
    """How an input is named in messages: its file name, type and short digest."""
    where = os.path.basename(path) if path else "no file"
    return f"{where} ({blob.mime}, sha256 {blob.digest[:12]})"


class UploadCache:
    """Which inputs are already in temporary storage: "{digest}:{model}" → oss:// URL.

    Kept in UPLOAD_CACHE_FILE under `directory` (shared by runs), or in memory without one:
    {"version": 1, "entries": {key: {url, uploaded_at, expires_at, account}}}. `account`
    (a hash of key and base URL) keeps one account from using another's uploads.
    """

    def __init__(self, directory: str | None, account: str):
        self.directory = directory
        self._account = account
        self._memory: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> str | None:
        entry = self._load().get(key)
        if isinstance(entry, dict) and self._valid(entry, time.time()):
            return entry["url"]
        return None

    def put(self, key: str, url: str, uploaded_at: float) -> None:
        entry = {"url": url, "uploaded_at": uploaded_at,
                 "expires_at": uploaded_at + models.UPLOAD_TTL_SECONDS, "account": self._account}
        if not self.directory:
            self._memory[key] = entry
            return
        now = time.time()
        entries = {k: v for k, v in self._load().items()
                   if isinstance(v, dict) and isinstance(v.get("uploaded_at"), (int, float))
                   and now < v["uploaded_at"] + models.UPLOAD_TTL_SECONDS}
        entries[key] = entry
        text = json.dumps({"version": 1, "entries": entries}, indent=1, sort_keys=True)
        try:
            self._write(self.directory, text)
        except OSError as exc:  # the upload itself is fine; only reuse is lost
            log.warning("could not write upload cache %s: %s", self._path(), exc)

    def _path(self) -> str | None:
        return os.path.join(self.directory, UPLOAD_CACHE_FILE) if self.directory else None

    def _load(self) -> dict[str, Any]:
        path = self._path()
        if path is None:
            return dict(self._memory)
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

    def _valid(self, entry: dict[str, Any], now: float) -> bool:
        if entry.get("account") != self._account:
            return False
        at = entry.get("uploaded_at")
        if not isinstance(at, (int, float)) or not isinstance(entry.get("url"), str):
            return False
        return at - 60 <= now < at + UPLOAD_REUSE_SECONDS

    @staticmethod
    def _write(directory: str, text: str) -> None:
        """Replace the cache file atomically: a reader sees the old file or the new one."""
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".uploads.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, os.path.join(directory, UPLOAD_CACHE_FILE))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class Uploader:
    """Turns the local inputs of a request into URLs: oss:// uploads where the server has
    temporary storage (`supports_upload`), inline data URIs elsewhere."""

    def __init__(self, http: Http, *, supports_upload: bool, region: str | None,
                 cache: UploadCache, retry_backoff: float):
        self._http = http
        self._supports_upload = supports_upload
        self._region = region
        self._cache = cache
        self._retry_backoff = retry_backoff
        self._locks: dict[str, asyncio.Lock] = {}

    async def resolve(self, request: GenRequest,
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
            name = input_name(blob, path)
            if not path or not os.path.isfile(path):
                raise ConfigError(f"input {name} has no https URL and no local file"
                                  + (f" ({path} does not exist)" if path else ""))
            if self._supports_upload:
                uploads.append((blob, path))
            else:
                urls[blob.digest] = self._data_uri(blob, path, name)
        if uploads:
            policy = _PolicySource(lambda: self._get_policy(request.model))
            tasks = [asyncio.create_task(self._upload(blob, path, request.model, policy))
                     for blob, path in uploads]
            try:
                results = await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            for (blob, _), oss_url in zip(uploads, results, strict=True):
                urls[blob.digest] = oss_url
            resolve = True
        return urls, resolve

    def _data_uri(self, blob: Blob, path: str, name: str) -> str:
        where = f"region {self._region}" if self._region else self._http.base_url
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

    async def _upload(self, blob: Blob, path: str, model: str, policy: _PolicySource) -> str:
        key = f"{blob.digest}:{model}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache.get(key)
            if hit:
                log.debug("reusing upload of %s for %s", blob.digest[:12], model)
                return hit
            started = time.time()
            url = await self._upload_file(blob, path, policy)
            self._cache.put(key, url, started)
            return url

    async def _get_policy(self, model: str) -> dict:
        """`GET /uploads?action=getPolicy&model=…` (safe to retry: it creates nothing)."""
        last: BackendError | None = None
        for attempt in range(1, POLICY_ATTEMPTS + 1):
            if attempt > 1:
                await asyncio.sleep(max(backoff(attempt - 1, self._retry_backoff,
                                                RETRY_BACKOFF_CAP),
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
            last = api_error(resp, op="policy", scrub=self._http.scrub,
                             base_url=self._http.base_url)
            if not last.retryable:
                raise last
        assert last is not None
        raise last

    async def _upload_file(self, blob: Blob, path: str, policy: _PolicySource) -> str:
        """POST the file to OSS with the policy's form fields; returns its oss:// URL."""
        size = os.path.getsize(path)
        # The object keeps the medium's extension: the service reads the type from it
        # (store objects have none; `mimetypes` knows no extension for audio/wav).
        ext = os.path.splitext(path)[1].lower() or extension_of(blob.mime)
        name = input_name(blob, path)
        last: BackendError | None = None
        fresh = False
        for attempt in range(1, OSS_ATTEMPTS + 1):
            if attempt > 1 and not fresh:
                await asyncio.sleep(backoff(attempt - 1, self._retry_backoff, RETRY_BACKOFF_CAP))
            p = await policy.get(fresh=fresh)
            fresh = False
            limit = p.get("max_file_size_mb")
            if isinstance(limit, (int, float)) and size > limit * 1024 * 1024:
                raise ConfigError(f"input {name} is {size} bytes, over the {limit} MB temporary "
                                  "storage limit; host it at an https URL instead")
            # Named by content: two uploads of one key carry the same bytes.
            object_key = f"{str(p['upload_dir']).rstrip('/')}/{blob.digest}{ext}"
            fields = _form_fields(p, object_key, blob.mime)
            try:
                # httpx reads a multipart file synchronously in any case; it is a local file.
                with open(path, "rb") as fh:  # noqa: ASYNC230
                    resp = await self._http.post_form(
                        str(p["upload_host"]), fields,
                        (os.path.basename(object_key), fh, blob.mime))
            except TransportFailure as exc:
                last = BackendError(f"upload of {name} failed: {exc.text}",
                                    code="UploadError", retryable=True)
                continue
            if resp.is_success:
                return f"oss://{object_key}"
            code, message, rid = parse_error(resp, self._http.scrub)
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


def _form_fields(policy: dict, object_key: str, mime: str) -> dict[str, str]:
    """The OSS PostObject form fields (before the file) for one object, in the order sent."""
    fields: dict[str, str] = {}
    if policy.get("oss_access_key_id"):
        fields["OSSAccessKeyId"] = str(policy["oss_access_key_id"])
    if policy.get("signature"):
        fields["Signature"] = str(policy["signature"])
    fields["policy"] = str(policy["policy"])
    fields["key"] = object_key
    fields["x-oss-object-acl"] = str(policy.get("x_oss_object_acl") or "private")
    fields["x-oss-forbid-overwrite"] = str(policy.get("x_oss_forbid_overwrite") or "true")
    fields["success_action_status"] = "200"
    fields["x-oss-content-type"] = mime
    for name in _V4_FIELDS:
        if policy.get(name):
            fields[name.replace("_", "-")] = str(policy[name])
    return fields


class _PolicySource:
    """One upload credential per model per submit, fetched on first need."""

    def __init__(self, fetch: Callable[[], Awaitable[dict]]):
        self._fetch = fetch
        self._policy: dict | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, fresh: bool = False) -> dict:
        async with self._lock:
            if self._policy is not None and not fresh:
                life = self._policy.get("expire_in_seconds")
                age = time.monotonic() - self._fetched
                if not isinstance(life, (int, float)) or age < life - 30:
                    return self._policy
            self._policy = await self._fetch()
            self._fetched = time.monotonic()
            return self._policy
